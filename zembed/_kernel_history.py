"""Input history of an app, answering ``history_request``: SQLite, per app name.

Entries are ``(session, line, input, output)``; ``session`` numbers a
kernel run of the app (each start takes the next number) and ``line`` is
the execution count.  The spec's three access types are served across
sessions: ``tail`` (last n), ``range`` (session, start, stop; a session
<= 0 counts back from the current one) and ``search`` (glob ``pattern``,
optionally ``unique``, last n).

Writes never block the host's thread: ``append`` and ``set_output`` queue
the change, write it to this kernel's journal (``_history_journal``: one
line appended to a file, about 2 µs) and return its sequence number.  A
reply to that cell waits in the socket thread's outbox until
``reached(seq)``, which a journaled change is at once; the socket thread
commits the queued changes to SQLite in batches, after it has sent the
replies (``commit_due``: 50 ms after the first), so no transaction is on
a round trip.  A change that could not be journaled (the database not
open yet, the journal's disk full) is reached once committed, as before
there was a journal.  WAL mode with ``synchronous=NORMAL``: a crashed process loses
nothing it wrote, only a machine crash could.  So nothing a client was
told about is lost, and the host's thread is never woken or slowed for it.

No thread of its own while it serves: the database is opened by a
short-lived thread at start (the first ``kernel_info`` is answered
meanwhile), and one comes back only for what may take milliseconds:
waiting out a database another process has locked, pruning and
checkpointing.

The database is bounded (``limit`` entries; the oldest go) and checked when
opened: a corrupt file is moved aside and a new one made, with a warning.
With no path, history lives in memory (same queries, same bound).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._dap import mark_untraced
from ._history_journal import ADD, OUTPUT, Journal, replay_orphans
from ._private import open_private, private_dir

log = logging.getLogger("zembed")

Entry = tuple[int, int, str, "str | None"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, session INTEGER NOT NULL, line INTEGER NOT NULL,
    source TEXT NOT NULL, output TEXT, UNIQUE (session, line));
CREATE TABLE IF NOT EXISTS sessions (session INTEGER PRIMARY KEY, pid INTEGER, started TEXT);
"""
PRUNE_EVERY = 1000
# Characters of a result's text kept with its entry: the history is for
# finding what ran and what it gave, and a 10 MB repr kept whole made an
# app's database grow by 10 MB a cell (and the reply wait for writing it).
OUTPUT_KEPT = 10_000
READY_TIMEOUT = 5.0
# Journaled changes are committed in batches: at most this long after the
# first of them, or once this many are queued.
COMMIT_DELAY = 0.05
COMMIT_BATCH = 500


