"""A small Qt (PySide6) application with a zembed kernel inside.

    python examples/gui_app/qt_app.py [--name shapes]

then, from another terminal: ``zconsole --existing shapes`` and try::

    scene.add("circle", 120, 80, 60, "tomato")   # the window redraws at once
    scene.shapes[0].color = "gold"; scene.changed()
    window.save_screenshot("/tmp/shot.png")
    window.statusBar().currentMessage()

The status bar shows the kernel's name, state and connection file; quitting
the app stops the kernel cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QPainter
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
from scene import Scene

import zembed


class Canvas(QWidget):
    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene
        self.setFixedSize(scene.width, scene.height)
        scene.listeners.append(self.update)  # update() schedules a repaint on the GUI thread

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        for shape in self.scene.shapes:
            painter.setBrush(QColor(shape.color))
            painter.setPen(Qt.PenStyle.NoPen)
            half = shape.size / 2
            if shape.kind == "circle":
                painter.drawEllipse(QPointF(shape.x, shape.y), half, half)
            else:
                painter.drawRect(QRectF(shape.x - half, shape.y - half, shape.size, shape.size))
        painter.end()


class Window(QMainWindow):
    def __init__(self, scene: Scene) -> None:
        super().__init__()
        self.scene = scene
        self.kernel: zembed.Kernel | None = None
        self.setWindowTitle("Shapes (zembed example)")
        self.canvas = Canvas(scene)
        self.setCentralWidget(self.canvas)
        add = QAction("Add shape", self)
        add.triggered.connect(scene.add_random)
        clear = QAction("Clear", self)
        clear.triggered.connect(scene.clear)
        toolbar = self.addToolBar("Scene")
        toolbar.addAction(add)
        toolbar.addAction(clear)
        self._status = QTimer(self)
        self._status.timeout.connect(self.show_status)
        self._status.start(500)

    def show_status(self) -> None:
        kernel = self.kernel
        if kernel is None or not kernel.running:
            self.statusBar().showMessage("kernel: stopped")
            return
        state = "busy" if kernel.executing else "idle"
        self.statusBar().showMessage(
            f"kernel {kernel.name!r} ({state}) · attach: zconsole --existing {kernel.name} · "
            f"{os.path.basename(kernel.connection_file)}"
        )

    def save_screenshot(self, path: str) -> str:
        """Render the canvas as it is now to a PNG file; return the path."""
        if not self.canvas.grab().save(path, "PNG"):
            raise OSError(f"could not write {path}")
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="shapes", help="the kernel's app name")
    parser.add_argument("--announce", action="store_true", help="print the connection file as JSON (for tests)")
    parser.add_argument(
        "--quit-on-shutdown",
        action="store_true",
        help="a client's 'shut down kernel' quits the app (for a kernelspec that launches it, see docs/notebooks.md)",
    )
    args = parser.parse_args(argv)

    app = QApplication(sys.argv[:1])
    scene = Scene()
    window = Window(scene)
    # The kernel joins Qt's event loop (loop="auto" finds the QApplication);
    # it starts serving once app.exec() runs.
    kernel = zembed.start_kernel(
        {"app": app, "window": window, "scene": scene},
        name=args.name,
        on_shutdown=(lambda _kernel, _restart: app.quit()) if args.quit_on_shutdown else None,
    )
    window.kernel = kernel
    app.aboutToQuit.connect(kernel.stop)
    window.show()
    window.show_status()
    if args.announce:
        print(json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()}), flush=True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
