"""The history's journal: what a reply promised, before SQLite has it.

A reply must not promise what a crash could take back, but it need not
wait for a SQLite transaction either (about 50 µs on the socket thread,
the largest stage of an execute's round trip that is not the protocol's
own).  So each history change is first appended to a small file of this
kernel's own, one JSON line per change, by the thread that makes it (a
``write`` to the page cache, about 2 µs): a process that dies keeps what
it wrote, as the crash log does.  The socket thread commits the changes
to SQLite after it has sent the replies, and empties the journal when
everything in it is committed.

A journal whose process is gone is an unclean end: the next kernel of the
app replays it into the database when it opens it (``replay_orphans``),
then removes it.  Replaying is idempotent: an entry already in the
database stays as it is.

The file sits next to the database, ``<database>-pending-<pid>-<random>``;
its first line says whose it is (pid and process identity, so a reused pid
is not mistaken for the writer).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from ._private import open_private, remove_quietly
from ._process import pid_gone, process_identity

try:
    import orjson
except ImportError:  # pragma: no cover - a core dependency, but the stdlib copes
    orjson = None  # type: ignore[assignment]

log = logging.getLogger("zembed")

ADD = "add"
OUTPUT = "output"


def _line(record: list[Any]) -> bytes:
    if orjson is not None:
        try:
            return orjson.dumps(record) + b"\n"
        except TypeError:  # lone surrogates in a cell's text: the stdlib escapes them
            pass
    return json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n"


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:  # a line torn by a machine crash: the lines before it stand
        return None


class Journal:
    """This kernel's journal file, opened for appending."""

    def __init__(self, database: Path) -> None:
        pid = os.getpid()
        self.path = database.with_name(f"{database.name}-pending-{pid}-{os.urandom(3).hex()}")
        self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_TRUNC)
        self._owner = _line([pid, process_identity(pid)])
        os.write(self._fd, self._owner)

    def append(self, kind: str, session: int, line: int, text: str | None) -> None:
        """Raises OSError when the file cannot take it (disk full)."""
        os.write(self._fd, _line([kind, session, line, text]))

    def clear(self) -> None:
        """Everything written so far is committed."""
        os.ftruncate(self._fd, 0)
        os.write(self._fd, self._owner)

    def close(self, remove: bool) -> None:
        """A clean stop: the file goes once everything in it is committed
        (``remove``); otherwise it stays for the next start to replay."""
        os.close(self._fd)
        if remove:
            remove_quietly(self.path)


def replay_orphans(database: Path, connection: sqlite3.Connection) -> int:
    """Replay the journals of processes that are gone into ``connection``,
    then remove them; the number of changes replayed."""
    replayed = 0
    for path in sorted(database.parent.glob(f"{database.name}-pending-*")):
        try:
            lines = path.read_bytes().splitlines()
        except OSError:
            continue
        owner = _parse(lines[0]) if lines else None
        if isinstance(owner, list) and len(owner) == 2 and not _writer_gone(owner[0], owner[1]):
            continue  # a live kernel's
        changes = [record for record in map(_parse, lines[1:]) if _is_change(record)]
        try:
            with connection:
                for kind, session, line, text in changes:
                    if kind == ADD:
                        connection.execute(
                            "INSERT OR IGNORE INTO history (session, line, source) VALUES (?, ?, ?)",
                            (session, line, text),
                        )
                    else:
                        connection.execute(
                            "UPDATE history SET output = ? WHERE session = ? AND line = ?", (text, session, line)
                        )
        except sqlite3.Error as exc:
            log.warning("zembed: history journal %s not replayed: %s", path, exc)
            continue
        replayed += len(changes)
        remove_quietly(path)
    if replayed:
        log.info("zembed: history: %d change(s) of a kernel that ended uncleanly replayed", replayed)
    return replayed


def _writer_gone(pid: Any, identity: Any) -> bool:
    if not isinstance(pid, int) or pid_gone(pid):
        return True
    return identity is not None and process_identity(pid) != identity  # the pid was reused


def _is_change(record: Any) -> bool:
    return (
        isinstance(record, list)
        and len(record) == 4
        and record[0] in (ADD, OUTPUT)
        and isinstance(record[1], int)
        and isinstance(record[2], int)
        and (record[3] is None or isinstance(record[3], str))
    )
