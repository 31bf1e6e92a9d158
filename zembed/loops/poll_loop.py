"""Adapter for hosts that call ``kernel.poll()`` from their own loop.

Frame loops, simulation steps and Blender's ``bpy.app.timers`` use this:
kernel work runs inside ``poll()``, on whichever thread calls it.  An idle
``poll()`` is one deque check.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class PollLoop:
    name = "poll"

    def __init__(self) -> None:
        self._callbacks: deque[Callable[[], None]] = deque()
        self._wake = threading.Event()

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)  # deque.append is atomic
        self._wake.set()

    def run_pending(self) -> bool:
        """Run the callbacks handed over so far; True if any ran."""
        callbacks = self._callbacks
        if not callbacks:
            return False
        self._wake.clear()
        for _ in range(len(callbacks)):
            callbacks.popleft()()
        return True

    def wait(self, timeout: float | None) -> bool:
        """Block until work is handed over or ``timeout`` passes."""
        return self._wake.wait(timeout)

    def close(self) -> None:
        self._callbacks.clear()
        self._wake.set()
