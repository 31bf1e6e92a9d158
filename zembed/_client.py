"""Driving a hosted kernel from a script: ``zembed.connect(NAME)`` and
``await zembed.connect_async(NAME)``.

Small clients on pyzmq and zembed's own protocol core.  What a request
needs (its content, how its reply and outputs are recognised, how a result
is decoded) is written once, with no I/O (``_Pending`` and the helpers
below); ``Client`` waits with a poller, ``AsyncClient`` with asyncio.

One request at a time per client; open one client per host to drive
several.  ``execute`` raises ``RemoteError`` with the remote traceback; a
silent host is told apart from a busy one by its heartbeat (``HostDied``
vs ``TimeoutError``).  A timeout, Ctrl-C or cancellation while waiting
interrupts the remote code first, so the next call never waits behind a
cell nobody waits for (``execute(..., interrupt_on_timeout=False)`` leaves
it running, and the error says so).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from ._connection import connect as connect_socket
from ._connection import open_client_sockets, read_connection_file
from ._errors import ProtocolError, ZembedError
from ._protocol import Message, Session

OutputHandler = Callable[[str, dict[str, Any]], None]  # (msg_type, content) of each output
_DOTTED_NAME = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*")
_HELPER = "__import__('zembed._scripting', fromlist=['_'])"
INTERRUPT_WAIT = 5.0  # seconds an interrupted cell has to end before the caller is told it did not


class RemoteError(ZembedError):
    """The remote code raised; ``traceback`` holds the remote traceback lines."""

    def __init__(self, ename: str, evalue: str, traceback: list[str]) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.traceback = ename, evalue, traceback

    def __str__(self) -> str:
        return "\n".join(self.traceback) if self.traceback else f"{self.ename}: {self.evalue}"


class HostDied(ZembedError, ConnectionError):
    """The host stopped answering its heartbeat."""


@dataclass
class Result:
    """What one ``execute`` produced."""

    execution_count: int | None = None
    data: dict[str, Any] | None = None  # the execute_result's mime bundle, if any
    stdout: str = ""
    stderr: str = ""
    outputs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # everything, in order

    @property
    def value(self) -> str | None:
        """The result's plain text, as a console would show it."""
        return None if self.data is None else self.data.get("text/plain")


# -- requests, without I/O -----------------------------------------------------


class _Pending:
    """One request's progress: fed messages, it knows when the request is
    complete (its reply, and ``idle`` when asked for)."""

    def __init__(self, msg_id: str, wait_for_idle: bool, on_output: OutputHandler | None, limit: float) -> None:
        self.msg_id = msg_id
        self.limit = limit  # seconds to wait in all
        self.deadline = time.monotonic() + limit
        self.reply: Message | None = None
        self.idle = not wait_for_idle
        self.result = Result()
        self._on_output = on_output

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def done(self) -> bool:
        return self.reply is not None and self.idle

    def feed(self, message: Message, is_reply: bool) -> None:
        if message.parent_header.get("msg_id") != self.msg_id:
            return
        if is_reply:
            self.reply = message
            if message.content.get("execution_count") is not None:
                self.result.execution_count = message.content["execution_count"]
        elif message.msg_type == "status":
            self.idle = self.idle or message.content.get("execution_state") == "idle"
        elif message.msg_type != "execute_input":  # the echo of our own code is no output
            _record(self.result, message)
            if self._on_output is not None:
                self._on_output(message.msg_type, message.content)


def _record(result: Result, message: Message) -> None:
    content = message.content
    result.outputs.append((message.msg_type, content))
    if message.msg_type == "stream":
        if content.get("name") == "stderr":
            result.stderr += content.get("text", "")
        else:
            result.stdout += content.get("text", "")
    elif message.msg_type == "execute_result":
        result.data = content.get("data")


def _execute_content(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": False,
    }


def _silent_content(encoded_expression: str) -> dict[str, Any]:
    # Silent, with the value as a user expression that the helper already encodes as JSON.
    return {
        "code": "",
        "silent": True,
        "store_history": False,
        "allow_stdin": False,
        "user_expressions": {"value": encoded_expression},
    }


