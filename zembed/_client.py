"""Driving a hosted kernel from a script: ``zembed.connect(NAME)``.

A small synchronous client on pyzmq and zembed's own protocol core.  One
request at a time per client; open one client per host to drive several.
``execute`` raises ``RemoteError`` with the remote traceback; a silent host
is told apart from a busy one by its heartbeat (``HostDied`` vs
``TimeoutError``); Ctrl-C while waiting interrupts the remote code first.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from ._connection import address, read_connection_file
from ._errors import ProtocolError, ZembedError
from ._protocol import Message, Session

OutputHandler = Callable[[str, dict[str, Any]], None]  # (msg_type, content) of each iopub output
_DOTTED_NAME = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*")


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


class Client:
    """A connection to one kernel.  Use ``zembed.connect`` to make one."""

    def __init__(self, connection_file: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.connection_file = Path(connection_file)
        info = read_connection_file(self.connection_file)
        self.info = info
        self.timeout = timeout
        self._session = Session(str(info["key"]).encode(), username="zembed-client")
        self._context: zmq.Context[Any] = zmq.Context()
        identity = self._session.session_id.encode()
        self._sockets: dict[str, zmq.Socket[Any]] = {}
        for channel, kind in (
            ("shell", zmq.DEALER),
            ("control", zmq.DEALER),
            ("stdin", zmq.DEALER),
            ("iopub", zmq.SUB),
            ("hb", zmq.REQ),
        ):
            sock = self._context.socket(kind)
            sock.linger = 0
            if channel in ("shell", "stdin"):
                sock.setsockopt(zmq.IDENTITY, identity)  # the kernel answers input() to our shell identity
            if kind == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(address(info, channel))
            self._sockets[channel] = sock
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.close()
            raise

    # -- public API ----------------------------------------------------------

    def execute(self, code: str, *, timeout: float | None = None, on_output: OutputHandler | None = None) -> Result:
        """Run ``code`` in the host; raise ``RemoteError`` if it raises.

        ``on_output(msg_type, content)`` sees every output as it arrives
        (``stream``, ``display_data``, ``execute_result``, ``error``...).
        """
        reply, result = self._execute(
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
            timeout,
            on_output,
        )
        if reply.content.get("status") == "error":
            raise RemoteError(
                str(reply.content.get("ename", "Error")),
                str(reply.content.get("evalue", "")),
                list(reply.content.get("traceback", [])),
            )
        return result

    def eval(self, expression: str, *, timeout: float | None = None) -> Any:
        """The value of ``expression`` in the host: JSON-able values come back
        as Python values, others as their ``repr`` string.  Silent: other
        clients do not see it, and it does not count in the history."""
        return self._evaluate(f"__import__('zembed._scripting', fromlist=['_']).encode(({expression}))", timeout)

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the callable ``name`` (a dotted name in the host's namespace)
        with JSON-able arguments; return its value as ``eval`` does."""
        if not _DOTTED_NAME.fullmatch(name):
            raise ValueError(f"call() takes a dotted name such as 'app.reset', not {name!r}")
        arguments = json.dumps({"args": args, "kwargs": kwargs})
        return self._evaluate(f"__import__('zembed._scripting', fromlist=['_']).call({name}, {arguments!r})", timeout)

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the host's running cell, if any."""
        self._send("control", "interrupt_request", {})

    def kernel_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The kernel's ``kernel_info_reply`` content, over control (works while busy)."""
        return self._request("control", "kernel_info_request", {}, timeout).content

    def alive(self, timeout: float = 1.0) -> bool:
        """Does the host's heartbeat answer?"""
        hb = self._sockets["hb"]
        hb.send(b"ping")
        if hb.poll(int(timeout * 1000)):
            hb.recv()
            return True
        # A REQ socket that got no answer is stuck: replace it.
        hb.close()
        self._sockets["hb"] = self._context.socket(zmq.REQ)
        self._sockets["hb"].linger = 0
        self._sockets["hb"].connect(address(self.info, "hb"))
        return False

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._context.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    def _wait_ready(self, timeout: float) -> None:
        """kernel_info until its reply and an iopub message both arrive (the
        SUB socket joins late: its first messages may be lost)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._request(
                    "shell", "kernel_info_request", {}, min(0.5, deadline - time.monotonic()), wait_for_idle=True
                )
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"the kernel in {self.connection_file} did not answer within {timeout:g} s")

    def _send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        header = self._session.header(msg_type)
        self._sockets[channel].send_multipart(self._session.serialize(msg_type, content, header=header))
        return str(header["msg_id"])

    def _request(
        self,
        channel: str,
        msg_type: str,
        content: dict[str, Any],
        timeout: float | None,
        on_output: OutputHandler | None = None,
        wait_for_idle: bool = False,
    ) -> Message:
        msg_id = self._send(channel, msg_type, content)
        reply, _ = self._collect(channel, msg_id, timeout, on_output, wait_for_idle)
        return reply

    def _execute(
        self, content: dict[str, Any], timeout: float | None, on_output: OutputHandler | None
    ) -> tuple[Message, Result]:
        msg_id = self._send("shell", "execute_request", content)
        try:
            return self._collect("shell", msg_id, timeout, on_output, True)
        except KeyboardInterrupt:
            # Ctrl-C in the script: stop the remote code too, then stop here.
            self.interrupt()
            self._collect("shell", msg_id, 5.0, on_output, True)
            raise

    def _collect(
        self, channel: str, msg_id: str, timeout: float | None, on_output: OutputHandler | None, wait_for_idle: bool
    ) -> tuple[Message, Result]:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        reply: Message | None = None
        idle = not wait_for_idle
        result = Result()
        poller = zmq.Poller()
        poller.register(self._sockets[channel], zmq.POLLIN)
        poller.register(self._sockets["iopub"], zmq.POLLIN)
        while reply is None or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                if not self.alive():
                    raise HostDied(f"the host of {self.connection_file.name} stopped answering its heartbeat")
                raise TimeoutError(f"no reply within {limit:g} s; the host is alive but busy")
            for sock, _ in poller.poll(int(min(left, 0.25) * 1000) + 1):
                try:
                    message = self._session.parse(sock.recv_multipart())
                except ProtocolError:
                    continue
                if message.parent_header.get("msg_id") != msg_id:
                    continue
                if sock is self._sockets[channel]:
                    reply = message
                    if message.content.get("execution_count") is not None:
                        result.execution_count = message.content["execution_count"]
                elif message.msg_type == "status":
                    idle = idle or message.content.get("execution_state") == "idle"
                elif message.msg_type != "execute_input":  # the echo of our own code is no output
                    _record(result, message)
                    if on_output is not None:
                        on_output(message.msg_type, message.content)
        return reply, result

    def _evaluate(self, expression: str, timeout: float | None) -> Any:
        content = {
            "code": "",
            "silent": True,
            "store_history": False,
            "allow_stdin": False,
            "user_expressions": {"value": expression},
        }
        reply, _ = self._execute(content, timeout, None)
        outcome = reply.content.get("user_expressions", {}).get("value", {})
        if outcome.get("status") != "ok":
            raise RemoteError(
                str(outcome.get("ename", "Error")), str(outcome.get("evalue", "")), list(outcome.get("traceback", []))
            )
        encoded = json.loads(ast.literal_eval(outcome["data"]["text/plain"]))
        return encoded["json"] if "json" in encoded else encoded["repr"]


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


def connect(name_or_file: str | os.PathLike[str] | None = None, *, timeout: float = 10.0) -> Client:
    """Connect to a kernel: a connection file, an app name, or None for the
    newest live one (the rules of ``zembed list``)."""
    from ._discovery import resolve

    return Client(resolve(name_or_file, timeout=min(timeout, 1.0)).connection_file, timeout=timeout)
