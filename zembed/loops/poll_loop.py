"""Adapter for hosts that call ``kernel.poll()`` from their own loop.

Frame loops, simulation steps and Blender's ``bpy.app.timers`` use this:
kernel work runs inside ``poll()``, on whichever thread calls it.  An idle
``poll()`` is one deque check (and one clock read: ``last_poll`` lets
the kernel tell clients, and the host's log, that nobody polls).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class PollLoop:
    name = "poll"

    def __init__(self) -> None:
        self._callbacks: deque[Callable[[], None]] = deque()
        self._wake = threading.Event()
        self.last_poll = time.monotonic()  # when the host last came for kernel work (start counts)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)  # deque.append is atomic
        self._wake.set()

    def run_pending(self) -> bool:
        """Run the callbacks handed over so far; True if any ran."""
        self.last_poll = time.monotonic()
        callbacks = self._callbacks
        if not callbacks:
            return False
        self._wake.clear()
        try:
            for _ in range(len(callbacks)):
                callbacks.popleft()()
        finally:
            self.last_poll = time.monotonic()  # a long cell ran in here: the host is back now
        return True

    def wait(self, timeout: float | None) -> bool:
        """Block until work is handed over or ``timeout`` passes."""
        return self._wake.wait(timeout)

    def close(self) -> None:
        self._callbacks.clear()
        self._wake.set()
