"""examples/gui_app in its real toolkits: a client changes the app's state
through the kernel; the change shows in the app's own API and in what the
toolkit renders."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, launch_host, wait_until

EXAMPLES = ROOT / "examples" / "gui_app"


@pytest.fixture
def gui_app(monkeypatch, display):
    started = []

    def start(script: str, name: str):
        monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
        monkeypatch.setenv("DISPLAY", display)
        app = launch_host(EXAMPLES / script, "--announce", "--name", name)
        started.append(app)
        return app

    yield start
    for app in started:
        app.kill()


def test_qt_app_changed_from_a_client_and_rendered(gui_app, connect, tmp_path):
    from PySide6.QtGui import QImage

    app = gui_app("qt_app.py", "shapes-qt")
    client = connect(app.connection_file)
    client.run("scene.add('square', 100, 100, 80, '#ff0000')")
    assert client.value("[(s.kind, s.x, s.color) for s in scene.shapes]") == [("square", 100, "#ff0000")]
    shot = tmp_path / "shot.png"
    client.run(f"app.processEvents(); window.save_screenshot({str(shot)!r})")  # the repaint, then the grab
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (480, 320)
    assert image.pixelColor(100, 100).name() == "#ff0000"  # inside the square
    assert image.pixelColor(300, 250).name() == "#ffffff"  # the background
    client.run("window.show_status()")
    status = client.value("window.statusBar().currentMessage()")
    assert "'shapes-qt'" in status and Path(app.connection_file).name in status
    error = client.run("scene.add('hexagon', 1, 1)")
    assert error.content["ename"] == "ValueError" and client.value("len(scene.shapes)") == 1  # the app lives on
    client.run("app.quit()")  # quitting the app stops the kernel cleanly
    assert app.process.wait(10) == 0
    assert not Path(app.connection_file).exists()


def test_tk_app_changed_from_a_client_and_rendered(gui_app, connect, tmp_path):
    app = gui_app("tk_app.py", "shapes-tk")
    client = connect(app.connection_file)
    client.run("scene.add('circle', 120, 80, 60, '#ff0000'); scene.add('square', 300, 200, 40, '#0000ff')")
    assert client.value("window.canvas_items()") == [("oval", "#ff0000"), ("rectangle", "#0000ff")]
    postscript = tmp_path / "canvas.ps"
    client.run(f"window.save_postscript({str(postscript)!r})")
    rendered = postscript.read_text()
    assert "1.000 0.000 0.000 setrgbcolor" in rendered and "0.000 0.000 1.000 setrgbcolor" in rendered
    assert "'shapes-tk'" in client.value("window.status.cget('text')")
    client.run("scene.clear()")
    assert client.value("window.canvas_items()") == []
    client.run("root.after(0, window.quit)")  # the window's close button does the same
    assert app.process.wait(10) == 0
    assert not Path(app.connection_file).exists()


def test_a_notebook_slider_moves_a_shape_in_the_qt_app(gui_app, connect, tmp_path):
    from PySide6.QtGui import QImage

    app = gui_app("qt_app.py", "shapes-qt")
    client = connect(app.connection_file)
    client.run("square = scene.add('square', 100, 100, 60, '#ff0000'); slider = scene.control(square)")
    model_id = client.value("slider.model_id")
    client.update_widget(model_id, value=300)  # the notebook's slider was dragged to 300
    wait_until(lambda: client.value("square.x") == 300, timeout=10, what="the square to move")
    shot = tmp_path / "moved.png"
    client.run(f"app.processEvents(); window.save_screenshot({str(shot)!r})")
    image = QImage(str(shot))
    assert image.pixelColor(300, 100).name() == "#ff0000" and image.pixelColor(100, 100).name() == "#ffffff"
    client.run("square.x = 50; scene.changed()")  # moved by anything else: the slider follows
    assert client.value("slider.value") == 50
