"""Comms (spec: "Custom Messages"): targets, open comms, and the hooks of the
``comm`` package that ipywidgets (and anywidget, ipympl, tqdm.notebook)
create their comms through.

``Comms`` is one kernel's comm manager, with the interface of
``comm.base_comm.CommManager`` (``register_target``, ``register_comm``,
``get_comm``, ...), so libraries written for ipykernel register their
targets on it unchanged.  Incoming ``comm_open``/``comm_msg``/``comm_close``
are handled on the host's thread (``_handlers``); a ``Comm`` may send from
any thread (the host's frame loop moves a slider): what it sends goes out
through the kernel's ``Outbox``.

The ``comm`` package is told about this kernel (``comm.create_comm``,
``comm.get_comm_manager``) only while a cell or a comm handler runs, and
what was there is restored after, exactly: the host's own use of ``comm``
between cells is untouched.  ipywidgets' targets (``jupyter.widget``,
``jupyter.widget.control``) are registered when a frontend first opens one
and ipywidgets is installed in the host: a host that never shows a widget
never imports it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from ._services import KernelServices

log = logging.getLogger("zembed")
_bad_comms = RateLimitedLog(what="bad comm messages")

Message = dict[str, Any]  # as comm targets receive it: header, parent_header, metadata, content, buffers
TargetCallback = Callable[["Comm", Message], None]
WIDGET_TARGETS = ("jupyter.widget", "jupyter.widget.control")


class Comm:
    """One end of a comm, on the kernel's side (``comm.base_comm.BaseComm``'s interface)."""

    def __init__(
        self,
        target_name: str = "comm",
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        comm_id: str | None = None,
        primary: bool = True,
        target_module: str | None = None,
        *,
        manager: Comms,
        **_ignored: Any,
    ) -> None:
        self.comm_id = comm_id or uuid.uuid4().hex
        self.target_name = target_name
        self.target_module = target_module
        self.primary = primary
        self.manager = manager
        self.kernel = _ParentSource(manager)  # ipywidgets' Output widget asks comm.kernel.get_parent()
        self._msg_callback: Callable[[Message], Any] | None = None
        self._close_callback: Callable[[Message], Any] | None = None
        self._closed = True
        if primary:
            self.open(data, metadata, buffers)
        else:
            self._closed = False

    def open(
        self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None, buffers: Any = None
    ) -> None:
        self.manager.register_comm(self)
        content: dict[str, Any] = {"comm_id": self.comm_id, "target_name": self.target_name, "data": data or {}}
        if self.target_module is not None:
            content["target_module"] = self.target_module
        self.manager.publish("comm_open", content, metadata, buffers)
        self._closed = False

    def send(
        self, data: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None, buffers: Any = None
    ) -> None:
        if not self._closed:
            self.manager.publish("comm_msg", {"comm_id": self.comm_id, "data": data or {}}, metadata, buffers)

    def close(
        self,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Any = None,
        deleting: bool = False,
    ) -> None:
        if self._closed:
            return
        self._closed = True
        self.manager.publish("comm_close", {"comm_id": self.comm_id, "data": data or {}}, metadata, buffers)
        self.manager.unregister_comm(self)

    def on_msg(self, callback: Callable[[Message], Any] | None) -> None:
        self._msg_callback = callback

    def on_close(self, callback: Callable[[Message], Any] | None) -> None:
        self._close_callback = callback

    def handle_msg(self, msg: Message) -> None:
        if self._msg_callback is not None:
            self._msg_callback(msg)

    def handle_close(self, msg: Message) -> None:
        if self._close_callback is not None:
            self._close_callback(msg)

    def __repr__(self) -> str:
        return f"<zembed Comm {self.target_name!r} {self.comm_id}{' closed' if self._closed else ''}>"


class _ParentSource:
    """What ipywidgets' Output widget needs of "the kernel": the request being handled."""

    def __init__(self, manager: Comms) -> None:
        self._manager = manager

    def get_parent(self) -> dict[str, Any]:
        header = self._manager.parent()
        return {"header": header} if header else {}