def _eval_content(expression: str) -> dict[str, Any]:
    return _silent_content(f"{_HELPER}.encode(({expression}))")


def _call_content(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if not _DOTTED_NAME.fullmatch(name):
        raise ValueError(f"call() takes a dotted name such as 'app.reset', not {name!r}")
    arguments = json.dumps({"args": args, "kwargs": kwargs})
    return _silent_content(f"{_HELPER}.call({name}, {arguments!r})")


def _check_execute(reply: Message) -> None:
    if reply.content.get("status") == "error":
        raise _remote_error(reply.content)


def _decode_eval(reply: Message) -> Any:
    outcome = reply.content.get("user_expressions", {}).get("value", {})
    if outcome.get("status") != "ok":
        raise _remote_error(outcome)
    encoded = json.loads(ast.literal_eval(outcome["data"]["text/plain"]))
    return encoded["json"] if "json" in encoded else encoded["repr"]


def _remote_error(content: dict[str, Any]) -> RemoteError:
    return RemoteError(
        str(content.get("ename", "Error")), str(content.get("evalue", "")), list(content.get("traceback", []))
    )


class _Connection:
    """What both clients hold: the file, the session, the sockets."""

    def __init__(self, connection_file: str | os.PathLike[str], timeout: float, context: zmq.Context[Any]) -> None:
        self.connection_file = Path(connection_file)
        self.info = read_connection_file(self.connection_file)
        self.timeout = timeout
        self._session = Session(str(self.info["key"]).encode(), username="zembed-client")
        self._context = context
        self._sockets = open_client_sockets(context, self.info, self._session.session_id.encode())

    def _message(self, msg_type: str, content: dict[str, Any]) -> tuple[str, list[bytes]]:
        header = self._session.header(msg_type)
        return str(header["msg_id"]), self._session.serialize(msg_type, content, header=header)

    def _parse(self, frames: list[bytes]) -> Message | None:
        try:
            return self._session.parse(frames)
        except ProtocolError:
            return None

    def _replace_heartbeat(self) -> None:
        # A REQ socket that got no answer is stuck in its send state.
        self._sockets["hb"].close()
        self._sockets["hb"] = self._context.socket(zmq.REQ)
        self._sockets["hb"].linger = 0
        connect_socket(self._sockets["hb"], self.info, "hb")

    def _begin(
        self,
        channel: str,
        msg_id: str,
        timeout: float | None,
        on_output: OutputHandler | None,
        wait_for_idle: bool,
        poller: Any,
    ) -> tuple[_Pending, Any]:
        """A request's progress, and ``poller`` watching its reply channel and iopub."""
        pending = _Pending(msg_id, wait_for_idle, on_output, self.timeout if timeout is None else timeout)
        reply_socket = self._sockets[channel]
        for sock in (reply_socket, self._sockets["iopub"]):
            poller.register(sock, zmq.POLLIN)
        return pending, reply_socket

    def _overdue(self, limit: float, alive: bool) -> Exception:
        if not alive:
            return HostDied(f"the host of {self.connection_file.name} stopped answering its heartbeat")
        return TimeoutError(f"no reply within {limit:g} s; the host is alive but busy")

    @staticmethod
    def _timed_out(exc: TimeoutError, interrupted: bool | None) -> TimeoutError:
        """The error for an execute that timed out: what became of the cell.
        ``interrupted``: True (it stopped), False (the host did not come
        back to take the interrupt yet), None (it was left running)."""
        if interrupted is None:
            return TimeoutError(f"{exc}; the cell still runs in the host (interrupt_on_timeout=False)")
        if interrupted:
            return TimeoutError(f"{exc}; the cell was interrupted")
        return TimeoutError(
            f"{exc}; an interrupt was sent: the cell stops when the host's thread comes back to it "
            "(as soon as it starts, if it has not yet)"
        )

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._context.term()


# -- the synchronous client -------------------------------------------------------


class Client(_Connection):
    """A connection to one kernel.  Use ``zembed.connect`` to make one."""

    def __init__(self, connection_file: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        super().__init__(connection_file, timeout, zmq.Context())
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.close()
            raise

    def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_output: OutputHandler | None = None,
        interrupt_on_timeout: bool = True,
    ) -> Result:
        """Run ``code`` in the host; raise ``RemoteError`` if it raises.

        ``on_output(msg_type, content)`` sees every output as it arrives
        (``stream``, ``display_data``, ``execute_result``, ``error``...).
        After ``timeout`` seconds, ``TimeoutError``; the cell is interrupted
        first unless ``interrupt_on_timeout`` is False.
        """
        reply, result = self._execute(_execute_content(code), timeout, on_output, interrupt_on_timeout)
        _check_execute(reply)
        return result

    def eval(self, expression: str, *, timeout: float | None = None) -> Any:
        """The value of ``expression`` in the host: JSON-able values come back
        as Python values, others as their ``repr`` string.  Silent: other
        clients do not see it, and it does not count in the history."""
        return _decode_eval(self._execute(_eval_content(expression), timeout, None)[0])

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the callable ``name`` (a dotted name in the host's namespace)
        with JSON-able arguments; return its value as ``eval`` does."""
        return _decode_eval(self._execute(_call_content(name, args, kwargs), timeout, None)[0])

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the host's running cell, if any."""
        self._sockets["control"].send_multipart(self._message("interrupt_request", {})[1])

    def kernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The kernel's ``kernel_info_reply`` content, over control (works while busy)."""
        msg_id, frames = self._message("kernel_info_request", {})
        self._sockets["control"].send_multipart(frames)
        return self._collect("control", msg_id, timeout, None, False)[0].content

    def alive(self, timeout: float = 1.0) -> bool:
        """Does the host's heartbeat answer?"""
        heartbeat = self._sockets["hb"]
        heartbeat.send(b"ping")
        if heartbeat.poll(int(timeout * 1000)):
            heartbeat.recv()
            return True
        self._replace_heartbeat()
        return False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_ready(self, timeout: float) -> None:
        """kernel_info until its reply and an iopub message both arrive (the
        SUB socket joins late: its first messages may be lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id, frames = self._message("kernel_info_request", {})
            self._sockets["shell"].send_multipart(frames)
            try:
                self._collect("shell", msg_id, min(0.5, max(0.01, deadline - time.monotonic())), None, True)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"the kernel in {self.connection_file} did not answer within {timeout:g} s")

    def _execute(
        self,
        content: dict[str, Any],
        timeout: float | None,
        on_output: OutputHandler | None,
        interrupt_on_timeout: bool = True,
    ) -> tuple[Message, Result]:
        msg_id, frames = self._message("execute_request", content)
        self._sockets["shell"].send_multipart(frames)
        try:
            return self._collect("shell", msg_id, timeout, on_output, True)
        except KeyboardInterrupt:
            # Ctrl-C in the script: stop the remote code too, then stop here.
            self._interrupt_and_wait(msg_id, on_output)
            raise
        except TimeoutError as exc:
            if not interrupt_on_timeout:
                raise self._timed_out(exc, None) from None
            raise self._timed_out(exc, self._interrupt_and_wait(msg_id, on_output)) from None

    def _interrupt_and_wait(self, msg_id: str, on_output: OutputHandler | None) -> bool:
        """Interrupt the cell ``msg_id``; True if it ended within 5 s."""
        self.interrupt()
        try:
            self._collect("shell", msg_id, INTERRUPT_WAIT, on_output, True)
        except (TimeoutError, HostDied):
            return False
        return True

    def _collect(
        self, channel: str, msg_id: str, timeout: float | None, on_output: OutputHandler | None, wait_for_idle: bool
    ) -> tuple[Message, Result]:
        poller = zmq.Poller()
        pending, reply_socket = self._begin(channel, msg_id, timeout, on_output, wait_for_idle, poller)
        while not pending.done:
            if (left := pending.left()) <= 0:
                raise self._overdue(pending.limit, self.alive())
            for sock, _ in poller.poll(int(min(left, 0.25) * 1000) + 1):
                message = self._parse(sock.recv_multipart())
                if message is not None:
                    pending.feed(message, sock is reply_socket)
        assert pending.reply is not None
        return pending.reply, pending.result


# -- the asyncio client ---------------------------------------------------------------


class AsyncClient(_Connection):
    """``Client`` for asyncio: the same methods, awaited.  Made by
    ``await zembed.connect_async(...)``; drive several hosts concurrently
    with ``asyncio.gather``."""

    def __init__(self, connection_file: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        super().__init__(connection_file, timeout, zmq.asyncio.Context())

    async def execute(
        self,
        code: str,
        *,
        timeout: float | None = None,
        on_output: OutputHandler | None = None,
        interrupt_on_timeout: bool = True,
    ) -> Result:
        reply, result = await self._execute(_execute_content(code), timeout, on_output, interrupt_on_timeout)
        _check_execute(reply)
        return result

    async def eval(self, expression: str, *, timeout: float | None = None) -> Any:
        return _decode_eval((await self._execute(_eval_content(expression), timeout, None))[0])

    async def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return _decode_eval((await self._execute(_call_content(name, args, kwargs), timeout, None))[0])

    async def interrupt(self) -> None:
        await self._sockets["control"].send_multipart(self._message("interrupt_request", {})[1])

    async def kernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        msg_id, frames = self._message("kernel_info_request", {})
        await self._sockets["control"].send_multipart(frames)
        return (await self._collect("control", msg_id, timeout, None, False))[0].content

    async def alive(self, timeout: float = 1.0) -> bool:
        heartbeat = self._sockets["hb"]
        await heartbeat.send(b"ping")
        if await heartbeat.poll(int(timeout * 1000)):
            await heartbeat.recv()
            return True
        self._replace_heartbeat()
        return False

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id, frames = self._message("kernel_info_request", {})
            await self._sockets["shell"].send_multipart(frames)
            try:
                await self._collect("shell", msg_id, min(0.5, max(0.01, deadline - time.monotonic())), None, True)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"the kernel in {self.connection_file} did not answer within {timeout:g} s")

    async def _execute(
        self,
        content: dict[str, Any],
        timeout: float | None,
        on_output: OutputHandler | None,
        interrupt_on_timeout: bool = True,
    ) -> tuple[Message, Result]:
        msg_id, frames = self._message("execute_request", content)
        await self._sockets["shell"].send_multipart(frames)
        try:
            return await self._collect("shell", msg_id, timeout, on_output, True)
        except asyncio.CancelledError:
            await self.interrupt()  # cancelled: stop the remote code too
            raise
        except TimeoutError as exc:
            if not interrupt_on_timeout:
                raise self._timed_out(exc, None) from None
            await self.interrupt()
            try:
                await self._collect("shell", msg_id, INTERRUPT_WAIT, on_output, True)
            except (TimeoutError, HostDied):
                raise self._timed_out(exc, False) from None
            raise self._timed_out(exc, True) from None

    async def _collect(
        self, channel: str, msg_id: str, timeout: float | None, on_output: OutputHandler | None, wait_for_idle: bool
    ) -> tuple[Message, Result]:
        poller = zmq.asyncio.Poller()
        pending, reply_socket = self._begin(channel, msg_id, timeout, on_output, wait_for_idle, poller)
        while not pending.done:
            if (left := pending.left()) <= 0:
                raise self._overdue(pending.limit, await self.alive())
            for sock, _ in await poller.poll(int(min(left, 0.25) * 1000) + 1):
                message = self._parse(await sock.recv_multipart())
                if message is not None:
                    pending.feed(message, sock is reply_socket)
        assert pending.reply is not None
        return pending.reply, pending.result


def connect(name_or_file: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> Client:
    """Connect to a kernel: a connection file, an app name, or None for the
    newest live one (the rules of ``zembed list``)."""
    from ._discovery import resolve

    return Client(resolve(name_or_file, timeout=min(timeout, 1.0)).connection_file, timeout=timeout)


async def connect_async(name_or_file: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> AsyncClient:
    """``connect`` for asyncio: returns a ready ``AsyncClient``."""
    from ._discovery import resolve

    record = await asyncio.to_thread(resolve, name_or_file, timeout=min(timeout, 1.0))
    client = AsyncClient(record.connection_file, timeout=timeout)
    try:
        await client._wait_ready(timeout)
    except BaseException:
        client.close()
        raise
    return client
