"""Where each verified request goes, decided on the socket thread.

The socket thread (``_sockets``) calls a ``Router`` for everything it
receives (``on_message``, ``on_malformed``, ``on_subscribe``) and asks it
when to tick (``tick_interval``, ``on_tick``).  A request is answered right
there when its handler is in ``_handlers.SOCKET_THREAD`` (control, and
``kernel_info`` on shell), delivered to the waiting ``input()`` when it is
an ``input_reply``, and otherwise appended to the ``HostQueue``, whose
batches run ``_handlers.HOST_THREAD`` on the host's thread.

Everything here runs on the socket thread except ``on_host``, which the
queue calls on the host's thread.  The router depends on
``KernelServices``, like the handlers it routes to, never on ``Kernel``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import _handlers
from ._host_queue import HostQueue
from ._protocol import Message
from .loops import LoopAdapter, PollLoop

if TYPE_CHECKING:
    from ._services import KernelServices

log = logging.getLogger("zembed")

POLL_STALL_AFTER = 10.0  # seconds without kernel.poll() before a poll-mode host is told (once per stall)


class Router:
    def __init__(
        self,
        kernel: KernelServices,
        adapter: LoopAdapter,
        halted: Callable[[], bool],
        after_batch: Callable[[], None],
    ) -> None:
        self._kernel = kernel
        self._adapter = adapter
        self.queue = HostQueue(adapter, kernel.outbox, self.on_host, kernel.config.poll_budget, halted, after_batch)
        self.detached = False  # a client's shutdown_request ended serving: the host's thread takes no more requests
        self.messages = 0  # requests and replies received (``%zembed``'s "messages handled")
        self.subscribers = 0  # iopub subscriptions: attached clients, in practice
        self._poll_stall_told = False

    # -- the socket thread: what arrives ---------------------------------------------

    def on_message(self, channel: str, message: Message) -> None:
        self.messages += 1
        if channel == "stdin":
            if message.msg_type == "input_reply":
                self._kernel.cells.stdin.deliver(message)
            return
        if _handlers.on_socket_thread(channel, message.msg_type):
            _handlers.handle(self._kernel, channel, message, _handlers.SOCKET_THREAD)
            return
        if not self.detached:
            self.queue.put(channel, message)

    def on_malformed(self, channel: str, request: Message, exc: Exception) -> None:
        """A signed request whose parent, metadata or content could not be
        read: answered with an error here, never run."""
        if channel in ("shell", "control") and request.msg_type.endswith("_request"):
            _handlers.refuse(self._kernel, channel, request, exc)

    def on_subscribe(self, topic: str, subscribed: bool) -> None:
        self.subscribers = max(0, self.subscribers + (1 if subscribed else -1))
        if subscribed:
            self._kernel.outbox.publish("iopub_welcome", {"subscription": topic})
        elif self.subscribers == 0 and self._kernel.debugger is not None:
            self._kernel.debugger.clients_gone()

    # -- the socket thread: ticks ----------------------------------------------------

    def tick_interval(self) -> float | None:
        """Tick while the host has work in hand (its messages are batched
        without wake-ups, and a long cell's output must still stream), and
        for poll hosts when a stall would be due, or, told, be over."""
        kernel = self._kernel
        busy = kernel.cells.executing or kernel.outbox.batching or bool(self.queue)
        interval = kernel.config.stream_flush_interval if busy else None
        last_poll = self.last_poll()
        if last_poll is not None:
            due = POLL_STALL_AFTER
            if not self._poll_stall_told:
                due = max(0.05, last_poll + POLL_STALL_AFTER - time.monotonic())
            interval = due if interval is None else min(interval, due)
        return interval

    def on_tick(self) -> None:
        self._kernel.cells.flush_output()
        self._check_poll_stall()

    def last_poll(self) -> float | None:
        """When a poll-mode host last called ``poll()``; None for other loops."""
        adapter = self._adapter
        return adapter.last_poll if isinstance(adapter, PollLoop) else None

    def _check_poll_stall(self) -> None:
        """Say once, in the host's log, that a poll-mode host stopped calling
        ``poll()``; clients see it in ``host_busy_seconds``."""
        last_poll = self.last_poll()
        if last_poll is None:
            return
        idle = time.monotonic() - last_poll
        if self._poll_stall_told:
            if idle < POLL_STALL_AFTER:  # it polls again: a later stall is told again
                self._poll_stall_told = False
                log.info("zembed: kernel %r is polled again", self._kernel.name)
            return
        if idle >= POLL_STALL_AFTER:
            self._poll_stall_told = True
            log.warning(
                "zembed: kernel %r (loop='poll') has not been polled for %.0f s: no request is served until the "
                "host calls kernel.poll() (from its frame loop or a timer)",
                self._kernel.name,
                idle,
            )

    # -- the host's thread -----------------------------------------------------------

    def on_host(self, channel: str, message: Message) -> None:
        _handlers.handle(self._kernel, channel, message, _handlers.HOST_THREAD)
