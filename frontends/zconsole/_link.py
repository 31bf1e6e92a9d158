"""One attachment to one kernel: its five sockets on asyncio, requests
matched to their replies and to their ``idle`` status, iopub outputs and
stdin requests handed to the console (marked as ours or another client's),
the heartbeat asked on demand, and the exchanges done on attaching.

Nothing here prints or decides; the console does.  A link is used once: when
its host dies the console closes it and opens a new one to the successor.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from zembed.frontend import KernelRecord, Message, ProtocolError, Session, connect_socket, open_client_sockets

IopubHandler = Callable[[Message, bool], None]  # (message, ours: sent by this link's session)
StdinHandler = Callable[[Message], None]

_CHANNELS = ("shell", "control", "stdin", "iopub")


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): any name will do
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "user"


class KernelLink:
    """The sockets to one kernel and the replies awaited on them."""

    def __init__(self, record: KernelRecord, on_iopub: IopubHandler, on_stdin: StdinHandler) -> None:
        self.record = record
        self.info = record.info
        self.session = Session(str(self.info["key"]).encode(), username=_username())
        self._on_iopub = on_iopub
        self._on_stdin = on_stdin
        self._context = zmq.asyncio.Context()
        # the heartbeat is made apart: a REQ that missed an answer is replaced
        self._sockets: dict[str, zmq.asyncio.Socket] = open_client_sockets(
            self._context, self.info, self.session.session_id.encode(), _CHANNELS
        )
        self._heartbeat = self._new_heartbeat()
        self._blocking_context = zmq.Context()
        self._blocking = self._blocking_context.socket(zmq.DEALER)  # see ask()
        self._blocking.linger = 0
        connect_socket(self._blocking, self.info, "shell")
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._idle: dict[str, asyncio.Event] = {}  # set when the request's "idle" status arrives
        self._readers = [asyncio.ensure_future(self._read(channel)) for channel in _CHANNELS]
        self.rejected = 0  # messages that failed verification (a key mismatch shows here)

    # -- requests -----------------------------------------------------------

    def send(self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None) -> str:
        """Send a request; return its msg_id (``reply`` and ``idle`` await it)."""
        header = self.session.header(msg_type)
        msg_id = str(header["msg_id"])
        self._replies[msg_id] = asyncio.get_running_loop().create_future()
        self._idle[msg_id] = asyncio.Event()
        frames = self.session.serialize(msg_type, content, parent=parent, header=header)
        self._sockets[channel].send_multipart(frames)
        return msg_id

    def reply(self, msg_id: str) -> asyncio.Future[Message]:
        """The future of ``msg_id``'s reply (stays valid until it resolves)."""
        return self._replies[msg_id]

    def idle(self, msg_id: str) -> asyncio.Event:
        """Set once all of ``msg_id``'s output has been published."""
        return self._idle.setdefault(msg_id, asyncio.Event())

    def forget(self, msg_id: str) -> None:
        self._idle.pop(msg_id, None)
        future = self._replies.pop(msg_id, None)
        if future is not None and not future.done():
            future.cancel()

    async def request(self, channel: str, msg_type: str, content: dict[str, Any], timeout: float) -> Message:
        """Send and wait for the reply; ``TimeoutError`` after ``timeout`` s."""
        msg_id = self.send(channel, msg_type, content)
        try:
            return await asyncio.wait_for(asyncio.shield(self._replies[msg_id]), timeout)
        finally:
            self.forget(msg_id)

    def ask(self, msg_type: str, content: dict[str, Any], timeout: float) -> Message | None:
        """A shell request that blocks this thread until its reply (None after
        ``timeout``).  For decisions inside a key press: while it blocks, the
        keys typed meanwhile wait in the terminal, in order, instead of
        landing in the line being decided on."""
        header = self.session.header(msg_type)
        self._blocking.send_multipart(self.session.serialize(msg_type, content, header=header))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self._blocking.poll(int(left * 1000) + 1):
            try:
                message = self.session.parse(self._blocking.recv_multipart())
            except ProtocolError:
                self.rejected += 1
                continue
            if message.parent_header.get("msg_id") == header["msg_id"]:
                return message  # earlier answers that came too late are skipped
        return None

    # -- on attaching ------------------------------------------------------------

    async def handshake(self, timeout: float) -> dict[str, Any] | None:
        """kernel_info until its reply and its idle status both arrive (a new
        SUB socket misses what is published before it joins: then ask
        again).  The reply itself may take long on a loaded machine; it is
        waited for as long as ``timeout`` allows.  The reply's content, or
        None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg_id = self.send("shell", "kernel_info_request", {})
            idle = self.idle(msg_id)
            try:
                reply = await asyncio.wait_for(asyncio.shield(self.reply(msg_id)), left)
                await asyncio.wait_for(idle.wait(), 0.5)
                return reply.content
            except asyncio.TimeoutError:
                continue
            finally:
                self.forget(msg_id)
        return None

    async def execution_count(self, info: dict[str, Any]) -> int | None:
        """The kernel's current count: zembed says it in kernel_info; any
        other kernel answers a silent, empty execute with it."""
        status = info.get("zembed")
        if isinstance(status, dict) and isinstance(status.get("execution_count"), int):
            return int(status["execution_count"])
        content = {"code": "", "silent": True, "store_history": False, "user_expressions": {}, "allow_stdin": False}
        try:
            reply = await self.request("shell", "execute_request", content, timeout=2.0)
        except asyncio.TimeoutError:
            return None
        count = reply.content.get("execution_count")
        return count if isinstance(count, int) else None

    async def history_tail(self, n: int = 1000) -> list[str]:
        """The kernel's last ``n`` inputs, oldest first ([] if it does not answer)."""
        content = {"hist_access_type": "tail", "n": n, "output": False, "raw": True}
        try:
            reply = await self.request("shell", "history_request", content, timeout=2.0)
        except asyncio.TimeoutError:
            return []
        entries = reply.content.get("history", [])
        return [str(entry[2]) for entry in entries if isinstance(entry, list) and len(entry) >= 3]

    def answer_input(self, request: Message, value: str) -> None:
        """Send ``input_reply`` for an ``input_request``."""
        frames = self.session.serialize("input_reply", {"value": value}, parent=request.header)
        self._sockets["stdin"].send_multipart(frames)

    async def ping(self, timeout: float) -> bool:
        """Does the heartbeat echo within ``timeout`` seconds?"""
        heartbeat = self._heartbeat
        await heartbeat.send(b"ping")
        if await heartbeat.poll(int(timeout * 1000)):
            await heartbeat.recv()
            return True
        heartbeat.close()  # a REQ socket without its answer cannot send again
        self._heartbeat = self._new_heartbeat()
        return False

    def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        for future in self._replies.values():
            if not future.done():
                future.cancel()
        self._replies.clear()
        self._idle.clear()
        for sock in [*self._sockets.values(), self._heartbeat]:
            sock.close()
        self._context.term()
        self._blocking.close()
        self._blocking_context.term()

    # -- incoming -------------------------------------------------------------

    def _new_heartbeat(self) -> zmq.asyncio.Socket:
        sock = self._context.socket(zmq.REQ)
        sock.linger = 0
        connect_socket(sock, self.info, "hb")
        return sock

    async def _read(self, channel: str) -> None:
        sock = self._sockets[channel]
        while True:
            try:
                frames = await sock.recv_multipart()
            except zmq.ZMQError:  # closed under us
                return
            try:
                message = self.session.parse(frames)
            except ProtocolError:
                self.rejected += 1
                continue
            parent = str(message.parent_header.get("msg_id"))
            if channel in ("shell", "control"):
                future = self._replies.pop(parent, None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.msg_type == "status":
                if message.content.get("execution_state") == "idle" and parent in self._idle:
                    self._idle.pop(parent).set()
            else:
                try:
                    if channel == "iopub":
                        self._on_iopub(message, message.parent_header.get("session") == self.session.session_id)
                    else:
                        self._on_stdin(message)
                except Exception:  # a console bug must not stop the reader: say it, go on
                    traceback.print_exc(file=sys.__stderr__)
