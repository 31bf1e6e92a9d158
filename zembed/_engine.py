"""A running host as an engine of an ipyparallel cluster.

``kernel.join_cluster(url_file)`` (or the option ``cluster``) connects out
to the controller described by ``ipcontroller-engine.json``, so a host
behind NAT or on a render farm joins as well as one on the controller's
machine, and speaks ipyparallel's engine protocol:

- registration: a DEALER, identity the engine's uuid, sends
  ``registration_request {uuid}``; the reply gives the engine id;
- shell: one ROUTER (same identity) connected to the ``mux``, ``task`` and
  one ``broadcast`` scheduler (``id % len(broadcast)``): ``apply_request``
  and ``execute_request``, run on the host's thread (``_engine_work``);
- control: a ROUTER for ``abort_request``, ``kernel_info_request``,
  ``clear_request`` (refused: a host's namespace is its own);
- iopub: a PUB, topics ``engine.<id>.<msg_type>``;
- the heart: a SUB on ``hb_ping`` whose pings are echoed into a DEALER on
  ``hb_pong``, by this engine's thread (it never runs user code, so it
  answers while the host's thread is busy).

Everything is signed with the controller's key (``Session``: a message
with a bad signature is dropped with a rate-limited log, as on the
kernel's own sockets; one that fails while handled gets an error reply).
The engine's sockets live in the kernel's ZeroMQ context and are used by
the engine's thread alone; the host's thread hands replies over through a
queue and a socketpair wake-up, as it does to the kernel's socket thread.

A controller that does not answer the registration, or whose pings stop
for ``MISSED_PINGS`` heartbeat periods, is tried again with back-off (1 s
doubling to 30 s), logged once per outage; the host and its kernel are not
disturbed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from . import _engine_work
from ._cluster_file import ClusterError, file_stamp, read_engine_file
from ._dap import mark_untraced
from ._errors import ProtocolError
from ._protocol import Message, cluster_session
from ._ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from ._kernel import Kernel

log = logging.getLogger("zembed")

REGISTRATION_TIMEOUT = 20.0  # a controller taking in many engines at once answers slowly
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
MISSED_PINGS = 5  # heartbeat periods without a ping before the controller counts as gone


class Engine:
    """This host's membership of one cluster, served by its own thread."""

    def __init__(self, kernel: Kernel, url_file: str | os.PathLike[str], context: zmq.Context[Any]) -> None:
        self.path = Path(url_file).expanduser()
        self.info = read_engine_file(self.path)
        self._seen = file_stamp(self.path)
        self.kernel = kernel
        self.uuid = str(uuid.uuid4())
        self.id: int | None = None
        self.state = "registering"
        self.session = cluster_session(self.info, f"zembed-{kernel.name}")
        self._identity = self.uuid.encode("ascii")
        self._context = context
        self._sockets: dict[str, zmq.Socket[Any]] = {}
        self._outbox: deque[tuple[str, list[bytes]]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._count = 0  # execute_requests run, for their execution_count
        self._aborted: set[str] = set()
        self._pending: set[str] = set()  # requests handed to the host's thread, not started
        self._running: str | None = None  # the msg_id of the request running on the host's thread
        self._rejected = RateLimitedLog(what="rejected cluster messages")
        self._nanny: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="zembed-engine", daemon=True)
        mark_untraced(self._thread)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Unregister (when registered) and close the engine's sockets."""
        self._stopping = True
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self._wake_r.close()
        self._wake_w.close()

    def status(self) -> dict[str, Any]:
        return {"controller": self.info["path"], "engine_id": self.id, "uuid": self.uuid, "state": self.state}

    # -- any thread -------------------------------------------------------------------

    def _send(
        self, channel: str, msg_type: str, content: dict[str, Any], parent: Message | None = None, **kw: Any
    ) -> None:
        header = parent.header if parent is not None else None
        idents = parent.idents if parent is not None and channel != "iopub" else kw.pop("idents", None)
        metadata = {"engine": self.uuid, **kw.pop("metadata", {})}
        try:
            frames, given_up = self.session.serialize_safely(
                msg_type, content, header, metadata, idents, buffers=kw.pop("buffers", None)
            )
        except ValueError as exc:  # nothing of it can be written: the client waits, the engine serves on
            self._rejected.error("zembed: cluster: a %s could not be sent: %s", msg_type, exc)
            return
        if given_up is not None:
            self._rejected.warning("zembed: cluster: a %s was sent without %s", msg_type, given_up)
        self._outbox.append((channel, frames))
        self._wake()

    def _publish(self, parent: Message, msg_type: str, content: dict[str, Any]) -> None:
        topic = f"engine.{self.id}.{msg_type}".encode()
        self._send("iopub", msg_type, content, parent, idents=[topic])

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake-up is pending) or closed (stopping)
            pass

    # -- the engine's thread ------------------------------------------------------------

    def _url(self, port: Any) -> str:
        return f"{self.info['interface']}:{port}"

    def _socket(self, name: str, kind: int, *ports: Any, identity: bool = True) -> zmq.Socket[Any]:
        sock = self._context.socket(kind)
        sock.linger = 0
        if identity:
            sock.setsockopt(zmq.IDENTITY, self._identity)
        curve = self.info.get("curve_serverkey")
        if curve:
            public, secret = zmq.curve_keypair()
            sock.curve_serverkey = curve.encode("ascii") if isinstance(curve, str) else curve
            sock.curve_publickey, sock.curve_secretkey = public, secret
        for port in ports:
            sock.connect(self._url(port))
        self._sockets[name] = sock
        return sock

    def _close_sockets(self) -> None:
        for name, sock in self._sockets.items():
            sock.close(linger=500 if name == "registration" else 0)  # an unregistration still goes out
        self._sockets.clear()

    def _run(self) -> None:
        delay = RETRY_FIRST
        told = False
        while not self._stopping:
            try:
                self._reread()
                registered = self._register()
            except ClusterError as exc:  # the file went, or was half written: a controller is (re)starting
                log.debug("zembed: %s", exc)
                registered = False
            except Exception:
                log.exception("zembed: cluster: registration failed")
                registered = False
            if registered:
                told, delay = False, RETRY_FIRST
                log.info("zembed: cluster: joined %s as engine %s", self.info["path"], self.id)
                self._start_nanny()
                self._serve()  # until stopped, or the controller is gone
                if self._stopping:
                    self._unregister()
                self._stop_nanny()
            self._close_sockets()
            if self._stopping:
                break
            self.state = "retrying"
            if not told:
                log.warning("zembed: cluster: the controller at %s does not answer; trying again", self._url("*"))
                told = True
            self._sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
        self.state = "left"

    def _reread(self) -> None:
        """A restarted controller writes a new file (new ports, a new key)."""
        stamp = file_stamp(self.path)
        if stamp != self._seen:
            self.info = read_engine_file(self.path)
            self.session = cluster_session(self.info, self.session.username)
            self._seen = stamp
            self.id = None  # a new controller: a new id

    def _start_nanny(self) -> None:
        from . import _nanny

        assert self.id is not None
        try:
            self._nanny = _nanny.start(
                self._url(self.info["registration"]), self.info["key"], self.id, self.info.get("curve_serverkey")
            )
        except OSError as exc:
            log.warning("zembed: cluster: no nanny (%s): a crash of this host is noticed by heartbeats only", exc)

    def _stop_nanny(self) -> None:
        from . import _nanny

        nanny, self._nanny = self._nanny, None
        if nanny is not None:
            _nanny.stop(nanny)

    def _sleep(self, seconds: float) -> None:
        zmq.select([self._wake_r], [], [], seconds)
        self._drain_wake()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _register(self) -> bool:
        self.state = "registering"
        # A new identity each attempt: a controller that answered an attempt
        # whose reply came too late holds that uuid as in use.
        self.uuid = str(uuid.uuid4())
        self._identity = self.uuid.encode("ascii")
        registrar = self._socket("registration", zmq.DEALER, self.info["registration"])
        content: dict[str, Any] = {"uuid": self.uuid}
        if self.id is not None:
            content["id"] = self.id  # the id it had, back after the controller restarted
        registrar.send_multipart(self.session.serialize("registration_request", content))
        deadline = time.monotonic() + REGISTRATION_TIMEOUT
        while not self._stopping and time.monotonic() < deadline:
            if not registrar.poll(100):
                continue
            try:
                reply = self.session.parse(registrar.recv_multipart())
            except ProtocolError as exc:
                self._rejected.warning("zembed: cluster: rejected a registration reply: %s", exc)
                continue
            if reply.content.get("status") != "ok":
                self._rejected.error("zembed: cluster: registration refused: %s", reply.content)
                return False
            self.id = int(reply.content["id"])
            self._hb_period = float(reply.content.get("hb_period", 3000)) / 1000
            self._connect()
            self.state = "registered"
            return True
        return False

    def _connect(self) -> None:
        info = self.info
        assert self.id is not None
        broadcast = info["broadcast"][self.id % len(info["broadcast"])]
        self._socket("shell", zmq.ROUTER, info["mux"], info["task"], broadcast)
        self._socket("control", zmq.ROUTER, info["control"])
        self._socket("iopub", zmq.PUB, info["iopub"])
        ping = self._socket("hb_ping", zmq.SUB, info["hb_ping"], identity=False)
        ping.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket("hb_pong", zmq.DEALER, info["hb_pong"])

    def _serve(self) -> None:
        sockets = self._sockets
        poller = zmq.Poller()
        for name in ("control", "shell", "hb_ping"):
            poller.register(sockets[name], zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        last_ping = last_check = time.monotonic()
        while not self._stopping:
            # While a task of the cluster's runs, its output streams from here (the kernel's
            # socket thread ticks for the kernel's own requests only).
            flush = self.kernel.config.stream_flush_interval if self._running is not None else self._hb_period
            ready = dict(poller.poll(int(min(flush, self._hb_period) * 1000)))
            if self._running is not None:
                self.kernel.cells.flush_output()
            if time.monotonic() - last_check > self._hb_period:
                last_check = time.monotonic()
                if file_stamp(self.path) != self._seen:
                    log.warning("zembed: cluster: %s changed (a new controller): registering again", self.path)
                    return
            if self._wake_r.fileno() in ready:
                self._drain_wake()
            if sockets["hb_ping"] in ready:
                while True:
                    try:
                        sockets["hb_pong"].send_multipart(sockets["hb_ping"].recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                last_ping = time.monotonic()
            for name in ("control", "shell"):
                if sockets[name] in ready:
                    self._receive(name)
            self._flush()
            if time.monotonic() - last_ping > MISSED_PINGS * self._hb_period:
                log.warning(
                    "zembed: cluster: no heartbeat from the controller for %.0f s", MISSED_PINGS * self._hb_period
                )
                return
        self._flush()

    def _flush(self) -> None:
        while self._outbox:
            channel, frames = self._outbox.popleft()
            try:
                self._sockets[channel].send_multipart(frames, zmq.NOBLOCK)
            except (zmq.Again, KeyError):
                log.debug("zembed: cluster: a %s message was dropped (not connected)", channel)

    def _unregister(self) -> None:
        registrar = self._sockets.get("registration")
        if registrar is not None and self.id is not None:
            registrar.send_multipart(self.session.serialize("unregistration_request", {"id": self.id}))
            log.info("zembed: cluster: left %s (engine %s)", self.info["path"], self.id)

    def _receive(self, channel: str) -> None:
        sock = self._sockets[channel]
        for _ in range(100):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = self.session.parse(frames)
            except ProtocolError as exc:
                self._rejected.warning("zembed: cluster: rejected a message on %s: %s", channel, exc)
                continue
            except Exception as exc:
                self._rejected.warning("zembed: cluster: rejected a message on %s: %s", channel, exc)
                continue
            try:
                self._dispatch(channel, message)
            except Exception as exc:
                log.exception("zembed: cluster: a %s failed", message.msg_type)
                self._send(channel, _reply_type(message.msg_type), _failure(exc), message)

    def _dispatch(self, channel: str, message: Message) -> None:
        msg_type = message.msg_type
        if channel == "control":
            if msg_type == "abort_request":  # no ids: everything not started yet
                ids = message.content.get("msg_ids") or list(self._pending)
                self._aborted.update(str(i) for i in ([ids] if isinstance(ids, str) else ids))
                self._send("control", "abort_reply", {"status": "ok"}, message)
            elif msg_type == "signal_request":
                self._send("control", "signal_reply", self._signal(message.content.get("sig")), message)
            elif msg_type == "kernel_info_request":
                self._send("control", "kernel_info_reply", self._kernel_info(), message)
            elif msg_type == "clear_request":
                self._send(
                    "control", "clear_reply", _refused("clear_request", "a host's namespace is its own"), message
                )
            else:
                self._send("control", _reply_type(msg_type), _refused(msg_type, "not served by a host engine"), message)
            return
        if msg_type not in ("apply_request", "execute_request"):
            self._send("shell", _reply_type(msg_type), _refused(msg_type, "not served by a host engine"), message)
            return
        self._pending.add(message.msg_id)
        self.kernel.call_on_host(lambda: self._on_host(message))

    def _signal(self, sig: Any) -> dict[str, Any]:
        """A host is never signalled: SIGINT interrupts the cluster's task
        running on the host's thread, as an interrupt_request does a cell."""
        if sig not in (signal.SIGINT, int(signal.SIGINT), "SIGINT", "INT"):
            return _refused("signal_request", f"zembed never signals a host; only SIGINT (an interrupt), not {sig!r}")
        running = self._running
        parent = self.kernel.current_parent()
        if running is not None and parent is not None and parent.get("msg_id") == running:
            self.kernel.cells.interrupt(False)
        return {"status": "ok"}

    def _kernel_info(self) -> dict[str, Any]:
        import platform

        from ._version import __version__

        return {
            "status": "ok",
            "protocol_version": "5.3",
            "implementation": "zembed",
            "implementation_version": __version__,
            "language_info": {"name": "python", "version": platform.python_version()},
            "banner": f"zembed engine {self.id} in {self.kernel.name}",
        }

    # -- the host's thread --------------------------------------------------------------

    def _on_host(self, message: Message) -> None:
        self._pending.discard(message.msg_id)
        metadata = self._metadata(message)
        reply_type = _reply_type(message.msg_type)
        if message.msg_id in self._aborted:
            self._aborted.discard(message.msg_id)
            self._send("shell", reply_type, {"status": "aborted"}, message, metadata={**metadata, "status": "aborted"})
            return
        self._running = message.msg_id  # before the busy status's wake-up: the engine's thread streams its output
        self._publish(message, "status", {"execution_state": "busy"})
        buffers: list[Any] = []
        try:

            def publish(msg_type: str, content: dict[str, Any]) -> None:
                self._publish(message, msg_type, content)

            if message.msg_type == "apply_request":
                content, buffers = _engine_work.apply(
                    self.kernel, message.buffers, message.msg_id, message.header, publish
                )
            else:
                self._count += 1
                content = _engine_work.execute(self.kernel, message.content, message.header, publish, self._count)
        except Exception as exc:  # zembed's own failure: the client still gets an answer
            log.exception("zembed: cluster: a %s failed", message.msg_type)
            content = _failure(exc)
        finally:
            self._running = None
        if content["status"] == "error":
            content["engine_info"] = {"engine_uuid": self.uuid, "engine_id": self.id, "method": message.msg_type[:-8]}
            metadata["engine_info"] = {"engine_uuid": self.uuid, "engine_id": self.id}
        metadata["status"] = content["status"]
        self._send("shell", reply_type, content, message, metadata=metadata, buffers=buffers)
        self._publish(message, "status", {"execution_state": "idle"})

    def _metadata(self, message: Message) -> dict[str, Any]:
        from ._protocol import utc_now

        asked = message.metadata
        return {
            "started": utc_now(),
            "dependencies_met": True,
            "engine": self.uuid,
            "is_broadcast": asked.get("is_broadcast", False),
            "is_coalescing": asked.get("is_coalescing", False),
            "original_msg_id": asked.get("original_msg_id", ""),
            "label": asked.get("label"),
        }


def _reply_type(msg_type: str) -> str:
    return msg_type[: -len("_request")] + "_reply" if msg_type.endswith("_request") else "error"


def _refused(msg_type: str, why: str) -> dict[str, Any]:
    return {"status": "error", "ename": "NotImplementedError", "evalue": f"{msg_type}: {why}", "traceback": []}


def _failure(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": f"zembed could not handle the request: {exc}",
        "traceback": [],
    }
