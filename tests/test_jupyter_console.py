"""`jupyter console --existing` works unmodified, in a real pty."""

from __future__ import annotations

import sys

import pexpect

# `python -m jupyter_console`: no reliance on console scripts being on PATH.
CONSOLE = [sys.executable, "-m", "jupyter_console"]


def test_jupyter_console_attaches_runs_and_detaches(start_host):
    host = start_host("asyncio", "--name", "consolehost")
    child = pexpect.spawn(
        "jupyter-console", ["--existing", host.connection_file], encoding="utf-8", timeout=20, dimensions=(40, 120)
    )
    try:
        child.expect(r"In \[")
        assert "zembed" in child.before and "consolehost" in child.before  # our banner
        child.send("host.frames > 0\r")
        child.expect(r"Out\[")
        child.expect("True")
        child.send('print("hello from console")\r')
        child.expect("hello from console")
        child.send("1/0\r")
        child.expect("ZeroDivisionError")
        child.send("exit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert host.alive(), "leaving the console must not end the host"


def test_jupyter_console_finds_zembed_kernels_by_name(start_host):
    host = start_host("asyncio", "--name", "findme")
    child = pexpect.spawn(CONSOLE[0], [*CONSOLE[1:], "--existing", "findme"], encoding="utf-8", timeout=20)
    try:
        child.expect(r"In \[")
        child.send("__import__('os').getpid()\r")
        child.expect(str(host.pid))
        child.send("exit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
