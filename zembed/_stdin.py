"""``input()`` and ``getpass.getpass()`` answered by the client, over stdin.

While a cell runs, ``builtins.input`` and ``getpass.getpass`` are replaced
by functions that send ``input_request`` to the client that sent the cell
and wait for its ``input_reply``; the originals are put back afterwards.
A client that said ``allow_stdin: false`` gets ``StdinNotAvailable``.

The wait is on a raw lock with a short timeout, so an interrupt (an
asynchronous KeyboardInterrupt) lands within a tenth of a second.
"""

from __future__ import annotations

import _thread
import builtins
import getpass
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._errors import KernelStopped, StdinNotAvailable
from ._protocol import Message

# Sends an input_request (prompt, password) and returns its msg_id.
RequestInput = Callable[[str, bool], str]


class StdinBridge:
    def __init__(self) -> None:
        self._replies: deque[Message] = deque()
        self._arrived = _thread.allocate_lock()
        self._arrived.acquire()
        self.closed = False
        self.waiting = False  # a cell is blocked in input() now

    def deliver(self, reply: Message) -> None:
        """Called on the socket thread with every ``input_reply``."""
        self._replies.append(reply)
        self.wake()

    def wake(self) -> None:
        try:
            self._arrived.release()
        except RuntimeError:  # already released: a wake-up is pending
            pass

    def wait_for(self, request_id: str) -> str:
        self.waiting = True
        try:
            return self._wait_for(request_id)
        finally:
            self.waiting = False

    def _wait_for(self, request_id: str) -> str:
        while True:
            while self._replies:
                reply = self._replies.popleft()
                # jupyter_client sends input_reply without a parent header;
                # skip only a reply that names another (older) request.
                if reply.parent_header.get("msg_id") in (None, request_id):
                    value = reply.content.get("value", "")
                    return value if isinstance(value, str) else ""  # a malformed reply: as if nothing was typed
            if self.closed:
                raise KernelStopped("the kernel stopped while waiting for input")
            self._arrived.acquire(timeout=0.1)

    @contextmanager
    def patched(self, request_input: RequestInput, allowed: bool) -> Iterator[None]:
        saved_input, saved_getpass = builtins.input, getpass.getpass

        def ask(prompt: Any, password: bool) -> str:
            if not allowed:
                raise StdinNotAvailable(
                    "this client does not accept input (allow_stdin is false); input() is unavailable"
                )
            self._replies.clear()
            return self.wait_for(request_input(str(prompt), password))

        def input(prompt: Any = "") -> str:  # noqa: A001 - replaces the builtin on purpose
            return ask(prompt, False)

        def getpass_(prompt: str = "Password: ", stream: Any = None) -> str:
            return ask(prompt, True)

        builtins.input, getpass.getpass = input, getpass_
        try:
            yield
        finally:
            builtins.input, getpass.getpass = saved_input, saved_getpass
