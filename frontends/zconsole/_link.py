"""One attachment to one kernel: its five sockets on asyncio, requests
matched to their replies, iopub and stdin messages handed to the console,
the heartbeat asked on demand.

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

from zembed._connection import address
from zembed._discovery import KernelRecord
from zembed._errors import ProtocolError
from zembed._protocol import Message, Session

MessageHandler = Callable[[Message], None]

_SOCKETS = {"shell": zmq.DEALER, "control": zmq.DEALER, "stdin": zmq.DEALER, "iopub": zmq.SUB}


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): any name will do
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "user"


class KernelLink:
    """The sockets to one kernel and the replies awaited on them."""

    def __init__(self, record: KernelRecord, on_iopub: MessageHandler, on_stdin: MessageHandler) -> None:
        self.record = record
        self.info = record.info
        self.session = Session(str(self.info["key"]).encode(), username=_username())
        self._on = {"iopub": on_iopub, "stdin": on_stdin}
        self._context = zmq.asyncio.Context()
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        identity = self.session.session_id.encode()  # the kernel answers input() to our shell identity
        for channel, kind in _SOCKETS.items():
            sock = self._context.socket(kind)
            sock.linger = 0
            if channel in ("shell", "stdin"):
                sock.setsockopt(zmq.IDENTITY, identity)
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(address(self.info, channel))
            self._sockets[channel] = sock
        self._heartbeat = self._new_heartbeat()
        self._blocking_context = zmq.Context()
        self._blocking = self._blocking_context.socket(zmq.DEALER)  # see ask()
        self._blocking.linger = 0
        self._blocking.connect(address(self.info, "shell"))
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._readers = [asyncio.ensure_future(self._read(channel)) for channel in _SOCKETS]
        self.rejected = 0  # messages that failed verification (a key mismatch shows here)

    # -- requests -----------------------------------------------------------

    def send(self, channel: str, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None) -> str:
        """Send a request; return its msg_id (``reply`` awaits the answer)."""
        header = self.session.header(msg_type)
        msg_id = str(header["msg_id"])
        self._replies[msg_id] = asyncio.get_running_loop().create_future()
        frames = self.session.serialize(msg_type, content, parent=parent, header=header)
        self._sockets[channel].send_multipart(frames)
        return msg_id

    def reply(self, msg_id: str) -> asyncio.Future[Message]:
        """The future of ``msg_id``'s reply (stays valid until it resolves)."""
        return self._replies[msg_id]

    def forget(self, msg_id: str) -> None:
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
        for sock in [*self._sockets.values(), self._heartbeat]:
            sock.close()
        self._context.term()
        self._blocking.close()
        self._blocking_context.term()

    # -- incoming -------------------------------------------------------------

    def _new_heartbeat(self) -> zmq.asyncio.Socket:
        sock = self._context.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(address(self.info, "hb"))
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
            handler = self._on.get(channel)
            if handler is not None:
                try:
                    handler(message)
                except Exception:  # a console bug must not stop the reader: say it, go on
                    traceback.print_exc(file=sys.__stderr__)
                continue
            future = self._replies.pop(str(message.parent_header.get("msg_id")), None)
            if future is not None and not future.done():
                future.set_result(message)
