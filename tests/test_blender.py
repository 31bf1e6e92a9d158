"""The Blender add-on (examples/blender) in Blender: PyPI's bpy as a module
with Blender's timer rules pumped by the host, and Debian's real Blender GUI
under Xvfb, each served to a client in another process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from conftest import HOSTS, ROOT, launch_host

ADDONS = ROOT / "examples" / "blender"


def require(what: str, present: bool) -> None:
    """Skip on a machine without it; fail in CI, whose .ci/run installs it."""
    if not present:
        message = f"{what} is not installed (.ci/run installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def have_bpy() -> bool:
    import importlib.util

    return importlib.util.find_spec("bpy") is not None


def test_addon_in_bpy_module_serves_a_client_through_timers(connect):
    require("PyPI's bpy", have_bpy())
    host = launch_host(HOSTS / "bpy_host.py", "bpy-test", timeout=60)
    try:
        client = connect(host.connection_file)
        client.run("bpy.ops.mesh.primitive_cube_add(location=(1.0, 2.0, 3.0))")
        assert "Cube.001" in client.value("[o.name for o in D.objects]")
        assert client.value("tuple(D.objects['Cube.001'].location)") == (1.0, 2.0, 3.0)
        assert client.value("C.scene.name") == "Scene"
        # A notebook's sliders on the cube's location (ipywidgets, through the add-on's helper).
        client.run("import zembed_blender\ncontrol = zembed_blender.location_control(D.objects['Cube.001'])")
        client.update_widget(client.value("control.children[2].model_id"), value=7.5)
        deadline = time.monotonic() + 10
        while client.value("D.objects['Cube.001'].location.z") != 7.5:
            assert time.monotonic() < deadline, "the z slider did not move the cube"
        error = client.run("D.objects['no such object']")
        assert error.content["ename"] == "KeyError"
        reply = client.kc.complete("bpy.data.", 9, reply=True, timeout=10)["content"]
        assert {"objects", "meshes", "materials"} <= set(reply["matches"]) and reply["cursor_start"] == 9
        runaway = client.kc.execute("n = 0\nwhile True: n += 1")
        deadline = time.monotonic() + 10
        while not client.control("kernel_info_request")["zembed"]["executing"]:
            assert time.monotonic() < deadline
        client.interrupt()
        assert client.shell_reply(runaway)["content"]["ename"] == "KeyboardInterrupt"
        # The timer callback survives a failing poll (Blender would drop a timer that raises).
        client.run(
            "import zembed_blender\nk = zembed_blender.kernel()\nreal = k.poll\n"
            "def broken():\n    k.poll = real\n    raise RuntimeError('poll broke once')\nk.poll = broken"
        )
        assert "poll broke once" in client.value("zembed_blender._state['last_error']")
        assert client.value("bpy.app.timers.is_registered(zembed_blender._poll)") is True
        done = client.run("import addon_utils; addon_utils.disable('zembed_blender'); 'disabled'")
        assert done.result == "'disabled'"  # answered although disabling stops the kernel
        output = host.read_stdout(timeout=20)
        assert "timers left: []" in output  # unregister() removed the timer
        assert host.process.returncode == 0
    finally:
        host.kill()


def test_background_mode_refuses_or_serves_blocking(connect, runtime_dir):
    require("PyPI's bpy", have_bpy())
    refuse = subprocess.run(
        [sys.executable, "-c", "import bpy, zembed_blender; zembed_blender.start()"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ADDONS)},
    )
    assert refuse.returncode == 1
    assert "background mode (-b), where bpy.app.timers never fire" in refuse.stderr
    assert "serve_blocking()" in refuse.stderr
    server = subprocess.Popen(
        [sys.executable, "-c", "import bpy, zembed_blender; zembed_blender.serve_blocking('bg', timeout=60)"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ADDONS)},
    )
    try:
        assert "serving (blocking)" in server.stdout.readline()
        client = connect(str(next(runtime_dir.glob("kernel-zembed-bg-*.json"))))
        assert client.value("bpy.app.background and len(D.objects) > 0") is True
        client.control("shutdown_request", {"restart": False})
        assert server.wait(20) == 0
    finally:
        server.kill()
        server.wait(5)


def test_addon_in_the_real_blender_gui(display, connect, tmp_path):
    blender = shutil.which("blender")
    require("Debian's blender", blender is not None)
    assert blender is not None
    announce = tmp_path / "announce.json"
    dependencies = {Path(zmq.__file__).parent.parent, ROOT, ADDONS}
    env = {
        **os.environ,
        "DISPLAY": display,
        "ZEMBED_ANNOUNCE": str(announce),
        "ZEMBED_NAME": "blender-gui",
        "ZEMBED_TEST_PATHS": os.pathsep.join(map(str, dependencies)),
    }
    process = subprocess.Popen(
        [blender, "--factory-startup", "--python", str(HOSTS / "blender_boot.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not announce.exists() or not announce.read_text():
            assert process.poll() is None, "Blender exited before its kernel served"
            assert time.monotonic() < deadline, "Blender's kernel did not start within 60 s"
            time.sleep(0.1)
        info = json.loads(announce.read_text())
        assert info["operator"] == ["FINISHED"]
        client = connect(info["connection_file"])
        assert client.value("bpy.app.background") is False  # Blender's own window and timers
        client.run("import threading\nbpy.ops.mesh.primitive_cube_add()")
        assert client.value("threading.current_thread() is threading.main_thread()") is True
        assert client.value("sorted(o.name for o in D.objects)") == ["Camera", "Cube", "Cube.001", "Light"]
        client.run("bpy.ops.zembed.stop_kernel()")
        deadline = time.monotonic() + 10
        while Path(info["connection_file"]).exists():  # the operator stopped the kernel cleanly
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert process.poll() is None  # Blender carries on
    finally:
        os.killpg(process.pid, 9)
        process.wait(10)
