"""The in-memory harness: handlers with the kernel's real parts, no sockets.

``MemoryKernel`` provides ``zembed._services.KernelServices`` from the same
parts a kernel uses (an ``Outbox`` on a recording transport, ``Cells``, an
in-memory ``History``, the real magics, a ``Router`` with its ``HostQueue``
on a ``PollLoop``), so a request goes the way it goes in a host: the router
answers it at once or queues it, and ``poll()`` runs the queue, all on this
thread, in milliseconds.
``ask()`` returns the reply and everything published for the request, as a
client would have received them (parsed back from the signed frames).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zembed._cell import Cells
from zembed._comms import Comms
from zembed._config import load_config
from zembed._kernel_history import History
from zembed._magics import Magics, install_builtins
from zembed._outbox import Outbox
from zembed._profiling import install as install_profiling
from zembed._protocol import Message, Session, new_key
from zembed._routing import Router
from zembed.loops import PollLoop

if TYPE_CHECKING:
    from zembed._debugger import Debugger


class RecordingTransport:
    """Stands in for the socket thread: keeps the frames, honours barriers by committing."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[bytes]]] = []
        self.wakeups = 0
        self.committed_before_send = 0  # replies that waited for (and got) their history commit

    def send(self, channel: str, frames: list[bytes], wake: bool = True, barrier: Any = None) -> None:
        if barrier is not None:  # as the socket thread does: the frames wait until the change is committed
            deadline = time.monotonic() + 5
            while not barrier[0].reached(barrier[1]):
                assert time.monotonic() < deadline, "the history never committed the change this reply waits for"
                time.sleep(0.001)
            self.committed_before_send += 1
        self.sent.append((channel, frames))
        self.wakeups += wake

    def flush(self) -> None:
        self.wakeups += 1

    def flush_soon(self) -> None:
        self.wakeups += 1


@dataclass
class Exchange:
    """What one request produced: its reply (if any) and its iopub messages."""

    reply: Message | None
    published: list[Message] = field(default_factory=list)
    other: list[tuple[str, Message]] = field(default_factory=list)  # stdin requests and the like

    @property
    def content(self) -> dict[str, Any]:
        assert self.reply is not None, "no reply"
        return self.reply.content

    def types(self) -> list[str]:
        return [m.msg_type for m in self.published]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m.content for m in self.published if m.msg_type == msg_type]


class MemoryKernel:
    def __init__(self, namespace: dict[str, Any] | None = None, name: str = "memory") -> None:
        self.name = name
        self.namespace: dict[str, Any] = {"__name__": "__main__"} if namespace is None else namespace
        self.execution_count = 0
        self.config = load_config({"name": name})
        self.connection_file = Path("/nonexistent") / f"{name}.json"
        self.crashes: list[dict[str, Any]] = []
        self.session = Session(new_key())
        self.connection_info: dict[str, Any] = {"key": self.session.key.decode()}
        self.transport = RecordingTransport()
        self.history = History(None)
        self.outbox = Outbox(self.session, self.transport, self.history)
        self.cells = Cells()
        self.comms = Comms(self)
        self.debugger: Debugger | None = None
        self.adapter = PollLoop()
        self.router = Router(self, self.adapter, halted=lambda: False, after_batch=lambda: None)
        self.detach_calls: list[bool] = []
        self.stop_callbacks: list[Callable[[], None]] = []
        self._magics: Magics | None = None
        self._client = Session(self.session.key, username="tester")

    # -- KernelServices ---------------------------------------------------------------

    @property
    def loop(self) -> str:
        return "memory"

    @property
    def magics(self) -> Magics:
        if self._magics is None:
            self._magics = Magics()
            install_builtins(self)
            install_profiling(self)
        return self._magics

    @property
    def executing(self) -> bool:
        return self.cells.executing

    @property
    def cluster(self) -> dict[str, Any] | None:
        return None

    def host_busy_seconds(self) -> float:
        return 0.0

    def running_cell(self) -> dict[str, Any] | None:
        return self.cells.running_cell()

    def current_parent(self) -> dict[str, Any] | None:
        return self.cells.current_parent()

    def status(self) -> dict[str, Any]:
        return {"app": self.name, "loop": self.loop, "execution count": self.execution_count}

    def interrupt(self) -> bool:
        return self.cells.interrupt(self.router.queue.has("execute_request"))

    def detach(self, restart: bool) -> None:
        self.detach_calls.append(restart)
        self.router.detached = True

    def take_queued(self, predicate: Callable[[str, Message], bool]) -> list[tuple[str, Message]]:
        return self.router.queue.take(predicate)

    def register_magic(
        self, name: str, function: Callable[..., Any], *, cell: bool = False, help: str | None = None
    ) -> None:
        self.magics.register(name, function, cell=cell, help=help)

    def call_on_host(self, callback: Callable[[], None]) -> None:
        callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        self.stop_callbacks.append(callback)

    # -- the harness ----------------------------------------------------------------------

    def message(self, msg_type: str, content: dict[str, Any] | None = None) -> Message:
        """A request as the socket thread hands it over (verified, decoded)."""
        return Message(self._client.header(msg_type), content=content or {}, idents=[b"client-identity"])

    def ask(self, msg_type: str, content: dict[str, Any] | None = None, channel: str = "shell") -> Exchange:
        return self.handle(channel, self.message(msg_type, content))

    def handle(self, channel: str, message: Message) -> Exchange:
        """Route ``message`` as the socket thread would, then poll as a host
        would; what it produced."""
        start = len(self.transport.sent)
        self.router.on_message(channel, message)
        self.poll()
        return self.exchange(message.msg_id, start)

    def send(self, channel: str, message: Message) -> None:
        """Hand ``message`` to the router only: a host request waits in the queue until ``poll()``."""
        self.router.on_message(channel, message)

    def poll(self) -> bool:
        return self.adapter.run_pending()

    def exchange(self, msg_id: str, start: int = 0) -> Exchange:
        result = Exchange(None)
        reader = Session(self.session.key)  # its own replay window: an exchange may be read twice
        for channel, frames in self.transport.sent[start:]:
            parsed = reader.parse(frames)
            if parsed.parent_header.get("msg_id") != msg_id:
                continue
            if channel == "iopub":
                result.published.append(parsed)
            elif parsed.msg_type.endswith("_reply"):
                result.reply = parsed
            else:
                result.other.append((channel, parsed))
        return result

    def parsed(self) -> list[tuple[str, Message]]:
        """Everything sent so far, as a client would read it."""
        reader = Session(self.session.key)
        return [(channel, reader.parse(frames)) for channel, frames in self.transport.sent]

    def close(self) -> None:
        self.history.close()
