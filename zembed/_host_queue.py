"""Requests waiting for the host's thread, and the batches that run them.

Owns: the queue the socket thread appends to, the one outstanding
``call_soon`` that brings the host's thread to it, the batch rule (at most
``budget`` seconds per visit, then hand the thread back and come again),
no nesting (a cell that pumps the toolkit's events re-enters: the running
batch takes the new requests when the cell is done), and the account the
host's ``kernel_info`` gives (since when a request waits, time spent).

The socket thread calls ``put``; everything else runs on the host's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from ._outbox import Outbox
from ._protocol import Message
from .loops import LoopAdapter

log = logging.getLogger("zembed")

Item = tuple[str, Message]


class HostQueue:
    def __init__(
        self,
        adapter: LoopAdapter,
        outbox: Outbox,
        handle: Callable[[str, Message], None],
        budget: float,
        halted: Callable[[], bool],
        after_batch: Callable[[], None],
    ) -> None:
        self._adapter = adapter
        self._outbox = outbox  # its ``batching`` flag is the batch's: no wake-up per message
        self._handle = handle
        self._budget = budget
        self._halted = halted  # stop taking requests (the kernel stops)
        self._after_batch = after_batch
        self._items: deque[Item] = deque()
        self._scheduled = False
        self.waiting_since: float | None = None  # the oldest request not taken yet arrived then
        self.host_seconds = 0.0  # time spent on the host's thread handling requests

    def __bool__(self) -> bool:
        return bool(self._items)

    # -- the socket thread ----------------------------------------------------------

    def put(self, channel: str, message: Message) -> None:
        if not self._items:
            self.waiting_since = time.monotonic()
        self._items.append((channel, message))
        if not self._scheduled:
            self._scheduled = True
            self._adapter.call_soon(self.run_pending)

    def has(self, msg_type: str) -> bool:
        return any(message.msg_type == msg_type for _, message in list(self._items))

    # -- the host's thread ------------------------------------------------------------

    @property
    def in_batch(self) -> bool:
        """Is a batch running on the calling thread (a cell of it is calling)?"""
        return self._outbox.batch_thread == threading.get_ident()

    def take(self, predicate: Callable[[str, Message], bool]) -> list[Item]:
        """Remove and return queued requests matching ``predicate``."""
        taken = [item for item in list(self._items) if predicate(*item)]  # snapshot: the socket thread appends
        for item in taken:
            self._items.remove(item)
        return taken

    def clear(self) -> None:
        self._items.clear()

    def run_pending(self) -> None:
        # Clear the flag before draining: a request queued from now on
        # schedules another run, so none is left behind.
        self._scheduled = False
        if self._outbox.batching:
            # Re-entered: a cell pumped the host's events (Qt's processEvents(),
            # Tk's update()).  Requests never nest: the running batch takes
            # them when the cell is done (and reschedules if it runs out of budget).
            return
        deadline = time.monotonic() + self._budget
        items = self._items
        began = time.perf_counter()
        self._outbox.batch_thread = threading.get_ident()
        try:
            while items and not self._halted():
                channel, message = items.popleft()
                self.waiting_since = time.monotonic() if items else None
                try:
                    self._handle(channel, message)
                except Exception:
                    log.exception("zembed: error handling %s; still serving", message.msg_type)
                self._outbox.flush()  # one burst per request: its reply goes out now, from this thread
                if time.monotonic() > deadline:
                    break
        finally:
            self._outbox.batch_thread = None
            self.host_seconds += time.perf_counter() - began
        self._after_batch()
        if items and not self._halted() and not self._scheduled:
            self._scheduled = True
            self._adapter.call_soon(self.run_pending)
