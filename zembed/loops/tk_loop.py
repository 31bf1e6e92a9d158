"""Adapter for Tk applications (a ``tkinter.Tk`` root).

Tk may only be called from its own thread, and ``after()`` from another
thread blocks until ``mainloop()`` runs.  So a Tcl file handler
(``createfilehandler``, registered here on the host's thread) watches the
wake-up socket of a ``WakeupQueue`` and runs the queued kernel work on Tk's
thread.  Where Tk has no file handlers (Windows), a 10 ms ``after`` timer
runs the queue instead.  Both fire only while the host's event loop runs,
before or after ``mainloop()`` starts (``update()`` counts too).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from .._errors import UsageError
from ._wakeup import WakeupQueue

FALLBACK_POLL_MS = 10


def default_root() -> Any:
    """The Tk root the host made, if tkinter is imported and has one."""
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
        self._queue = WakeupQueue()
        self._timer: str | None = None
        self._thread = threading.get_ident()  # Tk's thread: only it may remove the handler
        self.file_handler = hasattr(root.tk, "createfilehandler")
        if self.file_handler:
            root.tk.createfilehandler(self._queue.fileno(), tkinter.READABLE, self._on_readable)
        else:
            self._timer = root.after(FALLBACK_POLL_MS, self._tick)

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._queue.put(callback)

    def _on_readable(self, fd: int, mask: int) -> None:
        self._queue.run()

    def _tick(self) -> None:
        self._queue.run()
        self._timer = self._root.after(FALLBACK_POLL_MS, self._tick)

    def close(self) -> None:
        import tkinter

        on_tk_thread = threading.get_ident() == self._thread
        if on_tk_thread:
            try:
                if self.file_handler:
                    self._root.tk.deletefilehandler(self._queue.fileno())
                elif self._timer is not None:
                    self._root.after_cancel(self._timer)
            except (tkinter.TclError, RuntimeError):  # the root was destroyed first
                pass
        # Elsewhere, Tk cannot be called: the handler stays, finding nothing to run.
        self._queue.close(release=on_tk_thread)