class Comms:
    """One kernel's comms: targets, open comms, the comm package's hooks."""

    def __init__(self, kernel: KernelServices) -> None:
        self._kernel = kernel
        self.targets: dict[str, TargetCallback] = {}
        self.comms: dict[str, Comm] = {}
        self._lock = threading.Lock()  # comms open and close on the host's thread, send from any
        self._handling: dict[str, Any] | None = None  # header of the comm message being handled

    # -- comm.base_comm.CommManager's interface ------------------------------------------

    def register_target(self, target_name: str, f: TargetCallback) -> None:
        self.targets[target_name] = f

    def unregister_target(self, target_name: str, f: TargetCallback | None = None) -> TargetCallback | None:
        return self.targets.pop(target_name, None)

    def register_comm(self, comm: Comm) -> str:
        with self._lock:
            self.comms[comm.comm_id] = comm
        return comm.comm_id

    def unregister_comm(self, comm: Comm) -> None:
        with self._lock:
            self.comms.pop(comm.comm_id, None)

    def get_comm(self, comm_id: str) -> Comm | None:
        return self.comms.get(comm_id)

    # -- sending ----------------------------------------------------------------------

    def new_comm(self, *args: Any, **kwargs: Any) -> Comm:
        """``comm.create_comm`` while this kernel's hooks are in."""
        return Comm(*args, manager=self, **kwargs)

    def parent(self) -> dict[str, Any] | None:
        """What a comm's messages answer: the running cell's request, or the comm message being handled."""
        return self._kernel.current_parent() or self._handling

    def publish(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None, buffers: Any) -> None:
        self._kernel.outbox.publish(msg_type, content, self.parent(), metadata, _as_bytes(buffers))

    # -- the frontend's side (host thread) ---------------------------------------------

    def on_open(self, msg: Message) -> bool:
        """A frontend opened a comm; False (and a ``comm_close``) when no target takes it."""
        content = msg["content"]
        comm_id, target_name = str(content["comm_id"]), str(content.get("target_name", ""))
        if target_name not in self.targets and target_name in WIDGET_TARGETS:
            self._register_widget_targets()
        target = self.targets.get(target_name)
        with self._answering(msg):
            if target is None:
                log.info("zembed: comm_open for unknown target %r; closing it", target_name)
            else:
                comm = Comm(target_name, comm_id=comm_id, primary=False, manager=self)
                self.register_comm(comm)
                try:
                    target(comm, msg)
                    return True
                except Exception:
                    log.exception("zembed: the comm target %r failed to open comm %s", target_name, comm_id)
                self.unregister_comm(comm)
            self.publish("comm_close", {"comm_id": comm_id, "data": {}}, None, None)
        return False

    def on_msg(self, msg: Message) -> None:
        comm = self._known(msg, "comm_msg")
        if comm is not None:
            try:
                with self._answering(msg):
                    comm.handle_msg(msg)
            except Exception:  # the host's or a library's callback: its traceback, and the kernel goes on
                log.exception("zembed: the message handler of comm %s (%s) failed", comm.comm_id, comm.target_name)

    def on_close(self, msg: Message) -> None:
        comm = self._known(msg, "comm_close")
        if comm is not None:
            comm._closed = True
            self.unregister_comm(comm)
            try:
                with self._answering(msg):
                    comm.handle_close(msg)
            except Exception:
                log.exception("zembed: the close handler of comm %s (%s) failed", comm.comm_id, comm.target_name)

    def info(self, target_name: str | None) -> dict[str, Any]:
        with self._lock:
            listed = list(self.comms.values())
        return {c.comm_id: {"target_name": c.target_name} for c in listed if target_name in (None, c.target_name)}

    def _known(self, msg: Message, kind: str) -> Comm | None:
        comm_id = str(msg["content"]["comm_id"])
        comm = self.comms.get(comm_id)
        if comm is None:
            _bad_comms.warning("zembed: %s for unknown comm %s (closed, or never opened here)", kind, comm_id)
        return comm

    @contextmanager
    def _answering(self, msg: Message) -> Iterator[None]:
        previous, self._handling = self._handling, msg.get("header")
        try:
            with self.hooks():
                yield
        finally:
            self._handling = previous

    def _register_widget_targets(self) -> None:
        if importlib.util.find_spec("ipywidgets") is None:
            return
        with self.hooks():
            import ipywidgets

            ipywidgets.register_comm_target()  # asks comm.get_comm_manager(): this kernel's, while hooked

    # -- the comm package ---------------------------------------------------------------

    @contextmanager
    def hooks(self) -> Iterator[None]:
        """``comm.create_comm`` and ``comm.get_comm_manager`` are this
        kernel's while the block runs; what was there is put back after."""
        package = _comm_package()
        if package is None:
            yield
            return
        saved = package.create_comm, package.get_comm_manager
        package.create_comm, package.get_comm_manager = self.new_comm, lambda: self
        try:
            yield
        finally:
            package.create_comm, package.get_comm_manager = saved


@functools.cache
def _comm_installed() -> bool:
    return importlib.util.find_spec("comm") is not None


def _comm_package() -> Any:
    """The ``comm`` package if it is installed (imported on first need), else None."""
    if "comm" in sys.modules:
        return sys.modules["comm"]
    if not _comm_installed():
        return None
    import comm

    return comm


def _as_bytes(buffers: Any) -> list[bytes] | None:
    """Buffers as frames: bytes, memoryviews and arrays (anything with the buffer protocol)."""
    if not buffers:
        return None
    return [bytes(b) if not isinstance(b, bytes) else b for b in buffers]
