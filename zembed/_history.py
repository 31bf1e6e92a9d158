"""Input history of a kernel, answering ``history_request``.

Entries are ``(session, line, input, output)``; ``session`` numbers a
kernel run and ``line`` is the execution count.  Kept in memory and bounded;
the spec's three access types are served: ``tail`` (last n), ``range``
(session, start, stop; a session <= 0 counts back from the current one) and
``search`` (glob ``pattern``, optionally ``unique``, last n).
"""

from __future__ import annotations

import fnmatch
from collections import deque
from typing import Any

Entry = tuple[int, int, str, "str | None"]


class History:
    def __init__(self, session: int = 1, limit: int = 100_000) -> None:
        self.session = session
        self._entries: deque[Entry] = deque(maxlen=limit)

    def append(self, line: int, source: str, output: str | None = None) -> None:
        self._entries.append((self.session, line, source, output))

    def set_output(self, line: int, output: str) -> None:
        if self._entries and self._entries[-1][:2] == (self.session, line):
            session, line_no, source, _ = self._entries[-1]
            self._entries[-1] = (session, line_no, source, output)

    def __len__(self) -> int:
        return len(self._entries)

    def query(self, request: dict[str, Any]) -> list[list[Any]]:
        """The ``history`` list of a ``history_reply`` for ``request``."""
        access = request.get("hist_access_type", "tail")
        with_output = bool(request.get("output", False))
        entries = list(self._entries)
        if access == "tail":
            entries = _last(entries, request.get("n"))
        elif access == "range":
            session = int(request.get("session", 0) or 0)
            if session <= 0:
                session += self.session
            start = int(request.get("start", 0) or 0)
            stop = request.get("stop")
            entries = [e for e in entries if e[0] == session and e[1] >= start and (stop is None or e[1] < int(stop))]
        elif access == "search":
            pattern = str(request.get("pattern", "*"))
            entries = [e for e in entries if fnmatch.fnmatchcase(e[2], pattern)]
            if request.get("unique"):
                latest: dict[str, Entry] = {}
                for e in entries:
                    latest.pop(e[2], None)
                    latest[e[2]] = e
                entries = list(latest.values())
            entries = _last(entries, request.get("n"))
        else:
            raise ValueError(f"unknown hist_access_type {access!r}: use tail, range or search")
        if with_output:
            return [[s, n, [src, out]] for s, n, src, out in entries]
        return [[s, n, src] for s, n, src, _ in entries]


def _last(entries: list[Entry], n: Any) -> list[Entry]:
    if n is None:
        return entries
    n = int(n)
    return entries[-n:] if n > 0 else []
