"""The README's first command: `zembed demo`, in a real terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import psutil
import pytest
from terminal import Terminal


@pytest.fixture
def demo_terminal(tmp_path: Path) -> Iterator[Terminal]:
    """``zembed demo`` as a newcomer runs it: in a terminal of its own."""
    env = {"ZCONSOLE_HISTORY": str(tmp_path / "history.jsonl"), "ZCONSOLE_OUTPUT_DIR": str(tmp_path / "out")}
    terminal = Terminal([sys.executable, "-m", "zembed", "demo"], env=env)
    try:
        yield terminal
    finally:
        terminal.close()
        for process in psutil.process_iter(["cmdline"]):  # a host the launcher did not get to stop
            if "zembed.demo" in " ".join(process.info["cmdline"] or []):
                process.kill()


def attached(term: Terminal) -> int:
    """Wait for the demo's console to attach; the host's pid."""
    host_pid = int(term.wait_for(r"host pid (\d+) serving", timeout=20).group(1))
    term.wait_for(rf"attached to zembed-demo \(pid {host_pid}\)", timeout=20)
    return host_pid


def test_zembed_demo_attaches_a_console_to_a_live_host(runtime_dir, demo_terminal):
    term = demo_terminal
    host_pid = attached(term)
    term.line("app")
    term.wait_for(r"DemoApp frame=\d+")
    term.line("app.world.gravity = -2.0")
    term.line("app.world.gravity")
    term.wait_for(r"Out\[\d+\]: -2\.0")
    term.line("app.frame > 10")  # the host keeps its frame loop going
    term.wait_for(r"Out\[\d+\]: True")
    term.line("exit")
    term.wait_for(r"host stopped")
    term.wait_for(r"\[exit 0\]")
    assert not psutil.pid_exists(host_pid) or psutil.Process(host_pid).status() == psutil.STATUS_ZOMBIE
    assert list(runtime_dir.glob("*zembed-demo*")) == []  # the host stopped cleanly


def test_demo_crash_and_the_console_carries_on(runtime_dir, demo_terminal):
    """The whole promise in a minute: run, interrupt, crash, survive, carry on."""
    term = demo_terminal
    first_pid = attached(term)
    term.line("import time; time.sleep(30)")
    term.wait_for(r"In \[1\]: import time; time.sleep\(30\)\n")
    term.press("C-c")  # the terminal's Ctrl-C: an interrupt_request for the cell, never a signal to the host
    term.wait_for(r"KeyboardInterrupt")
    term.line("app.crash()")
    term.wait_for(rf"the host died: zembed-demo \(pid {first_pid}\)", timeout=5)
    second_pid = int(term.wait_for(r"re-attached to zembed-demo \(pid (\d+)\)", timeout=15).group(1))
    assert second_pid != first_pid
    term.line("app.frame >= 0")
    term.wait_for(r"Out\[1\]: True")
    term.press("C-d")
    # The restarted host stops on the launcher's SIGINT (it used to inherit
    # SIG_IGN, be killed after 5 s, and leave a false crash report behind).
    term.wait_for(r"host stopped \(exit 0\)")
    screen = term.screen()
    assert screen.count(f"the run of 'zembed-demo' (pid {first_pid}) died") == 1, screen  # told once, not thrice
    done = subprocess.run(
        [sys.executable, "-m", "zembed", "crashes", "zembed-demo", "--json"], capture_output=True, text=True, timeout=30
    )
    reports = json.loads(done.stdout)
    assert [(r["pid"], r["announced"]) for r in reports] == [(first_pid, True)]
    again = Terminal([sys.executable, "-m", "zembed", "demo"], env=dict(term.env))
    try:
        attached(again)
        assert "!!" not in again.screen()  # the next run announces nothing
        again.press("C-d")
        again.wait_for(r"host stopped \(exit 0\)")
    finally:
        again.close()


def test_demo_world_behaves():
    from zembed.demo import DemoApp

    app = DemoApp(particles=10)
    for _ in range(120):
        app.tick(1 / 60)
    assert len(app.world.particles) == 10
    assert all(0 <= p.x <= app.world.width and 0 <= p.y <= app.world.height for p in app.world.particles)
    assert "particles" in app.world._repr_html_()


def test_ctrl_c_in_the_demo_terminal_never_reaches_the_host(runtime_dir, demo_terminal):
    term = demo_terminal
    host_pid = attached(term)
    term.line("import time; time.sleep(20); 'slept'")
    term.wait_for(r"'slept'\n")
    term.press("C-c")  # the terminal sends SIGINT to its whole foreground group: launcher and console
    term.wait_for(r"KeyboardInterrupt")  # the console turned it into an interrupt_request
    term.line("app.frame > 0")
    term.wait_for(r"Out\[\d+\]: True")
    assert psutil.Process(host_pid).is_running()
    assert "'slept'" not in term.screen().split("KeyboardInterrupt")[-1]


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
