"""zconsole in a real terminal (tmux) against real host processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_until
from terminal import Terminal

HOST = Path(__file__).parent / "hosts" / "host.py"
PROMPT = r"In \[\d+\]:"


@pytest.fixture
def console_env(tmp_path: Path) -> dict[str, str]:
    return {
        "ZCONSOLE_HISTORY": str(tmp_path / "history.jsonl"),
        "ZCONSOLE_OUTPUT_DIR": str(tmp_path / "outputs"),
        "PAGER": "cat",
    }


@pytest.fixture
def console(console_env: dict[str, str]) -> Iterator[Any]:
    opened: list[Terminal] = []

    def open_console(*args: str, wait_for_prompt: bool = True, env: dict[str, str] | None = None) -> Terminal:
        terminal = Terminal([sys.executable, "-m", "zconsole", *args], env={**console_env, **(env or {})})
        opened.append(terminal)
        if wait_for_prompt:
            terminal.wait_for(PROMPT, timeout=20)
        return terminal

    yield open_console
    for terminal in opened:
        terminal.close()


def named_host(start_host: Any, name: str, *args: str) -> Any:
    return start_host("asyncio", "--name", name, *args)


def test_attaches_by_name_and_runs_code(start_host, console):
    named_host(start_host, "alpha")
    beta = named_host(start_host, "beta")
    term = console("--existing", "beta")
    term.wait_for(rf"attached to beta \(pid {beta.pid}\)")
    term.line("host.frames > 0, 6 * 7")
    term.wait_for(r"Out\[1\]: \(True, 42\)")
    term.line("for i in range(2):")
    term.wait_for(r"\.\.\.:$")  # incomplete: a continuation line
    term.line("print('line', i)")
    term.wait_for(r"\.\.\.:     print\('line', i\)$")  # indented by the kernel's rule
    term.press("Enter")  # the blank line ends the block
    term.wait_for(r"line 0\nline 1\n")
    term.wait_for(r"In \[3\]:$")


def test_completion_menu_and_help(start_host, console, connect):
    host = named_host(start_host, "menu")
    probe_source = (
        "class Probe:\n"
        '    """A probe to look at."""\n'
        "    def measure(self, depth: int = 3) -> int:\n"
        '        """Measure down to depth."""\n'
        "        return depth\n"
        "    def mend(self): pass\n"
        "probe = Probe()"
    )
    connect(host.connection_file).run(probe_source)
    term = console("--existing", "menu")
    term.type("probe.me")
    term.press("Tab")
    menu = term.wait_for(r"measure.*\n.*mend|mend.*\n.*measure")
    assert menu
    term.press("C-c")
    term.line("probe.measure?")
    term.wait_for(r"Signature: probe\.measure\(depth: int = 3\) -> int")
    term.wait_for(r"Measure down to depth\.")
    term.line("Probe??")
    term.wait_for(r"def mend\(self\): pass")  # ?? shows the source of a class defined in a cell


def test_long_help_is_paged_and_errors_are_coloured(start_host, console, connect):
    host = named_host(start_host, "pager")
    docstring = "\n".join(f"    line {i}" for i in range(80))
    connect(host.connection_file).run(f'def documented():\n    """Long help.\n{docstring}\n    """')
    term = console("--existing", "pager", env={"PAGER": "sed -e s/^/PAGED:/"})
    term.line("documented?")
    term.wait_for(r"^PAGED:line 79$")  # longer than the 40-row screen: through $PAGER
    term.line("1/0")
    term.wait_for(r"ZeroDivisionError: division by zero")
    coloured = term.screen(escapes=True)
    assert re.search(r"\x1b\[[0-9;]*mZeroDivisionError", coloured)


def test_output_streams_while_the_cell_runs(start_host, console, tmp_path):
    named_host(start_host, "streamer")
    gate = tmp_path / "gate"
    term = console("--existing", "streamer")
    term.line(f"import os, time; gate = {str(gate)!r}")
    term.line("print('first'); [time.sleep(0.02) for _ in iter(lambda: os.path.exists(gate), True)]; print('second')")
    term.wait_for(r"^first$")
    assert not re.search(r"^second$", term.screen(), re.MULTILINE)  # "first" shows while the cell still runs
    gate.touch()
    term.wait_for(r"^second$")


def test_ctrl_c_interrupts_a_runaway_cell_and_the_host_lives(start_host, console, connect):
    host = named_host(start_host, "runaway")
    term = console("--existing", "runaway")
    term.line("n = 0")
    term.line("while True: n += 1")
    client = connect(host.connection_file)
    wait_until(lambda: client.control("kernel_info_request")["zembed"]["executing"])
    term.press("C-c")
    term.wait_for(r"KeyboardInterrupt")
    term.wait_for(rf"{PROMPT}$")
    assert client.value("n > 0 and host.interrupts_in_host_code == 0") is True
    assert host.alive()


def test_two_consoles_see_each_other_without_pressing_enter(start_host, console):
    named_host(start_host, "shared")
    first = console("--existing", "shared")
    second = console("--existing", "shared")
    second.type("half a thou")  # typed, not submitted
    first.line("greeting = 'hello from the first console'; print(greeting)")
    second.wait_for(r"\[other client \S+\] In \[1\]:\ngreeting = 'hello from the first console'; print\(greeting\)")
    second.wait_for(r"^hello from the first console$")
    second.wait_for(r"In \[2\]: half a thou$")  # the prompt moved on, the typed text is intact
    second.type("ght")
    second.press("C-u")
    second.line("greeting.upper()")
    first.wait_for(r"Out\[2\]: 'HELLO FROM THE FIRST CONSOLE'")  # the first sees the second's result


def test_host_killed_then_restarted_the_console_reattaches_by_itself(start_host, console):
    host = named_host(start_host, "phoenix")
    term = console("--existing", "phoenix")
    term.line("answer = 42")
    term.wait_for(r"In \[2\]:$")
    term.type("still mine")
    killed_at = time.monotonic()
    host.kill()
    term.wait_for(rf"the host died: phoenix \(pid {host.pid}\)", timeout=3.0)
    assert time.monotonic() - killed_at < 3.0
    # the crash record says how it ended and what ran last
    term.wait_for(
        r"ended without stopping the kernel: killed .* after In \[1\]: answer = 42 \(zembed crashes phoenix\)"
    )
    term.wait_for(r"\(waiting for phoenix\) In \[2\]: still mine$")
    term.press("Enter")  # submitting while the host is gone keeps the input
    term.wait_for(r"no host attached; kept in history")
    reborn = named_host(start_host, "phoenix")
    term.wait_for(rf"re-attached to phoenix \(pid {reborn.pid}\)", timeout=10)
    term.press("Up")  # the input typed while the host was dead is in the history
    term.wait_for(r"In \[1\]: still mine$")
    term.press("C-u")
    term.line("'answer' in globals(), 6 * 7")
    term.wait_for(r"Out\[1\]: \(False, 42\)")
    # The new kernel announces the crash to its clients; this console told it
    # at the death already, and says it once (it used to say it again, and
    # in the demo a third time from the new host's stderr).
    assert term.screen().count(f"the run of 'phoenix' (pid {host.pid}) ended without stopping the kernel") == 1


def test_ctrl_d_detaches_and_the_host_keeps_running(start_host, console, connect):
    host = named_host(start_host, "stays")
    term = console("--existing", "stays")
    term.press("C-d")
    term.wait_for(rf"detached; stays \(pid {host.pid}\) keeps running")
    term.wait_for(r"\[exit 0\]")
    assert connect(host.connection_file).value("host.frames > 0") is True


def test_exit_detaches_and_shutdown_stops_the_kernel(start_host, console):
    host = named_host(start_host, "stopper")
    term = console("--existing", "stopper")
    term.line("exit")
    term.wait_for(r"\[exit 0\]")
    assert host.alive()
    term = console("--existing", "stopper")
    term.line(":shutdown")
    term.wait_for(r"the kernel in stopper .* shut down")
    term.wait_for(r"\[exit 0\]")
    assert host.alive()  # the host did not opt in to exiting: only its kernel stopped
    wait_until(lambda: not Path(host.connection_file).exists())


def test_input_and_getpass_prompt_in_the_console(start_host, console):
    named_host(start_host, "asker")
    term = console("--existing", "asker")
    term.line("name = input('your name? ')")
    term.wait_for(r"your name\?$")
    term.line("Ada")
    term.line("import getpass; secret = getpass.getpass('password: ')")
    term.wait_for(r"password:$")
    term.line("hunter2")
    term.line("name, len(secret)")
    term.wait_for(r"Out\[\d+\]: \('Ada', 7\)")
    assert "hunter2" not in term.screen()  # the password was not echoed


def test_a_busy_host_is_reported_and_ctrl_c_stops_waiting(start_host, console):
    host = named_host(start_host, "sleepy")
    term = console("--existing", "sleepy")
    # Block the host's own thread (outside any cell) for 30 s, as a long frame would.
    term.line("import asyncio, threading; asyncio.get_running_loop().call_soon(threading.Event().wait, 30)")
    term.wait_for(r"In \[2\]:$")
    term.line("'after the block'")
    term.wait_for(r"host busy for \d+ s: its main thread is not running kernel work", timeout=5)
    term.press("C-c")
    term.wait_for(r"stopped waiting")
    term.wait_for(r"In \[\d+\]:$")
    assert host.alive()


def test_the_console_names_the_cell_that_was_running_when_the_host_died(start_host, console, connect):
    """Killed while In [2] ran, zconsole said In [3] had been running: its
    counter had moved on at execute_input."""
    host = named_host(start_host, "victim")
    watcher = connect(host.connection_file)
    term = console("--existing", "victim")
    term.line("x = 1")
    term.wait_for(r"In \[2\]:$")
    term.line("import time; time.sleep(60)")
    wait_until(lambda: watcher.control("kernel_info_request")["zembed"]["executing"], what="the cell to start")
    host.kill()
    term.wait_for(r"In \[2\] was running when the host died", timeout=5)
    assert "In [3] was running" not in term.screen()


def test_a_host_stopping_its_kernel_is_not_called_a_death(start_host, console, connect):
    """A clean kernel.stop() was reported as "the host died"."""
    host = named_host(start_host, "polite")
    term = console("--existing", "polite")
    connect(host.connection_file).kc.execute("kernel.stop()")  # the host's own code, as its quit handler would
    term.wait_for(rf"the host stopped its kernel: polite \(pid {host.pid}\) runs on without it", timeout=5)
    assert "the host died" not in term.screen()
    assert "ended without stopping" not in term.screen()
    assert host.alive()


def test_waiting_for_another_clients_input_is_explained(start_host, console, connect):
    """While another client's cell waited in input(), zconsole showed nothing."""
    host = named_host(start_host, "shared")
    other = connect(host.connection_file)
    other.kc.execute("answer = input('who? ')", allow_stdin=True)
    other.kc.get_stdin_msg(timeout=10)
    term = console("--existing", "shared")
    term.line("'mine'")
    term.wait_for(r"waiting for In \[1\] of another client \(\S+\): it waits for input from that client", timeout=5)
    other.kc.input("Ada")
    term.wait_for(r"Out\[2\]: 'mine'")


