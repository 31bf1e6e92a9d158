"""Adapter for Tk applications (a ``tkinter.Tk`` root).

Tk may only be called from its own thread, and ``after()`` from another
thread blocks until ``mainloop()`` runs.  So the socket thread never calls
Tk: ``call_soon`` appends the callback and writes one byte to a pipe; a Tcl
file handler (``createfilehandler``, registered here on the host's thread)
wakes the event loop, drains the pipe and runs the callbacks.  Where Tk has
no file handlers (Windows), a 10 ms ``after`` timer on the host's thread
checks the queue instead.  Both only fire while the host's event loop runs,
before or after ``mainloop()`` starts (``update()`` counts too).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import UsageError

log = logging.getLogger("zembed")

FALLBACK_POLL_MS = 10


def default_root() -> Any:
    """The Tk root the host made, if tkinter is imported and has one."""
    import sys

    tkinter = sys.modules.get("tkinter")
    return getattr(tkinter, "_default_root", None) if tkinter is not None else None


class TkLoop:
    name = "tk"

    def __init__(self, root: Any = None) -> None:
        import tkinter

        root = root if root is not None else default_root()
        if root is None:
            raise UsageError("loop='tk' needs the host's tkinter.Tk() root: create it first, or pass it as loop=root")
        self._root = root
        self._callbacks: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._pipe: tuple[int, int] | None = None
        self._thread = threading.get_ident()  # Tk's thread: only it may remove the handler
        self._timer: str | None = None
        if hasattr(root.tk, "createfilehandler"):
            read_end, write_end = os.pipe()
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)
            self._pipe = (read_end, write_end)
            root.tk.createfilehandler(read_end, tkinter.READABLE, self._on_readable)
            self.mechanism = "file handler"
        else:
            self._timer = root.after(FALLBACK_POLL_MS, self._tick)
            self.mechanism = "after() polling"

    def call_soon(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            self._callbacks.append(callback)
            first = len(self._callbacks) == 1
        if first and self._pipe is not None:
            try:
                os.write(self._pipe[1], b"!")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass
            except OSError:
                log.debug("zembed: Tk wake-up pipe closed; dropping kernel work")

    def _run(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks, deque()
        for callback in callbacks:
            callback()

    def _on_readable(self, fd: int, mask: int) -> None:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        self._run()

    def _tick(self) -> None:
        self._run()
        if not self._closed:
            self._timer = self._root.after(FALLBACK_POLL_MS, self._tick)

    def close(self) -> None:
        import tkinter

        with self._lock:
            self._closed = True
            self._callbacks.clear()
        if threading.get_ident() != self._thread:
            # Tk cannot be called from here; the handler stays registered (and
            # its pipe open) but finds nothing to run.
            return
        try:
            if self._pipe is not None:
                self._root.tk.deletefilehandler(self._pipe[0])
            elif self._timer is not None:
                self._root.after_cancel(self._timer)
        except (tkinter.TclError, RuntimeError):  # the root was destroyed first, or another thread
            pass
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
