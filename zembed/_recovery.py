"""Crash recovery: what a kernel leaves behind so its end can be explained.

While a kernel runs, its app folder (``_connection.app_data_dir``) holds a
run record in ``runs/``:

- ``<id>.json``, the lock: pid, the process's start time (so a reused pid
  is not mistaken for the host), app name, connection file, start date;
- ``<id>.log``, the crash log: ``faulthandler`` writes the native traceback
  of every thread there when the process dies of a fatal signal;
- ``<id>.cell``, the cell running or last run, rewritten before each
  execution: one state byte (``R`` running, ``F`` finished), a JSON header
  line (with the code's ``length`` in bytes: the file is overwritten, not
  truncated), then the code.  A crash report names the cell that killed the host.

A clean stop removes the record.  A record whose process is gone (or whose
pid now belongs to another process) is an unclean end: ``collect()`` turns
it into a report in ``crashes/`` and removes it.  The next kernel of the
same app calls ``collect()`` at start and announces the reports no kernel
has announced yet (banner, ``kernel_info``); ``zembed crashes`` and zconsole
call it too, so a crash is explained even before the host comes back.

An unhandled exception that ends the host's program is reported at exit
(``sys.last_value`` is set by the interpreter before ``atexit`` runs).

Cost on the host's thread: two small ``pwrite`` calls per cell, to the page
cache (no fsync: a crashed process's writes survive it; only a machine
crash could lose them).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ._private import open_private, private_dir, remove_quietly, write_private
from ._process import pid_gone, process_identity
from ._protocol import json_bytes, utc_now

log = logging.getLogger("zembed")

Report = dict[str, Any]

KEEP_REPORTS = 50  # per app: a host crashing in a loop must not fill the disk
KIND_SIGNAL = "fatal error"
KIND_EXCEPTION = "unhandled exception"
KIND_VANISHED = "ended without stopping the kernel"
VANISHED_HINT = "killed (kill -9, out of memory), os._exit(), or a crash outside Python's reach: no native traceback"


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class RunRecord:
    """The live kernel's side: the lock, the crash log and the cell file."""

    def __init__(self, app_dir: Path, app: str, connection_file: Path) -> None:
        self.app_dir = app_dir
        runs = private_dir(app_dir / "runs")
        pid = os.getpid()
        self.run_id = f"{pid}-{os.urandom(3).hex()}"  # several kernels in one process each get their own
        self.lock_path = runs / f"{self.run_id}.json"
        self.log_path = runs / f"{self.run_id}.log"
        self.cell_path = runs / f"{self.run_id}.cell"
        # faulthandler keeps writing to the log file until close()
        self._log_file = os.fdopen(open_private(self.log_path, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8")
        self._cell_fd = open_private(self.cell_path, os.O_RDWR | os.O_TRUNC)
        # faulthandler is process-wide: take it only when the host has not
        # enabled it itself (then its traces go where the host said).
        self.owns_faulthandler = not faulthandler.is_enabled()
        if self.owns_faulthandler:
            faulthandler.enable(file=self._log_file, all_threads=True)
        self.info = {
            "pid": pid,
            "process": process_identity(pid),
            "app": app,
            "connection_file": str(connection_file),
            "started": utc_now(),
            "faulthandler": "zembed"
            if self.owns_faulthandler
            else "the host's own (native traces are not in this log)",
        }
        write_private(self.lock_path, json.dumps(self.info).encode("utf-8"))
        self._closed = False

    def cell_started(self, count: int, msg_id: str, code: str, history_session: int | None) -> None:
        """``history_session``: where the cell is in the history (None: not stored there)."""
        source = code.encode("utf-8", "surrogateescape")
        # The header says how long the code is, so the file is never
        # truncated: a longer earlier cell's tail stays behind, unread
        # (one system call less per cell on the host's thread).
        header = {
            "execution_count": count,
            "msg_id": msg_id,
            "started": utc_now(),
            "session": history_session,
            "length": len(source),
        }
        os.pwrite(self._cell_fd, b"R" + json_bytes(header) + b"\n" + source, 0)

    def cell_finished(self) -> None:
        os.pwrite(self._cell_fd, b"F", 0)

    def close(self, unhandled: BaseException | None = None) -> None:
        """A clean stop: remove the record.  With ``unhandled``, the program
        is ending because of that exception: write a report first."""
        if self._closed:
            return
        self._closed = True
        if self.owns_faulthandler:
            faulthandler.disable()
        self._log_file.close()
        os.close(self._cell_fd)
        if unhandled is not None:
            report = _report_from(self.info, self.cell_path, self.log_path, time.time())
            report["kind"] = KIND_EXCEPTION
            report["summary"] = f"{type(unhandled).__name__}: {unhandled}"
            report["python_traceback"] = "".join(traceback.format_exception(unhandled))
            _save(self.app_dir, report)
        for path in (self.lock_path, self.log_path, self.cell_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def unhandled_exception() -> BaseException | None:
    """The exception ending the program, when ``atexit`` runs after one."""
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return exc if isinstance(exc, BaseException) and not isinstance(exc, (SystemExit, KeyboardInterrupt)) else None


def _ended(info: dict[str, Any]) -> bool:
    pid = info.get("pid")
    if not isinstance(pid, int) or pid_gone(pid):
        return True
    recorded = info.get("process")
    return recorded is not None and process_identity(pid) != recorded  # the pid was reused


def collect(app_dir: Path) -> list[Report]:
    """Turn the run records of ended processes into crash reports; return the new reports."""
    runs = app_dir / "runs"
    if not runs.is_dir():
        return []
    found = []
    for lock in sorted(runs.glob("*.json")):
        try:
            info = json.loads(lock.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if isinstance(info, dict) and info and not _ended(info):
            continue
        claimed = lock.with_suffix(f".claimed-{os.getpid()}")
        try:
            os.rename(lock, claimed)  # another collector (a console, a new kernel) may race us
        except FileNotFoundError:
            continue
        log_path, cell_path = lock.with_suffix(".log"), lock.with_suffix(".cell")
        last_seen = max((p.stat().st_mtime for p in (claimed, log_path, cell_path) if p.exists()), default=time.time())
        report = _report_from(info if isinstance(info, dict) else {}, cell_path, log_path, last_seen)
        found.append(_save(app_dir, report))
        if isinstance(info, dict):
            _remove_connection_file_of(info)
        for path in (claimed, log_path, cell_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
    return found


def _remove_connection_file_of(info: dict[str, Any]) -> None:
    """A host that died left its connection file: ``jupyter console
    --existing APP`` would pick it and hang.  Remove it, if it is still the
    dead process's own (a later kernel may have been given the same path)."""
    path = info.get("connection_file")
    if not isinstance(path, str):
        return
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get("zembed", {})
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(meta, dict) and meta.get("pid") == info.get("pid"):
        remove_quietly(path)


def _report_from(info: dict[str, Any], cell_path: Path, log_path: Path, last_seen: float) -> Report:
    try:
        native = log_path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        native = ""
    report: Report = {
        "app": info.get("app", "?"),
        "pid": info.get("pid"),
        "connection_file": info.get("connection_file"),
        "started": info.get("started"),
        "last_seen": _iso(last_seen),
        "detected": utc_now(),
        "kind": KIND_SIGNAL if native else KIND_VANISHED,
        "summary": _first_error_line(native) if native else VANISHED_HINT,
        "native_traceback": native,
        "cell": _read_cell(cell_path),
        "faulthandler": info.get("faulthandler"),
        "announced": False,
    }
    return report


def _first_error_line(native: str) -> str:
    for line in native.splitlines():
        if line.startswith("Fatal Python error"):
            return line
    return native.splitlines()[0]


def _read_cell(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) < 2 or raw[:1] not in (b"R", b"F"):
        return None
    header, _, code = raw[1:].partition(b"\n")
    try:
        cell = json.loads(header)
    except ValueError:
        return None
    length = cell.pop("length", None)
    if isinstance(length, int):
        code = code[:length]
    cell["running"] = raw[:1] == b"R"
    cell["code"] = code.decode("utf-8", "replace")
    return dict(cell)


def _save(app_dir: Path, report: Report) -> Report:
    """Write a report; the app keeps its newest KEEP_REPORTS (names sort by time)."""
    folder = private_dir(app_dir / "crashes")
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now / 1e9)) + f".{now % 10**9:09d}"
    path = folder / f"{stamp}-{report.get('pid')}-{os.urandom(2).hex()}.json"
    report["file"] = str(path)
    _write(path, report)
    for old in sorted(folder.glob("*.json"))[:-KEEP_REPORTS]:
        old.unlink(missing_ok=True)
    return report


def _write(path: Path, report: Report) -> None:
    write_private(path, json.dumps(report, indent=2).encode("utf-8"))


def reports(app_dir: Path) -> list[Report]:
    """Every crash report of the app, newest first."""
    folder = app_dir / "crashes"
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(report, dict):
            report["file"] = str(path)
            found.append(report)
    found.sort(key=lambda r: (str(r.get("last_seen", "")), r["file"]), reverse=True)
    return found


def report_for(app_dir: Path, pid: int, wait: float = 2.0) -> Report | None:
    """The report on process ``pid`` of the app, collecting its record if
    it has just died (blocking: a dying process may still be writing it)."""
    deadline = time.monotonic() + wait
    while True:
        collect(app_dir)
        for report in reports(app_dir):
            if report.get("pid") == pid:
                return report
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def take_unannounced(app_dir: Path) -> list[Report]:
    """Reports no kernel has announced yet, marked announced (newest first)."""
    fresh = [r for r in reports(app_dir) if not r.get("announced")]
    for report in fresh:
        report["announced"] = True
        try:
            _write(Path(report["file"]), report)
        except OSError as exc:
            log.warning("zembed: cannot mark crash report %s as announced: %s", report["file"], exc)
    return fresh


ENDINGS = {
    KIND_SIGNAL: "died of a fatal error",
    KIND_EXCEPTION: "ended with an unhandled exception",
    KIND_VANISHED: "ended without stopping the kernel",
}


def notice(report: Report) -> Report:
    """What a kernel announces of a report (in every ``kernel_info``): the
    report without its tracebacks, plus its one-paragraph ``text``."""
    kept = {k: v for k, v in report.items() if k not in ("native_traceback", "python_traceback")}
    return {**kept, "text": describe(report)}


def describe(report: Report) -> str:
    """One paragraph for a banner or a console: what ended, when, in which cell."""
    ending = ENDINGS.get(str(report.get("kind")), str(report.get("kind")))
    text = f"the run of {report.get('app')!r} (pid {report.get('pid')}) {ending}: {report.get('summary')}"
    text += f"; last seen {report.get('last_seen')}"
    cell = report.get("cell")
    if cell:
        where = "while running" if cell.get("running") else "after"
        first = cell.get("code", "").strip().splitlines()
        code = (first[0][:60] + (" ..." if len(first) > 1 or len(first[0]) > 60 else "")) if first else ""
        text += f", {where} In [{cell.get('execution_count')}]: {code}"
    return text


def full_text(report: Report) -> str:
    """The whole report, as ``zembed crashes NAME`` prints it."""
    lines = [describe(report), f"report: {report.get('file')}", f"started: {report.get('started')}"]
    cell = report.get("cell")
    if cell:
        state = "running when the host died" if cell.get("running") else "finished; the host died later"
        lines += [f"cell In [{cell.get('execution_count')}] ({state}, started {cell.get('started')}):"]
        lines += ["    " + line for line in cell.get("code", "").splitlines()]
    if report.get("python_traceback"):
        lines += ["Python traceback:", report["python_traceback"].rstrip()]
    if report.get("native_traceback"):
        lines += ["native traceback (faulthandler, all threads):", report["native_traceback"]]
    return "\n".join(lines)
