"""The kernel's socket thread: all ZeroMQ I/O is served from here (the
sockets themselves, their frames and the heartbeat are ``_zmq_io``'s).

Sockets are created and bound on the thread that calls ``start_kernel`` (so
a bind error raises there, before any connection file exists), then handed
to the socket thread.  Control, stdin and heartbeat are its alone.  Shell
and iopub are shared, under a lock: another thread's ``send()`` sends on
them itself, after whatever was queued ahead, and leaves what it cannot
send (stdin, control) to the thread, woken through a socketpair.  The
host's thread queues a request's messages and sends them with ``flush()``
when the request is done: busy, outputs, reply and idle leave in one
burst from that thread, with no hand-off back to this one.  A ZeroMQ
socket may be used by one thread at a time, and that is what the lock
gives; the socket thread waits on the shared ones through their ZMQ_FD,
never in zmq_poll on the socket itself.

ZMQ_FD signals an edge: any use of the socket can take the signal that
input arrived.  So this thread looks at ZMQ_EVENTS of each shared socket
under the lock every turn, and a thread that sent checks ZMQ_EVENTS after
its send and wakes this thread when input is waiting.

The socket thread starts the heartbeat, stops it and closes the context
when it exits.

The thread never raises: each step of one message (parse and verify,
dispatch, the replies to it) is isolated, so whatever one message does,
the next is served; what fails is logged at a bounded rate.  Should the
thread end anyway (a bug in zembed), ``on_failure(exc)`` is called from it
before it closes the sockets: the kernel then says so and stops being
reachable, instead of living on with nobody answering.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import zmq

from ._dap import mark_untraced
from ._errors import MalformedMessage, ProtocolError
from ._protocol import Message, Session
from ._ratelimit import RateLimitedLog
from ._zmq_io import Heartbeat, has_input, recv_frames, send_frames

log = logging.getLogger("zembed")

Barrier = tuple[Any, int]  # (something with ``reached(number)``, the number to wait for)

# Sockets that carry requests, in the order they are served each turn:
# control first, so interrupt and shutdown overtake a queue of executes.
REQUEST_CHANNELS = ("control", "shell", "stdin")
# Sockets other threads send on themselves, under the thread's lock (see above).
SHARED_CHANNELS = ("shell", "iopub")
MAX_FRAMES = 1_000


class Routes(Protocol):
    """What the socket thread hands on, all called on that thread
    (``_routing.Router`` implements it)."""

    def on_message(self, channel: str, message: Message) -> None:
        """A verified request (or reply, on stdin)."""

    def on_malformed(self, channel: str, request: Message, exc: MalformedMessage) -> None:
        """A signed request whose header could be read but not the rest (so it can be answered)."""

    def on_subscribe(self, topic: str, subscribed: bool) -> None:
        """An iopub subscription or unsubscription."""

    def tick_interval(self) -> float | None:
        """Seconds until the next ``on_tick``, or None for no ticks."""

    def on_tick(self) -> None:
        """The kernel flushes a running cell's output here."""