def test_rich_output_goes_to_a_file_and_late_output_shows_up(start_host, console, tmp_path):
    named_host(start_host, "rich")
    term = console("--existing", "rich")
    term.line("import zembed; zembed.display({'text/plain': 'a table', 'text/html': '<table></table>'}, raw=True)")
    match = term.wait_for(r"\[text/html: (\S+\.html)\]")
    assert "<table>" in Path(match.group(1)).read_text()
    term.line("%profile_host 0.5")
    term.wait_for(r"In \[\d+\]:$")
    term.wait_for(r"late output of an earlier cell", timeout=10)  # the report, without pressing Enter


def test_history_comes_back_in_a_new_console_and_ctrl_r_finds_it(start_host, console):
    named_host(start_host, "memory")
    term = console("--existing", "memory")
    term.line("distinctive_name_1234 = 'remembered'")
    term.wait_for(r"In \[2\]:$")
    term.press("C-d")
    term.wait_for(r"\[exit 0\]")
    term = console("--existing", "memory")
    term.press("C-r")
    term.wait_for(r"I-search backward:")
    term.type("distinctive")
    term.wait_for(r"distinctive_name_1234 = 'remembered'")
    term.press("Enter")  # accept the search result into the line
    term.press("Enter")
    term.line("distinctive_name_1234")
    term.wait_for(r"Out\[\d+\]: 'remembered'")