class History:
    def __init__(
        self,
        path: Path | None = None,
        limit: int = 100_000,
        on_commit: Callable[[], None] | None = None,
        pid: int = 0,
    ) -> None:
        self.path = path
        self.limit = max(1, limit)
        self.problem: str | None = None  # what went wrong with the file, if anything (shown in kernel_info)
        self._on_commit = on_commit
        self._pid = pid
        self._ops: deque[tuple[Any, ...]] = deque()  # appended by the host's thread
        self._carry: list[tuple[Any, ...]] = []  # taken, not yet committed: the database was busy
        self._seq = 0
        self.committed = 0  # every change up to this sequence number is in the database
        self._session = 0
        self._connection: sqlite3.Connection | None = None  # used under _commit_lock, by either committer
        self._commit_lock = threading.Lock()
        self._added = 0
        self._journal: Journal | None = None  # opened with the database
        self._journal_lock = threading.Lock()  # a change and its journal line, against the journal's clearing
        self.journaled = 0  # every change up to this sequence number is committed or in the journal
        self._closing = False
        self._ready = threading.Event()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        # The short-lived thread that does what may take milliseconds; one at a time.
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._work_wanted = False
        self._due: float | None = None  # when the socket thread commits what is queued (commit_due)
        self._start_worker()  # the first job: open the database

    # -- the host's thread ----------------------------------------------------

    def wait_for_session(self, timeout: float = READY_TIMEOUT) -> int:
        """This run's session number, once the worker has opened the
        database (it blocks until then, at most ``timeout`` seconds)."""
        self._ready.wait(timeout)
        return self._session

    @property
    def session_if_ready(self) -> int | None:
        return self._session if self._ready.is_set() else None

    def append(self, line: int, source: str) -> int:
        """Queue an entry; return its sequence number (see ``reached``)."""
        return self._put("add", None, line, source)

    def recover(self, session: int, line: int, source: str) -> int:
        """Add an entry of an earlier session unless it is there (a cell
        that crashed its host before its entry was committed)."""
        return self._put("recover", session, line, source)

    def set_output(self, line: int, output: str) -> int:
        """Record the text of a cell's result: the first ``OUTPUT_KEPT``
        characters, and how long it was when it was longer."""
        if len(output) > OUTPUT_KEPT:
            output = (
                f"{output[:OUTPUT_KEPT]}\n... [{len(output):,} characters; the history keeps the first {OUTPUT_KEPT:,}]"
            )
        return self._put("output", None, line, output)

    def _put(self, kind: str, session: int | None, line: int, text: str | None) -> int:
        # No wake-up here: waking a thread mid-cell would make it fight the
        # host's thread for the GIL.  The change is committed by the socket
        # thread after it has sent the reply (``commit_due``), or by a
        # reader that needs it first.
        with self._journal_lock:
            self._seq += 1
            seq = self._seq
            self._ops.append((seq, kind, session, line, text))
            journal = self._journal
            if journal is not None and kind != "recover" and max(self.journaled, self.committed) == seq - 1:
                try:
                    journal.append(ADD if kind == "add" else OUTPUT, self._session, line, text)
                    self.journaled = seq
                except OSError as exc:
                    log.warning("zembed: history journal %s: %s; replies wait for SQLite again", journal.path, exc)
                    self._journal = None
        return seq

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued, close the database, remove the journal."""
        self._closing = True
        self._ready.wait(timeout)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
        with self._commit_lock:
            connection, self._connection = self._connection, None
            saved = True
            if connection is not None:
                batch = [*self._carry, *self._drain()]
                connection.execute("PRAGMA busy_timeout = 1000")  # what cannot be saved now, the next start replays
                if batch:
                    added = self._commit(connection, batch, give_up_if_busy=False)
                    saved = added is not None and added >= 0
                    self._added += max(0, added or 0)
                if saved:
                    self._maintain(connection, blocking=True)
                connection.close()
            if self._journal is not None:
                self._journal.close(remove=saved)  # kept: the next start replays it
            self._journal = None
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _drain(self) -> list[tuple[Any, ...]]:
        ops = []
        while self._ops:
            ops.append(self._ops.popleft())
        return ops

    # -- the socket thread (and readers) ----------------------------------------

    def reached(self, seq: int) -> bool:
        """May a reply promise change ``seq``?  Yes once it is journaled or
        committed.  If neither, commit what is queued now, without waiting
        for a busy database; when that is not possible, the worker takes
        over and calls ``on_commit`` when done."""
        if self.journaled >= seq or self.committed >= seq:
            return True
        if not self._commit_pending(blocking=False):
            self._start_worker()
        return self.committed >= seq

    def commit_due(self) -> float | None:
        """The socket thread, after sending: commit what is queued once the
        oldest change has waited ``COMMIT_DELAY`` (they are journaled: a
        commit per cell would sit between a reply and the next request of a
        client that sends them back to back), without waiting for a busy
        database (the worker waits instead).  Seconds until it is due again,
        or None when nothing is queued."""
        if not self._ops and not self._carry:
            self._due = None
            return None
        now = time.monotonic()
        if self._due is None:
            self._due = now + COMMIT_DELAY
        if now < self._due and len(self._ops) < COMMIT_BATCH:
            return self._due - now
        self._due = None
        if not self._commit_pending(blocking=False) and self._ready.is_set():
            self._start_worker()
        return None

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM history", ())[0][0])

    def query(self, request: dict[str, Any]) -> list[list[Any]]:
        """The ``history`` list of a ``history_reply`` for ``request``."""
        access = request.get("hist_access_type", "tail")
        with_output = bool(request.get("output", False))
        n = request.get("n")
        if access == "tail":
            rows = self._tail(n)
        elif access == "range":
            session = int(request.get("session", 0) or 0)
            if session <= 0:
                session += self.wait_for_session()
            start = int(request.get("start", 0) or 0)
            stop = request.get("stop")
            where, args = "session = ? AND line >= ?", [session, start]
            if stop is not None:
                where, args = where + " AND line < ?", [*args, int(stop)]
            rows = self._read(f"SELECT session, line, source, output FROM history WHERE {where} ORDER BY id", args)
        elif access == "search":
            # SQLite's GLOB is fnmatch's case-sensitive glob, but for [!...]
            pattern = str(request.get("pattern", "*")).replace("[!", "[^")
            rows = self._read(
                "SELECT session, line, source, output FROM history WHERE source GLOB ? ORDER BY id", (pattern,)
            )
            if request.get("unique"):
                latest: dict[str, Entry] = {}
                for row in rows:
                    latest.pop(row[2], None)
                    latest[row[2]] = row
                rows = list(latest.values())
            rows = _last(rows, n)
        else:
            raise ValueError(f"unknown hist_access_type {access!r}: use tail, range or search")
        if with_output:
            return [[s, line, [src, out]] for s, line, src, out in rows]
        return [[s, line, src] for s, line, src, _ in rows]

    def _tail(self, n: Any) -> list[Entry]:
        if n is None:
            return self._read("SELECT session, line, source, output FROM history ORDER BY id", ())
        count = int(n)
        if count <= 0:
            return []
        rows = self._read("SELECT session, line, source, output FROM history ORDER BY id DESC LIMIT ?", (count,))
        return rows[::-1]

    def _read(self, sql: str, args: Any) -> list[Entry]:
        self._wait_committed(self._seq)
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect(self._database, check_same_thread=False)
            return [tuple(row) for row in self._reader.execute(sql, args)]  # type: ignore[misc]

    def _wait_committed(self, seq: int) -> None:
        """Reads see every change queued before them (bounded wait)."""
        self._ready.wait(READY_TIMEOUT)
        if self.committed >= seq or self._commit_pending(blocking=False):
            return
        self._start_worker()  # the database is busy: the worker waits it out
        deadline = time.monotonic() + READY_TIMEOUT
        while self.committed < seq and time.monotonic() < deadline:
            time.sleep(0.0005)

    # -- the worker: opening, waiting out locks, pruning ------------------------

    @property
    def _database(self) -> str:
        return f"file:zembed-history-{id(self)}?mode=memory&cache=shared" if self.path is None else str(self.path)

    @staticmethod
    def _connect(database: str, **kwargs: Any) -> sqlite3.Connection:
        connection = sqlite3.connect(database, uri=database.startswith("file:"), timeout=10, **kwargs)
        connection.execute("PRAGMA busy_timeout = 10000")
        connection.execute("PRAGMA cache_size = -512")  # KiB: the host's memory stays flat as history grows
        return connection

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            connection = self._connect(self._database, check_same_thread=False)
            connection.executescript(SCHEMA)
            return connection
        private_dir(self.path.parent)
        try:
            return self._open_file()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            self.problem = f"history database {self.path} was unreadable ({exc}); moved to {aside}, started afresh"
            log.warning("zembed: %s", self.problem)
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{aside}{suffix}")
            return self._open_file()

    def _open_file(self) -> sqlite3.Connection:
        # SQLite gives its -wal and -shm files the database file's mode: make
        # that 0600 before SQLite creates anything.
        for suffix in ("", "-wal", "-shm"):
            if suffix == "" or Path(f"{self.path}{suffix}").exists():
                os.close(open_private(f"{self.path}{suffix}", os.O_RDWR))
        connection = self._connect(str(self.path), check_same_thread=False)  # committers share it, under a lock
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA wal_autocheckpoint = 0")  # the worker checkpoints when it prunes
            check = connection.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
            connection.executescript(SCHEMA)
        except BaseException:
            connection.close()
            raise
        return connection

    def _open_session(self) -> None:
        """The worker's first job: open the database, replay what kernels
        that ended uncleanly journaled, start this run's session."""
        try:
            connection = self._open()
            if self.path is not None:
                replay_orphans(self.path, connection)
            with connection:
                self._session = (
                    connection.execute(
                        "INSERT INTO sessions (pid, started) VALUES (?, ?)",
                        (self._pid, time.strftime("%Y-%m-%dT%H:%M:%S")),
                    ).lastrowid
                    or 1
                )
        except (sqlite3.Error, OSError) as exc:
            self.problem = f"history database {self.path} cannot be used ({exc}); history kept in memory"
            log.warning("zembed: %s", self.problem)
            self.path = None
            connection = self._open()
            self._session = 1
        if self.path is not None:
            try:
                self._journal = Journal(self.path)
            except OSError as exc:
                log.warning("zembed: no history journal (%s): replies wait for SQLite", exc)
        self._connection = connection
        self._ready.set()

    def _start_worker(self) -> None:
        """Have the worker run (again): commit what is queued, waiting for a
        busy database, and prune when due.  It ends when nothing is left."""
        with self._worker_lock:
            self._work_wanted = True
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="zembed-history", daemon=True)
                mark_untraced(self._worker)
                self._worker.start()

    def _work(self) -> None:
        try:
            if not self._ready.is_set():
                self._open_session()
            while True:
                with self._worker_lock:
                    if not self._work_wanted or self._closing:
                        self._worker = None
                        return
                    self._work_wanted = False
                self._commit_pending(blocking=True)
        except BaseException:
            with self._worker_lock:
                self._worker = None
            self._ready.set()  # nobody waits for a database that will not open
            log.exception("zembed: the history's worker failed")

    def _commit_pending(self, blocking: bool) -> bool:
        """Commit every queued change; False if that must be left to the
        worker (not open yet, busy with another commit, or the database is
        locked by another process and ``blocking`` is False)."""
        if not self._ready.is_set() or not self._commit_lock.acquire(blocking=blocking):
            return False
        try:
            connection = self._connection
            if connection is None:
                return False
            batch = self._carry
            batch.extend(self._drain())
            if not batch:
                self._maintain(connection, blocking)
                return True
            connection.execute(f"PRAGMA busy_timeout = {10_000 if blocking else 0}")
            added = self._commit(connection, batch, give_up_if_busy=not blocking)
            if added is None:
                self._carry = batch
                return False
            self._carry = []
            self.committed = batch[-1][0]
            if added >= 0:
                self._added += added
                self._clear_journal()
            # else: lost, and logged; the journal keeps them for the next start
            self._maintain(connection, blocking)
        finally:
            self._commit_lock.release()
        if blocking and self._on_commit is not None:
            self._on_commit()  # replies waiting for these changes can go
        return True

    def _clear_journal(self) -> None:
        with self._journal_lock:
            if self._journal is None or self.committed < self._seq:
                return  # a change journaled since this commit began: cleared after the next
            try:
                self._journal.clear()
            except OSError as exc:
                log.warning("zembed: history journal %s: %s; replies wait for SQLite again", self._journal.path, exc)
                self._journal = None

    def _maintain(self, connection: sqlite3.Connection, blocking: bool) -> None:
        if self._added < min(PRUNE_EVERY, max(1, self.limit // 10)):  # at most 10% over the limit
            return
        if not blocking:
            self._start_worker()  # pruning and checkpoints are the worker's: they may take milliseconds
            return
        self._added = 0
        self._prune(connection)

    def _commit(self, connection: sqlite3.Connection, ops: list[tuple[Any, ...]], give_up_if_busy: bool) -> int | None:
        """Write ``ops`` in one transaction; the number of entries added,
        None when the database is locked (and ``give_up_if_busy``, or the
        changes are journaled), -1 when they could not be written (logged)."""
        added = 0
        try:
            with connection:
                for _seq, kind, session, line, text in ops:
                    if kind == "output":
                        connection.execute(
                            "UPDATE history SET output = ? WHERE session = ? AND line = ?",
                            (text, self._session, line),
                        )
                        continue
                    verb = "INSERT OR REPLACE" if kind == "add" else "INSERT OR IGNORE"
                    connection.execute(
                        f"{verb} INTO history (session, line, source) VALUES (?, ?, ?)",
                        (session or self._session, line, text),
                    )
                    added += 1
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) and (give_up_if_busy or self._journal is not None):
                return None  # tried again later; journaled changes are safe meanwhile
            log.warning("zembed: history entries not saved: %s", exc)
            return -1
        except sqlite3.Error as exc:  # disk full, file removed: serving goes on, the loss is logged
            log.warning("zembed: history entries not saved: %s", exc)
            return -1
        return added

    def _prune(self, connection: sqlite3.Connection) -> None:
        """Drop the oldest entries beyond the limit, and checkpoint the WAL
        (switched off as automatic: a checkpoint syncs to disk, and must not
        happen in a commit made on the socket thread)."""
        try:
            with connection:
                connection.execute("DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?", (self.limit,))
            if self.path is not None:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("zembed: history not pruned: %s", exc)


def _last(entries: list[Entry], n: Any) -> list[Entry]:
    if n is None:
        return entries
    count = int(n)
    return entries[-count:] if count > 0 else []
