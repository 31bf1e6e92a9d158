"""The relay: a Jupyter kernel, as a frontend's launcher sees it, that is a
window onto a host already running.

A frontend (JupyterLab's server, VS Code, nbclient, qtconsole) starts
``python -m zjupyter relay APP --connection-file FILE``, as it starts any
kernel from a kernelspec.  The relay serves the ports and key the launcher
wrote in FILE, attaches to the newest live host of app APP (the rule of
``zconsole --existing APP``) and forwards every message both ways, signing
each for the side it goes to: the frontend never holds the host's key.
Frames are re-signed as they are, unread; only headers are decoded, to
route and to answer what needs answering.

What the relay answers itself, because only it can:

- ``shutdown_request``: it replies and exits (the launcher restarts it for
  "restart kernel"); the host and its kernel keep running.  With
  ``--forward-shutdown`` the host gets the request too (it detaches, or
  exits if it opted in).
- Any request while no host is attached: at once, never a hang.  A cell
  gets an error naming the app, why it is not there and that the relay
  waits for it; ``kernel_info`` a reply of its own (so a launcher's
  ``wait_for_ready`` succeeds before the host is up).

The host's death is seen within about 2 s (its heartbeat, and its pid for
a host on this machine).  Requests in flight get a stderr note (app, pid,
crash report if the host left one) and an error reply; iopub says
``restarting``, which JupyterLab shows as a restarting kernel.  Meanwhile
the relay looks for a live host of the same app every ``LOOK_EVERY``
seconds and, when one is there, attaches to it and says so.

One thread runs the sockets (``zmq.Poller``; it blocks only for the half
second a dead host gets to finish its crash report); one looks for hosts
(probing heartbeats blocks) and hands what it finds over.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import zmq

from zembed.frontend import (
    ConnectionFileError,
    KernelRecord,
    ProtocolError,
    Session,
    __version__,
    describe_crash,
    read_connection_file,
)

from ._host import HostLink, find_host

log = logging.getLogger("zjupyter.relay")

LOOK_EVERY = 0.5  # seconds between looks for a host while none is attached
CHECK_EVERY = 0.1  # seconds between looks at the host's heartbeat and pid
REQUEST_CHANNELS = ("shell", "control", "stdin")
FRONT_SOCKETS = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.XPUB, "hb": zmq.ROUTER}
DELIMITER = b"<IDS|MSG>"

# What a request gets while no host is attached, when an error would only
# be noise in the frontend (completion as you type, say).
QUIET_ANSWERS: dict[str, dict[str, Any]] = {
    "complete_request": {"status": "ok", "matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}},
    "inspect_request": {"status": "ok", "found": False, "data": {}, "metadata": {}},
    "is_complete_request": {"status": "unknown"},
    "history_request": {"status": "ok", "history": []},
    "comm_info_request": {"status": "ok", "comms": {}},
    "interrupt_request": {"status": "ok"},
}


class Relay:
    def __init__(self, app: str, connection_file: Path, *, forward_shutdown: bool = False) -> None:
        self.app = app
        self.connection_file = connection_file
        self.forward_shutdown = forward_shutdown
        info = read_connection_file(connection_file)
        if info.get("signature_scheme", "hmac-sha256") != "hmac-sha256":
            raise ConnectionFileError(f"{connection_file}: the relay signs with hmac-sha256 only")
        self.front = Session(str(info["key"]).encode(), username="zembed-relay")
        self.context: zmq.Context[Any] = zmq.Context()
        self.sockets = self._bind(info)
        # ipc socket files: libzmq leaves them behind, the relay does not
        self._ipc_files = (
            [f"{info['ip']}-{info[f'{c}_port']}" for c in FRONT_SOCKETS] if info["transport"] == "ipc" else []
        )
        self.host: HostLink | None = None
        self.pending: dict[str, tuple[str, list[bytes], bytes]] = {}  # msg_id -> channel, idents, header frame
        self.gone: str | None = None  # why no host is attached, for the error a cell gets meanwhile
        self.announce: str | None = None  # said to the next cell after a re-attach
        self._found: queue.Queue[KernelRecord] = queue.Queue()
        self._looking = threading.Event()
        self._stopping = threading.Event()
        self._looker = threading.Thread(target=self._look_for_hosts, name="zjupyter-relay-look", daemon=True)

    def _bind(self, info: dict[str, Any]) -> dict[str, zmq.Socket[Any]]:
        sockets: dict[str, zmq.Socket[Any]] = {}
        transport, ip = info["transport"], info["ip"]
        try:
            for channel, kind in FRONT_SOCKETS.items():
                sock = self.context.socket(kind)
                sock.linger = 1000
                if kind == zmq.XPUB:
                    sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription is seen: each gets its welcome
                sockets[channel] = sock
                port = info[f"{channel}_port"]
                sock.bind(f"ipc://{ip}-{port}" if transport == "ipc" else f"{transport}://{ip}:{port}")
        except zmq.ZMQError as exc:
            for sock in sockets.values():
                sock.close(0)
            raise ConnectionFileError(f"the relay cannot bind the ports in {self.connection_file}: {exc}") from None
        return sockets

    # -- running --------------------------------------------------------------------

    def run(self) -> int:
        self._publish("status", {"execution_state": "starting"})
        poller = zmq.Poller()
        for sock in self.sockets.values():
            poller.register(sock, zmq.POLLIN)
        # A host that is running is attached before the first request is read:
        # the frontend's first kernel_info (its banner) is the host's own.
        first = find_host(self.app)
        if first is not None:
            self._found.put(first)
        else:
            self._looking.set()
        self._looker.start()
        next_check = 0.0
        try:
            while not self._stopping.is_set():
                self._take_found(poller)
                ready = dict(poller.poll(100))
                front, host = self.sockets, self.host
                if front["hb"] in ready:
                    self._echo_heartbeat()
                if front["iopub"] in ready:
                    self._welcome()
                for channel in REQUEST_CHANNELS:
                    if front[channel] in ready:
                        self._drain(front[channel], lambda frames, c=channel: self._from_frontend(c, frames))
                if host is not None:
                    for channel, sock in host.sockets.items():
                        if sock in ready:
                            self._drain(sock, lambda frames, c=channel: self._from_host(c, frames))
                    now = time.monotonic()
                    if now >= next_check:
                        next_check = now + CHECK_EVERY
                        if not host.check(now):
                            self._host_died(poller)
        finally:
            self._stopping.set()
            self._looking.set()
            if self.host is not None:
                self.host.close()
            for sock in self.sockets.values():
                sock.close()
            self.context.term()
            for path in self._ipc_files:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return 0

    def stop(self) -> None:
        self._stopping.set()

    def _drain(self, sock: zmq.Socket[Any], handle: Any) -> None:
        for _ in range(100):  # bounded: one busy side cannot starve the other
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                handle(frames)
            except Exception:  # one message never stops the relay
                log.exception("zjupyter relay: a message could not be relayed")

    def _echo_heartbeat(self) -> None:
        sock = self.sockets["hb"]
        while True:
            try:
                sock.send_multipart(sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return

    def _welcome(self) -> None:
        """Spec 5.4's ``iopub_welcome``: a subscriber knows its iopub is connected."""
        sock = self.sockets["iopub"]
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if frame[:1] == b"\x01":
                self._publish("iopub_welcome", {"subscription": frame[1:].decode("utf-8", "replace")})

    # -- the frontend's side --------------------------------------------------------

    def _from_frontend(self, channel: str, frames: list[bytes]) -> None:
        try:
            idents, parts, buffers = self.front.verify(frames)
            header = orjson.loads(parts[0])
        except (ProtocolError, ValueError) as exc:
            log.warning("zjupyter relay: dropped a message from the frontend on %s: %s", channel, exc)
            return
        msg_type = str(header.get("msg_type", ""))
        if msg_type == "shutdown_request" and channel in ("control", "shell"):
            self._shutdown(channel, idents, header, parts)
            return
        host = self.host
        if host is None:
            if msg_type.endswith("_request"):
                self._answer_alone(channel, idents, header, parts)
            return
        if msg_type.endswith("_request"):
            self.pending[str(header.get("msg_id"))] = (channel, idents, parts[0])
        host.sockets[channel].send_multipart(host.session.signed(idents, parts, buffers))

    def _shutdown(self, channel: str, idents: list[bytes], header: dict[str, Any], parts: list[bytes]) -> None:
        try:
            restart = bool(orjson.loads(parts[3]).get("restart", False))
        except (ValueError, AttributeError):
            restart = False
        if self.forward_shutdown and self.host is not None and not restart:
            host = self.host
            host.sockets["control"].send_multipart(host.session.signed([], parts, []))
        self._reply(channel, idents, header, "shutdown_reply", {"status": "ok", "restart": restart})
        log.info("zjupyter relay: shut down by the frontend%s", " (restart)" if restart else "")
        self.stop()

    def _answer_alone(self, channel: str, idents: list[bytes], header: dict[str, Any], parts: list[bytes]) -> None:
        """A request while no host is attached: answered now."""
        msg_type = str(header["msg_type"])
        self._publish("status", {"execution_state": "busy"}, header)
        if msg_type == "kernel_info_request":
            self._reply(channel, idents, header, "kernel_info_reply", self._kernel_info())
        elif msg_type == "debug_request":  # a Debug Adapter Protocol failure, which a debugger panel shows
            self._reply(channel, idents, header, "debug_reply", self._debug_failure(parts))
        elif msg_type in QUIET_ANSWERS:
            self._reply(channel, idents, header, msg_type.replace("_request", "_reply"), QUIET_ANSWERS[msg_type])
        else:
            error = self._not_attached_error()
            if msg_type == "execute_request":
                self._publish("error", error, header)
            self._reply(channel, idents, header, msg_type.replace("_request", "_reply"), {"status": "error", **error})
        self._publish("status", {"execution_state": "idle"}, header)

    def _debug_failure(self, parts: list[bytes]) -> dict[str, Any]:
        try:
            request = orjson.loads(parts[3])
        except (ValueError, IndexError):
            request = {}
        request = request if isinstance(request, dict) else {}
        seq = request.get("seq")
        return {
            "seq": 0,
            "type": "response",
            "request_seq": seq if isinstance(seq, int) else 0,
            "success": False,
            "command": str(request.get("command", "")),
            "message": str(self._not_attached_error()["evalue"]),
            "body": {},
        }

    def _not_attached_error(self) -> dict[str, Any]:
        why = self.gone or f"no live host of app {self.app!r} is running"
        text = f"{why}; the relay waits for it: the next cell after it is back runs there"
        return {"ename": "HostNotRunning", "evalue": text, "traceback": [f"HostNotRunning: {text}"]}

    def _kernel_info(self) -> dict[str, Any]:
        version = "{}.{}.{}".format(*sys.version_info[:3])
        return {
            "status": "ok",
            "protocol_version": "5.5",
            "implementation": "zembed",
            "implementation_version": __version__,
            "language_info": {
                "name": "python",
                "version": version,
                "mimetype": "text/x-python",
                "file_extension": ".py",
                "pygments_lexer": "python3",
                "codemirror_mode": {"name": "python", "version": 3},
                "nbconvert_exporter": "python",
            },
            "banner": f"zembed relay for {self.app!r}: waiting for the host",
            "help_links": [],
            "debugger": False,
            "zembed": {"relay": True, "app": self.app, "attached": False},
        }

    def _reply(self, channel: str, idents: list[bytes], parent: dict[str, Any], msg_type: str, content: Any) -> None:
        self.sockets[channel].send_multipart(self.front.serialize(msg_type, content, parent, idents=idents))

    def _publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None) -> None:
        topic = f"kernel.{self.front.session_id}.{msg_type}".encode()
        self.sockets["iopub"].send_multipart(self.front.serialize(msg_type, content, parent, idents=[topic]))

    # -- the host's side ------------------------------------------------------------

    def _from_host(self, channel: str, frames: list[bytes]) -> None:
        host = self.host
        assert host is not None
        try:
            idents, parts, buffers = host.session.verify(frames)
        except ProtocolError as exc:
            log.warning("zjupyter relay: dropped a message from the host on %s: %s", channel, exc)
            return
        if channel == "iopub":
            if b'"iopub_welcome"' in parts[0]:
                return  # the welcome to the relay's own subscription; frontends get theirs from the relay
            if self.announce is not None and parts[0].find(b'"execute_input"') >= 0:
                self._say_announce(parts[1])
            self.sockets["iopub"].send_multipart(self.front.signed(idents, parts, buffers))
            return
        if channel != "stdin":
            try:
                parent_id = orjson.loads(parts[1]).get("msg_id")
            except (ValueError, AttributeError):
                parent_id = None
            self.pending.pop(str(parent_id), None)
        self.sockets[channel].send_multipart(self.front.signed(idents, parts, buffers))

    def _say_announce(self, parent_frame: bytes) -> None:
        """Tell the first cell after a re-attach where it runs now."""
        try:
            parent = orjson.loads(parent_frame)
        except ValueError:
            return
        self._publish("stream", {"name": "stderr", "text": f"[zembed] {self.announce}\n"}, parent)
        self.announce = None

    def _host_died(self, poller: zmq.Poller) -> None:
        host = self.host
        assert host is not None
        self._detach(poller)
        report = host.crash_report()
        why = f"{host.who()} died"
        if report is not None:
            why += f": {describe_crash(report)}"
        self.gone = why
        log.warning("zjupyter relay: %s; waiting for it to come back", why)
        note = f"[zembed] {why}; waiting for it to come back\n"
        self._publish("stream", {"name": "stderr", "text": note})
        error = self._not_attached_error()
        for msg_id, (channel, idents, header_frame) in list(self.pending.items()):
            header = orjson.loads(header_frame)
            self._publish("stream", {"name": "stderr", "text": note}, header)
            if header.get("msg_type") == "execute_request":
                self._publish("error", error, header)
            reply_type = str(header.get("msg_type", "")).replace("_request", "_reply")
            self._reply(channel, idents, header, reply_type, {"status": "error", **error})
            self._publish("status", {"execution_state": "idle"}, header)
            del self.pending[msg_id]
        self._publish("status", {"execution_state": "restarting"})
        self._looking.set()

    def _detach(self, poller: zmq.Poller) -> None:
        host = self.host
        if host is None:
            return
        for sock in host.sockets.values():
            poller.unregister(sock)
        host.close()
        self.host = None

    def _take_found(self, poller: zmq.Poller) -> None:
        try:
            record = self._found.get_nowait()
        except queue.Empty:
            return
        if self.host is not None:
            return
        try:
            host = HostLink(self.context, record)
        except (zmq.ZMQError, KeyError, ValueError) as exc:
            log.warning("zjupyter relay: cannot attach to %s: %s", record.connection_file, exc)
            self._looking.set()
            return
        self.host = host
        for sock in host.sockets.values():
            poller.register(sock, zmq.POLLIN)
        first = self.gone is None
        text = f"attached to {host.who()}" if first else f"re-attached to {host.who()}, which is back"
        log.info("zjupyter relay: %s", text)
        if not first:
            self.announce = text + " (its namespace is the host's own: names from before may be gone)"
            self._publish("stream", {"name": "stderr", "text": f"[zembed] {self.announce}\n"})
        self.gone = None
        self._publish("status", {"execution_state": "idle"})

    def _look_for_hosts(self) -> None:
        """The looking thread: while no host is attached, find the newest live one of the app."""
        while not self._stopping.is_set():
            self._looking.wait()
            if self._stopping.is_set():
                return
            record = find_host(self.app)
            if record is not None:
                self._looking.clear()
                self._found.put(record)
            else:
                self._stopping.wait(LOOK_EVERY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zjupyter relay", description="Serve a running zembed host as a Jupyter kernel."
    )
    parser.add_argument("app", help="the host's app name (as in zconsole --existing APP)")
    parser.add_argument("-f", "--connection-file", required=True, help="the connection file the launcher wrote")
    parser.add_argument(
        "--forward-shutdown",
        action="store_true",
        help="'shut down kernel' also sends shutdown_request to the host (it detaches, or exits if it opted in)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        relay = Relay(args.app, Path(args.connection_file), forward_shutdown=args.forward_shutdown)
    except ConnectionFileError as exc:
        print(f"zjupyter relay: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts come as messages (interrupt_mode: message)
    return relay.run()