def test_any_jupyter_kernel_can_be_attached(tmp_path, console, runtime_dir):
    connection_file = runtime_dir / "kernel-ipy.json"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    kernel = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(connection_file.exists, timeout=20)
        term = console("--existing", str(connection_file))
        term.line("import sys; 'ipykernel' in sys.modules")
        term.wait_for(r"Out\[1\]: True")
    finally:
        kernel.kill()
        kernel.wait(5)


def test_list_and_clean_and_clear_errors(start_host, runtime_dir):
    live = named_host(start_host, "listed")
    dead = named_host(start_host, "gone")
    dead.kill()
    shown = run_zconsole("--list")
    assert shown.returncode == 0
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert ["listed", str(live.pid), "live"] in [[r[0], r[1], r[3]] for r in rows if len(r) > 3]
    assert ["gone", str(dead.pid), "dead"] in [[r[0], r[1], r[3]] for r in rows if len(r) > 3]
    cleaned = run_zconsole("--list", "--clean")
    assert f"removed {dead.connection_file}" in cleaned.stdout
    assert not Path(dead.connection_file).exists() and Path(live.connection_file).exists()
    missing = run_zconsole("--existing", "nosuchapp")
    assert missing.returncode == 2
    assert "no live kernel matches 'nosuchapp'" in missing.stderr and "listed" in missing.stderr
    listed = json.loads(run_zconsole("--list", "--json").stdout)
    assert [entry["app"] for entry in listed] == ["listed"]


def test_needs_a_terminal(start_host):
    named_host(start_host, "piped")
    done = run_zconsole("--existing", "piped")
    assert done.returncode == 2
    assert "needs a terminal" in done.stderr and "zembed run" in done.stderr


# -- helpers -------------------------------------------------------------------------


def run_zconsole(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zconsole", *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
