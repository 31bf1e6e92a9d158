"""A kernel's ZeroMQ sockets below the socket thread: making and binding
them, one message's frames in and out, and the heartbeat.

Frames go through pyzmq's backend ``send`` and ``recv`` with flags as plain
ints, not ``send_multipart``: that one ORs its ``Flag`` enums in Python for
every frame, 7 µs of a six-frame message's 8.5 (a request sends three to
five messages); what they keep of its behaviour is in ``send_frames``.

The heartbeat is ``zmq.proxy_steerable`` echoing a ROUTER to itself in a
thread of its own: it runs in C without the GIL, so it answers while the
host's thread is busy in Python.  The socket thread stops it through an
inproc control socket before it closes the context.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import zmq

from ._dap import mark_untraced

log = logging.getLogger("zembed")

_SEND_FRAME = zmq.backend.Socket.send
_RECV_FRAME = zmq.backend.Socket.recv
_GET = zmq.backend.Socket.get
_RCVMORE = int(zmq.RCVMORE)
_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.SNDMORE) | _NOBLOCK
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)

SOCKET_TYPES = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.XPUB, "hb": zmq.ROUTER}
IOPUB_HWM = 10_000
LINGER_MS = 500


def bind_sockets(
    context: zmq.Context[Any],
    transport: str,
    ip: str,
    ports: dict[str, int],
    max_message_bytes: int,
    curve_secretkey: bytes | None = None,
) -> tuple[dict[str, zmq.Socket[Any]], dict[str, int]]:
    """Create and bind one socket per channel; return them and their ports.
    With ``curve_secretkey``, every socket is a CurveZMQ server: a peer
    that does not know the matching public key cannot even connect."""
    sockets: dict[str, zmq.Socket[Any]] = {}
    bound: dict[str, int] = {}
    try:
        for channel, kind in SOCKET_TYPES.items():
            sock = context.socket(kind)
            sockets[channel] = sock
            sock.linger = LINGER_MS
            if curve_secretkey is not None:
                sock.curve_server = True
                sock.curve_secretkey = curve_secretkey
            if kind == zmq.ROUTER or kind == zmq.XPUB:
                sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
            if channel == "iopub":
                # VERBOSER: every subscribe and unsubscribe (a client leaving
                # unsubscribes too), so the kernel can count its subscribers.
                sock.setsockopt(zmq.XPUB_VERBOSER, 1)
                sock.sndhwm = IOPUB_HWM
            bound[channel] = _bind(sock, transport, ip, ports.get(channel, 0))
    except BaseException:
        for sock in sockets.values():
            sock.close(linger=0)
        raise
    return sockets, bound


def _bind(sock: zmq.Socket[Any], transport: str, ip: str, port: int) -> int:
    if transport == "tcp":
        if port:
            sock.bind(f"tcp://{ip}:{port}")
            return port
        return sock.bind_to_random_port(f"tcp://{ip}")
    # ipc: Jupyter's convention is the address "ipc://<ip>-<port>".
    candidate = port or 1
    while True:
        if port or not Path(f"{ip}-{candidate}").exists():
            sock.bind(f"ipc://{ip}-{candidate}")
            return candidate
        candidate += 1


def has_input(sock: zmq.Socket[Any]) -> bool:
    """Is a message waiting?  (Also takes the socket's pending commands: its ZMQ_FD edge is spent.)"""
    return bool(int(sock.get(_EVENTS)) & _POLLIN)


def send_frames(sock: zmq.Socket[Any], frames: list[bytes]) -> None:
    """``send_multipart(frames, NOBLOCK)`` without its per-frame Python.
    Copied, even when large: a zero-copy send starts pyzmq's
    garbage-collector thread for good, a thread more in the host.  Only
    the first frame can meet a full queue (zmq.Again): libzmq takes a
    multipart message whole or not at all."""
    last = len(frames) - 1
    for frame in frames[:last]:
        _SEND_FRAME(sock, frame, _MORE)
    _SEND_FRAME(sock, frames[last], _NOBLOCK)


def recv_frames(sock: zmq.Socket[Any]) -> list[bytes]:
    """``recv_multipart(NOBLOCK)``, the same way: raises zmq.Again when nothing waits."""
    frames = [_RECV_FRAME(sock, _NOBLOCK)]
    while _GET(sock, _RCVMORE):
        frames.append(_RECV_FRAME(sock, _NOBLOCK))
    return frames


class Heartbeat:
    """Echo on the hb socket, in C, until stopped."""

    def __init__(self, context: zmq.Context[Any], sock: zmq.Socket[Any]) -> None:
        self._socket = sock
        address = f"inproc://zembed-hb-control-{os.getpid()}-{id(self)}"
        self._control = context.socket(zmq.PAIR)
        self._control.bind(address)
        self._remote = context.socket(zmq.PAIR)
        self._remote.connect(address)
        self._thread = threading.Thread(target=self._run, name="zembed-heartbeat", daemon=True)
        mark_untraced(self._thread)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self._socket, self._socket, None, self._remote)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ETERM:
                log.warning("zembed: heartbeat stopped: %s", exc)
        finally:
            self._remote.close(linger=0)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._control.send(b"TERMINATE")
            self._thread.join(2.0)
        self._control.close(linger=0)
