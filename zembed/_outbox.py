"""The sending layer: everything the kernel says goes out through here.

Owns: signing and serializing a message (degrading, never failing, on
what a peer chose to put in a parent header: ``Session.serialize_safely``),
handing the frames to the socket thread, the history barrier a reply waits
behind, and the batching rule: while the host's thread is handling
requests (``batching``), the messages it makes are queued without
waking the socket thread, and one ``flush()`` per request sends them all from the host's
thread, in one burst (the socket thread's tick sends them while a long
cell runs).  Handed to the socket thread instead, they would wait for it
to wake: a second thread hand-off on every request.

Any thread may call ``send``/``publish``.  The transport is the socket
thread in a kernel, a recording list in tests: handlers run in memory.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from ._protocol import Session
from ._ratelimit import RateLimitedLog

Content = dict[str, Any]
_degraded = RateLimitedLog(what="degraded messages")


class Committed(Protocol):
    """What a reply waits for: the history, with ``reached(change)``."""

    def reached(self, seq: int) -> bool: ...


class Transport(Protocol):
    """Where frames go: ``_sockets.SocketThread`` implements it."""

    def send(
        self, channel: str, frames: list[bytes], wake: bool = True, barrier: tuple[Any, int] | None = None
    ) -> None: ...

    def flush(self) -> None: ...

    def flush_soon(self) -> None: ...


class Outbox:
    def __init__(self, session: Session, transport: Transport, history: Committed) -> None:
        self.session = session
        self._transport = transport
        self._history = history
        self._topic_prefix = f"kernel.{session.session_id}.".encode()
        self.batch_thread: int | None = None  # the host's thread, handling requests: its messages wait for flush()
        self.closed = False  # the kernel stopped: what is sent now is dropped

    def send(
        self,
        channel: str,
        msg_type: str,
        content: Content,
        parent: Content | None = None,
        idents: list[bytes] | None = None,
        metadata: Content | None = None,
        after_history: int = 0,
        buffers: list[bytes] | None = None,
    ) -> str:
        """Queue a message for ``channel``; return its msg_id.  With
        ``after_history``, it (and all sent after it) waits until the
        history has committed that change: a reply never promises what a
        crash could still take back."""
        header = self.session.header(msg_type)
        msg_id = str(header["msg_id"])
        if self.closed:
            return msg_id
        try:
            frames, given_up = self.session.serialize_safely(
                msg_type, content, parent, metadata, idents, header, buffers
            )
        except ValueError as exc:
            _degraded.error("zembed: a %s could not be sent: %s", msg_type, exc)
            return msg_id
        if given_up is not None:
            _degraded.warning("zembed: a %s was sent without %s, which cannot be written as JSON", msg_type, given_up)
        barrier = (self._history, after_history) if after_history else None
        held = threading.get_ident() == self.batch_thread  # other threads' messages go at once
        self._transport.send(channel, frames, wake=not held, barrier=barrier)
        return msg_id

    @property
    def batching(self) -> bool:
        """Is the host's thread handling requests (holding their messages)?"""
        return self.batch_thread is not None

    def publish(
        self,
        msg_type: str,
        content: Content,
        parent: Content | None = None,
        metadata: Content | None = None,
        buffers: list[bytes] | None = None,
    ) -> None:
        """Broadcast on iopub, with Jupyter's topic ``kernel.<session>.<msg_type>``."""
        topic = [self._topic_prefix + msg_type.encode()]
        self.send("iopub", msg_type, content, parent, topic, metadata, buffers=buffers)

    def flush(self) -> None:
        """Send what is queued now, from this thread where it can (shell and
        iopub; see ``_sockets``), else by waking the socket thread."""
        self._transport.flush()

    def flush_soon(self) -> None:
        """Have the socket thread send what is queued now rather than at the next tick."""
        self._transport.flush_soon()
