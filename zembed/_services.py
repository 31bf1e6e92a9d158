"""What handlers, magics and profiling need of a kernel, written down.

The request layer (``_handlers``, ``_magics``, ``_profiling``) depends on
this ``Protocol``, never on ``Kernel``: ``Kernel`` provides it by being
what it is, and the in-memory harness of the tests provides it with the
same real parts (an ``Outbox`` on a recording transport, ``Cells``, an
in-memory ``History``) and no sockets.  Adding to it is a decision: each
member is a dependency every handler may take.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._cell import Cells
    from ._comms import Comms
    from ._config import KernelConfig
    from ._debugger import Debugger
    from ._kernel_history import History
    from ._magics import Magics
    from ._outbox import Outbox
    from ._protocol import Message


class KernelServices(Protocol):
    # what the kernel is
    name: str
    namespace: dict[str, Any]
    execution_count: int
    config: KernelConfig
    connection_file: Path
    connection_info: dict[str, Any]
    crashes: list[dict[str, Any]]

    # the parts a request goes through
    outbox: Outbox
    cells: Cells
    history: History
    comms: Comms
    debugger: Debugger | None  # None until a client sends a debug request

    @property
    def loop(self) -> str: ...

    @property
    def magics(self) -> Magics: ...

    @property
    def executing(self) -> bool: ...

    @property
    def cluster(self) -> dict[str, Any] | None: ...

    def host_busy_seconds(self) -> float: ...

    def running_cell(self) -> dict[str, Any] | None: ...

    def current_parent(self) -> dict[str, Any] | None: ...

    def status(self) -> dict[str, Any]: ...

    # what a request may ask of the kernel
    def interrupt(self) -> bool: ...

    def detach(self, restart: bool) -> None: ...

    def take_queued(self, predicate: Callable[[str, Message], bool]) -> list[tuple[str, Message]]: ...

    def register_magic(
        self, name: str, function: Callable[..., Any], *, cell: bool = False, help: str | None = None
    ) -> None: ...

    def call_on_host(self, callback: Callable[[], None]) -> None: ...

    def on_stop(self, callback: Callable[[], None]) -> None: ...
