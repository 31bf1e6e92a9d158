"""The README's first command: `zembed demo`, in a real terminal."""

from __future__ import annotations

import os
import signal
import sys
import time

import pexpect
import psutil


def test_zembed_demo_attaches_a_console_to_a_live_host(runtime_dir):
    child = pexpect.spawn(sys.executable, ["-m", "zembed", "demo"], encoding="utf-8", timeout=30, dimensions=(40, 120))
    try:
        child.expect(r"host pid (\d+) serving")
        host_pid = int(child.match.group(1))
        child.expect(r"In \[")
        child.send("app\r")
        child.expect(r"DemoApp frame=\d+")
        child.send("app.world.gravity = -2.0\r")
        child.send("app.world.gravity\r")
        child.expect("-2.0")
        child.send("app.frame > 10 and app.fps > 20\r")  # the host keeps its frame loop going
        child.expect("True")
        child.send("exit\r")
        child.expect("host stopped")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert not psutil.pid_exists(host_pid) or psutil.Process(host_pid).status() == psutil.STATUS_ZOMBIE
    assert list(runtime_dir.glob("*zembed-demo*")) == []  # the host stopped cleanly


def test_demo_world_behaves():
    from zembed.demo import DemoApp

    app = DemoApp(particles=10)
    for _ in range(120):
        app.tick(1 / 60)
    assert len(app.world.particles) == 10
    assert all(0 <= p.x <= app.world.width and 0 <= p.y <= app.world.height for p in app.world.particles)
    assert "particles" in app.world._repr_html_()


def test_ctrl_c_in_the_demo_terminal_never_reaches_the_host(runtime_dir):
    child = pexpect.spawn(sys.executable, ["-m", "zembed", "demo"], encoding="utf-8", timeout=30, dimensions=(40, 120))
    try:
        child.expect(r"host pid (\d+) serving")
        host_pid = int(child.match.group(1))
        child.expect(r"In \[")
        child.send("import time; time.sleep(2); 'slept'\r")
        time.sleep(0.5)
        child.sendintr()  # SIGINT to the terminal's foreground process group
        child.expect("slept")  # the cell finished: Jupyter's console does not interrupt kernels it did not start
        child.send("app.frame > 0\r")
        child.expect("True")
        assert psutil.Process(host_pid).is_running()
        child.send("exit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_demo_host_does_not_outlive_a_killed_launcher(runtime_dir):
    launcher = pexpect.spawn(sys.executable, ["-m", "zembed", "demo", "--no-console"], encoding="utf-8", timeout=30)
    try:
        launcher.expect(r"host pid (\d+) serving")
        host = psutil.Process(int(launcher.match.group(1)))
        os.kill(launcher.pid, signal.SIGKILL)
        host.wait(timeout=10)  # it notices within a second and stops
    finally:
        launcher.close(force=True)


def test_profiling_the_demo_host_finds_its_hotspot(connect):
    """Issue 6's promise: profile the demo's frame loop and see its hotspot."""
    from conftest import launch_host

    host = launch_host("-m", "zembed.demo", "--announce", "--name", "profiled-demo")
    try:
        client = connect(host.connection_file)
        started = client.run("%profile_host 1.5")
        parent = started.reply["parent_header"]["msg_id"]
        report = ""
        deadline = time.monotonic() + 15
        while "interactive HTML report" not in report and time.monotonic() < deadline:
            msg = client.kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") == parent:
                report += msg["content"].get("text", "") + msg["content"].get("data", {}).get("text/plain", "")
        assert "count_contacts" in report  # the O(n²) hotspot of every frame
        client.run("app.collisions = False\nswitched_at = app.frame")
        deadline = time.monotonic() + 5
        while not client.value("app.frame > switched_at + 1"):  # a frame drawn since the fix
            assert time.monotonic() < deadline
        assert client.value("app.frame_ms < 0.5") is True  # fixed live
    finally:
        host.kill()
