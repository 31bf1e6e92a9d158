"""Hosts that die on purpose: clients see it by heartbeat, the next start
(and ``zembed crashes``) says how and in which cell, history survives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from zembed._connection import address

# case: (cell that ends the host, or None for kill -9 from outside; kind; text the report must hold)
CASES: dict[str, tuple[str | None, str, str]] = {
    "segfault": ("import ctypes; ctypes.string_at(0)", "fatal error", "Segmentation fault"),
    "abort": ("import os; os.abort()", "fatal error", "Aborted"),
    "os-exit": ("import os; os._exit(1)", "ended without stopping the kernel", "killed"),
    "kill-9": (None, "ended without stopping the kernel", "killed"),
    "loop-exception": ("host.fail = 'the loop broke'", "unhandled exception", "RuntimeError: the loop broke"),
}
DETECTION_LIMIT = 3.0


class HeartbeatWatch:
    """Pings the kernel's heartbeat as a client does: a ping unanswered for
    ``timeout`` seconds means the host is gone."""

    def __init__(self, info: dict[str, Any], timeout: float = 0.5) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(address(info, "hb"))
        self.timeout = timeout
        self.sent = 0

    def ping(self) -> bool:
        self.sent += 1
        payload = f"ping-{self.sent}".encode()
        self.socket.send(payload)
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.socket.poll(int(left * 1000) + 1) and self.socket.recv() == payload:
                return True
        return False

    def seconds_until_dead(self, since: float, limit: float = 15.0) -> float:
        while time.monotonic() - since < limit:
            if not self.ping():
                return time.monotonic() - since
        raise AssertionError(f"the heartbeat still answers {limit} s after the crash")

    def close(self) -> None:
        self.socket.close()
        self.context.term()


def zembed_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zembed", *args], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )


@pytest.mark.parametrize("case", list(CASES))
def test_a_crash_is_seen_reported_and_announced(case, start_host, connect, record_property):
    app = f"crashy-{case}"
    code, kind, evidence = CASES[case]
    host = start_host("asyncio", "--name", app)
    client = connect(host.connection_file)
    assert client.value("6 * 7") == 42  # In [1]: a cell before the fatal one
    watch = HeartbeatWatch(json.loads(Path(host.connection_file).read_text()))
    try:
        assert watch.ping()
        began = time.monotonic()
        if code is None:
            os.kill(host.pid, 9)
        else:
            client.kc.execute(code)  # In [2]; no reply will come
        detected = watch.seconds_until_dead(began)
    finally:
        watch.close()
    record_property("detection_seconds", round(detected, 2))
    print(f"{case}: heartbeat silent {detected:.2f} s after the crash")
    assert detected < DETECTION_LIMIT
    host.process.wait(10)
    client.close()

    # Before the host comes back: the command line already explains it.
    listing = zembed_cli("crashes", app, "--json")
    assert listing.returncode == 0, listing.stderr
    (report,) = json.loads(listing.stdout)
    assert report["kind"] == kind and report["pid"] == host.pid and report["app"] == app
    text = report["native_traceback"] + report.get("python_traceback", "") + report["summary"]
    assert evidence in text
    cell = report["cell"]
    assert cell["code"] == (code or "6 * 7")
    assert cell["execution_count"] == (2 if code else 1)
    assert cell["running"] is (code is not None and case != "loop-exception")
    if kind == "fatal error":
        assert 'File "<In [2]>", line 1' in report["native_traceback"], "the native traceback names the cell"
    full = zembed_cli("crashes", app)
    assert kind in full.stdout and (code or "6 * 7") in full.stdout

    # The next start of the app announces it to every client that attaches.
    again = start_host("asyncio", "--name", app)
    for _ in range(2):
        attached = connect(again.connection_file)
        info = attached.kc.kernel_info(reply=True, timeout=10)["content"]
        assert f"(pid {host.pid})" in info["banner"] and "zembed crashes" in info["banner"]
        (announced,) = info["zembed"]["crashes"]
        assert "native_traceback" not in announced  # kernel_info carries the notice; the report is on disk
        assert (
            announced["pid"] == host.pid
            and announced["kind"] == kind
            and announced["cell"]["code"] == (code or "6 * 7")
        )
        # History survived, the fatal cell included (it may never have reached the database).
        tail = attached.kc.history(hist_access_type="tail", n=2, reply=True, timeout=10)["content"]["history"]
        assert [entry[2] for entry in tail] == (["6 * 7", code] if code else ["6 * 7"])
        attached.close()
    assert app in zembed_cli("crashes").stdout


def test_a_clean_stop_leaves_no_report_and_nothing_is_announced_twice(start_host, connect):
    host = start_host("asyncio", "--name", "tidy")
    client = connect(host.connection_file)
    client.run("host.quit = True")
    assert host.process.wait(10) == 0
    client.close()
    assert "no crash reports" in zembed_cli("crashes", "tidy").stdout

    crashed = start_host("asyncio", "--name", "tidy")
    os.kill(crashed.pid, 9)
    crashed.process.wait(10)
    second = start_host("asyncio", "--name", "tidy")
    info = connect(second.connection_file).kc.kernel_info(reply=True, timeout=10)["content"]
    assert len(info["zembed"]["crashes"]) == 1
    os.kill(second.pid, 9)
    second.process.wait(10)
    third = start_host("asyncio", "--name", "tidy")
    info = connect(third.connection_file).kc.kernel_info(reply=True, timeout=10)["content"]
    (latest,) = info["zembed"]["crashes"]  # the second one's end; the first was announced already
    assert latest["pid"] == second.pid
    assert len(json.loads(zembed_cli("crashes", "tidy", "--json").stdout)) == 2


def test_a_reused_pid_is_not_mistaken_for_the_host(tmp_path):
    from zembed._process import process_identity
    from zembed._recovery import collect

    runs = tmp_path / "app" / "runs"
    runs.mkdir(parents=True)
    # A record naming this (live) process, but with another start time: its pid was reused.
    (runs / "1-aa.json").write_text(json.dumps({"pid": os.getpid(), "process": "boot:1", "app": "app"}))
    (runs / "2-bb.json").write_text(json.dumps({"pid": os.getpid(), "process": process_identity(os.getpid())}))
    found = collect(tmp_path / "app")
    assert [r["kind"] for r in found] == ["ended without stopping the kernel"]
    assert (runs / "2-bb.json").exists(), "a live process's record is left alone"


def test_reports_are_bounded_per_app(tmp_path):
    from zembed._recovery import KEEP_REPORTS, _save, reports

    for pid in range(KEEP_REPORTS + 10):
        _save(tmp_path, {"pid": pid, "last_seen": f"2026-01-01T00:00:{pid:03d}Z"})
    kept = reports(tmp_path)
    assert sorted(r["pid"] for r in kept) == list(range(10, KEEP_REPORTS + 10))  # the newest stay


def test_the_cell_file_names_the_last_cell_only(tmp_path):
    """The cell file is overwritten in place, never truncated: a long cell
    followed by a short one leaves the long one's tail in the file, and the
    report must still show just the short one."""
    from zembed._recovery import RunRecord, _read_cell

    record = RunRecord(tmp_path / "app", "app", tmp_path / "kernel.json")
    try:
        record.cell_started(1, "first", "x = 'a long first cell' * 10\n" * 20, 1)
        record.cell_finished()
        record.cell_started(2, "second", "crash()  # é", None)
        cell = _read_cell(record.cell_path)
        assert cell is not None
        assert (cell["code"], cell["running"], cell["msg_id"], cell["execution_count"]) == (
            "crash()  # é",
            True,
            "second",
            2,
        )
        assert record.cell_path.stat().st_size > len(cell["code"].encode()) + 100, "the first cell's tail is there"
        record.cell_finished()
        assert _read_cell(record.cell_path)["running"] is False  # type: ignore[index]
    finally:
        record.close()
