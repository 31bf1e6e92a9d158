"""Callbacks handed to a GUI toolkit's thread through a socket its event loop
watches: what the Qt and Tk adapters share.

The socket thread never calls the toolkit (neither is safe to call from
another thread).  ``put`` appends the callback and, when the queue was
empty, writes one byte to a socket pair; the toolkit watches the other end
(``fileno()``) and, on its own thread, calls ``run``, which drains the bytes
and runs what is queued.  A socket pair rather than a pipe: it also exists
on Windows.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("zembed")


class WakeupQueue:
    def __init__(self) -> None:
        self._callbacks: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        """The end the toolkit watches for reading."""
        return self._reader.fileno()

    def put(self, callback: Callable[[], None]) -> None:
        """Any thread: queue ``callback``; wake the toolkit if it may be asleep."""
        with self._lock:
            if self._closed:
                return
            self._callbacks.append(callback)
            first = len(self._callbacks) == 1
        if first:
            try:
                self._writer.send(b"!")
            except BlockingIOError:  # full of wake-ups already
                pass
            except OSError:
                log.debug("zembed: wake-up socket closed; dropping kernel work")

    def run(self) -> None:
        """The toolkit's thread: drain the wake-ups, run what is queued."""
        try:
            while self._reader.recv(4096):
                pass
        except OSError:  # BlockingIOError: drained
            pass
        with self._lock:
            callbacks, self._callbacks = self._callbacks, deque()
        for callback in callbacks:
            callback()

    def close(self, release: bool) -> None:
        """Drop what is queued; ``release`` closes the sockets too (only once
        the toolkit no longer watches them)."""
        with self._lock:
            self._closed = True
            self._callbacks.clear()
        if release:
            self._writer.close()
            self._reader.close()