class SocketThread(threading.Thread):
    """Serves the bound sockets from ``serve(routes)`` until ``stop()``,
    then closes everything.  What arrives goes to ``routes`` (see
    ``Routes``); ``on_failure(exc)`` is called if the thread ends by an
    exception.
    """

    def __init__(
        self,
        context: zmq.Context[Any],
        sockets: dict[str, zmq.Socket[Any]],
        session: Session,
        on_failure: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        super().__init__(name="zembed-sockets", daemon=True)
        mark_untraced(self)  # answers while the host's thread is stopped at a breakpoint
        self._on_failure = on_failure
        self._context = context
        self._sockets = sockets
        self._session = session
        self._routes: Routes | None = None
        self._after_sending: Callable[[], float | None] = lambda: None
        self._outbox: deque[tuple[str, list[bytes], Barrier | None]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self._lock = threading.Lock()  # held by whoever uses a shared socket
        self._closed = False  # the sockets are closed: other threads send nothing
        self._sent_directly = False  # another thread sent since this thread last ran after_sending
        self._chore_due = False  # after_sending asked to run again at a time of its own
        self._stopping = False
        self._rejected = RateLimitedLog(what="rejected messages")
        self._failed = RateLimitedLog(what="failures while handling messages")
        self._heartbeat = Heartbeat(context, sockets["hb"])

    # -- any thread ------------------------------------------------------

    def send(self, channel: str, frames: list[bytes], wake: bool = True, barrier: Barrier | None = None) -> None:
        """Send frames on ``channel``, after what is queued ahead of them:
        from the calling thread, when it is another thread and the channel
        is shared; else by this thread, woken for them.  ``wake=False``
        only queues them, for ``flush()``, the next wake-up or tick: the
        host's thread holds a request's messages and sends them in one
        burst when the request is done, taking the lock once.  With
        ``barrier`` (an object with ``reached(number)``, and a number), the
        frames, and everything queued after them, wait until it is reached;
        whoever reaches it later calls ``flush_soon``."""
        self._outbox.append((channel, frames, barrier))
        if not wake or threading.current_thread() is self:
            return
        if channel in SHARED_CHANNELS:
            self._send_here()
        # Order matters: append, then check the flag the thread clears
        # before it drains, so no wake-up is lost and most are skipped.
        if self._outbox and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def flush(self) -> None:
        """Send what is queued now, from the calling thread, as far as it
        can go there: to the first message for a socket this thread owns
        alone, or behind a barrier not reached yet; those are left to this
        thread, woken for them."""
        if threading.current_thread() is self:
            return  # it sends what is queued at the end of every turn
        self._send_here()
        self.flush_soon()

    def flush_soon(self) -> None:
        """Wake the thread to send whatever is queued, and to run
        ``after_sending`` for what was sent directly (unless it will run
        anyway at a time it asked for)."""
        if (self._outbox or (self._sent_directly and not self._chore_due)) and not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def _send_here(self) -> None:
        """Another thread sends what is queued on the shared sockets; then,
        if input waits on a socket it used, wakes this thread (the send may
        have taken the edge this thread's poll waits for)."""
        with self._lock:
            if self._closed:
                return
            sent = self._send_queued(shared_only=True)
            if sent:
                self._sent_directly = True
                if any(has_input(self._sockets[channel]) for channel in sent):
                    self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):  # the pipe is full: a wake-up is pending anyway
            pass

    def serve(self, routes: Routes, after_sending: Callable[[], float | None] = lambda: None) -> None:
        """Start the thread; what arrives from now on goes to ``routes``.
        ``after_sending()`` is called on the thread each time it has sent
        what was queued, for work that must not delay a reply (the
        history's commit); it returns in how many seconds it wants to be
        called again even if nothing arrives, or None."""
        self._routes = routes
        self._after_sending = after_sending
        self.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake()
        if threading.current_thread() is not self and self.is_alive():
            self.join(timeout)
            if self.is_alive():
                log.error("zembed: socket thread did not stop within %.1f s", timeout)

    # -- the thread ------------------------------------------------------

    def run(self) -> None:
        routes = self._routes
        assert routes is not None, "SocketThread.serve(routes) starts the thread"
        self._heartbeat.start()
        poller = zmq.Poller()
        for channel in (*REQUEST_CHANNELS, "iopub"):
            sock = self._sockets[channel]
            poller.register(sock.get(zmq.FD) if channel in SHARED_CHANNELS else sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        more = False  # a shared socket still had input after its bounded read
        next_tick: float | None = None
        chore: float | None = None  # when after_sending wants to run again
        try:
            while not self._stopping:
                interval = routes.tick_interval()
                now = time.monotonic()
                if interval is not None:
                    next_tick = now + interval if next_tick is None else min(next_tick, now + interval)
                else:
                    next_tick = None
                wake_at = min((t for t in (next_tick, chore) if t is not None), default=None)
                # None: block until a message or a wake-up
                timeout = None if wake_at is None else int(max(0.0, wake_at - now) * 1000) + 1
                ready = dict(poller.poll(0 if more else timeout))
                if self._wake_r.fileno() in ready:
                    self._drain_wake()
                more = False
                for channel in REQUEST_CHANNELS:
                    if channel in SHARED_CHANNELS or self._sockets[channel] in ready:
                        more = self._receive(routes, channel) or more
                more = self._receive_subscriptions(routes) or more
                if next_tick is not None and time.monotonic() >= next_tick:
                    next_tick = None
                    self._guarded(routes.on_tick)
                self._flush_outbox()
                self._sent_directly = False
                chore = self._chore()
                self._chore_due = chore is not None
            self._flush_outbox()
            deadline = time.monotonic() + 2.0  # replies waiting for the history's commit: let them go out
            while self._outbox and time.monotonic() < deadline:
                time.sleep(0.001)
                self._flush_outbox()
        except BaseException as exc:
            log.critical("zembed: socket thread failed; the kernel stops serving", exc_info=True)
            try:
                self._on_failure(exc)
            except Exception:
                log.exception("zembed: reporting the socket thread's failure failed")
        finally:
            self._close()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _receive(self, routes: Routes, channel: str) -> bool:
        """Read and hand on what ``channel`` has, at most 100 messages (so
        one flood cannot starve control); True if a shared socket may have
        more (its ZMQ_FD will not say so: poll again at once)."""
        sock = self._sockets[channel]
        shared = channel in SHARED_CHANNELS
        for _ in range(100):
            frames = self._read(sock, shared)
            if frames is None:
                return False
            if len(frames) > MAX_FRAMES:
                self._rejected.warning("zembed: dropped a %d-frame message on %s", len(frames), channel)
                continue
            try:
                message = self._session.parse(frames)
            except MalformedMessage as exc:
                self._rejected.warning("zembed: rejected a message on %s: %s", channel, exc)
                if isinstance(exc.request, Message):  # signed, header readable: answer it with an error
                    self._guarded(routes.on_malformed, channel, exc.request, exc)
                continue
            except ProtocolError as exc:
                self._rejected.warning("zembed: rejected a message on %s: %s", channel, exc)
                continue
            except Exception as exc:  # the parser's own limits (recursion, memory): still just a bad message
                self._rejected.warning("zembed: rejected a message on %s: %s: %s", channel, type(exc).__name__, exc)
                continue
            self._guarded(routes.on_message, channel, message)
        return shared

    def _read(self, sock: zmq.Socket[Any], shared: bool) -> list[bytes] | None:
        """One message, or None when there is none now."""
        if not shared:
            try:
                return recv_frames(sock)
            except zmq.Again:
                return None
        with self._lock:
            if not has_input(sock):
                return None
            return recv_frames(sock)

    def _receive_subscriptions(self, routes: Routes) -> bool:
        sock = self._sockets["iopub"]
        for _ in range(100):
            frames = self._read(sock, shared=True)
            if frames is None:
                return False
            frame = frames[0]
            if frame[:1] in (b"\x01", b"\x00"):  # subscribe, unsubscribe
                self._guarded(routes.on_subscribe, frame[1:].decode("utf-8", "replace"), frame[:1] == b"\x01")
        return True

    def _flush_outbox(self) -> None:
        self._wake_pending = False
        if self._outbox:
            with self._lock:  # a direct send cannot come between a queued message's turn and its send
                self._send_queued(shared_only=False)

    def _send_queued(self, shared_only: bool) -> set[str]:
        """Send from the head of the queue, in order (the lock held); the
        channels sent on.  Only what was queued when it began: a thread
        queueing nonstop cannot keep the sender here for good."""
        outbox = self._outbox
        sent: set[str] = set()
        for _ in range(len(outbox)):
            channel, frames, barrier = outbox[0]
            if shared_only and channel not in SHARED_CHANNELS:
                break
            if barrier is not None and not self._barrier_reached(barrier):
                break  # order is kept: what follows waits too
            outbox.popleft()
            self._send_now(channel, frames)
            sent.add(channel)
        return sent

    def _send_now(self, channel: str, frames: list[bytes]) -> None:
        try:
            send_frames(self._sockets[channel], frames)
        except zmq.Again:
            log.debug("zembed: %s send queue full; message dropped", channel)
        except zmq.ZMQError as exc:
            log.warning("zembed: could not send on %s: %s", channel, exc)

    def _chore(self) -> float | None:
        try:
            delay = self._after_sending()
        except Exception:
            self._failed.error("zembed: error in the socket thread's work after sending; still serving", exc_info=True)
            return None
        return None if delay is None else time.monotonic() + delay

    def _barrier_reached(self, barrier: Barrier) -> bool:
        try:
            return bool(barrier[0].reached(barrier[1]))
        except Exception:  # the history failed: the reply goes out rather than never
            self._failed.error("zembed: history commit failed; sending the reply anyway", exc_info=True)
            return True

    def _guarded(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            self._failed.error("zembed: error while handling a message; still serving", exc_info=True)

    def _close(self) -> None:
        self._heartbeat.stop()
        ipc_paths = []
        with self._lock:
            self._closed = True  # another thread's send finds the sockets gone
        for sock in self._sockets.values():
            endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            if endpoint.startswith("ipc://"):
                ipc_paths.append(Path(endpoint[len("ipc://") :]))
            sock.close()
        for path in ipc_paths:  # libzmq leaves the socket files behind
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self._context.term()
        self._wake_r.close()
        self._wake_w.close()
