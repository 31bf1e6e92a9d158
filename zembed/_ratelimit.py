"""A log that a flood cannot turn into a full disk.

Every message a peer can cause (a rejected frame, a refused request, a
handler that failed) goes through one of these: the first ``burst`` in a
``window`` are logged, with their traceback where one is given, the rest
are counted and the count is logged when the window ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("zembed")


class RateLimitedLog:
    """At most ``burst`` records per ``window`` seconds, then a count."""

    def __init__(self, burst: int = 20, window: float = 10.0, what: str = "messages") -> None:
        self.burst, self.window, self.what = burst, window, what
        self._start, self._count, self._dropped = 0.0, 0, 0
        self._lock = threading.Lock()  # the socket thread and the host's thread both log

    def warning(self, message: str, *args: Any, exc_info: bool = False) -> None:
        self._emit(logging.WARNING, message, args, exc_info)

    def error(self, message: str, *args: Any, exc_info: bool = False) -> None:
        self._emit(logging.ERROR, message, args, exc_info)

    def _emit(self, level: int, message: str, args: tuple[Any, ...], exc_info: bool) -> None:
        now = time.monotonic()
        with self._lock:
            dropped = 0
            if now - self._start > self.window:
                dropped, self._start, self._count, self._dropped = self._dropped, now, 0, 0
            self._count += 1
            emit = self._count <= self.burst
            if not emit:
                self._dropped += 1
        if dropped:
            log.warning("zembed: %d more %s were not logged", dropped, self.what)
        if emit:
            log.log(level, message, *args, exc_info=exc_info)
