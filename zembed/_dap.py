"""What the debugger's modules share: ``_debugger`` (made by the first
debug request), ``_debug_session`` and ``_pydevd`` (loaded when a client
starts debugging), and the kernel's threads, marked here.
``rich_json`` and ``copy_to_namespace`` are also called by name from
expressions evaluated in a stopped frame."""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

Dap = dict[str, Any]
STATUS_OFF = {"started": False, "stopped": False, "stopped_seconds": 0.0}  # kernel_info's, before any debugging
ANSWER_TIMEOUT = 30.0  # seconds pydevd (or the host's thread, to start tracing) has to answer
PACKAGE_DIR = str(Path(__file__).resolve().parent)
# Names a namespace listing leaves out: the interpreter's and zembed's own, and cell results ``_1``
_HIDDEN = frozenset(("__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__"))
_HIDDEN_PATTERN = re.compile(r"^(__builtins__|__builtin__|_\d+|_i\d*|_|__|___)$")
namespaces: dict[int, dict[str, Any]] = {}  # copyToGlobals' target, by debugger: found from a stopped frame


def available() -> bool:
    """debugpy can be imported (the ``debug`` extra)."""
    return _debugpy_found()


_found: list[bool] = []


def _debugpy_found() -> bool:
    if not _found:
        import importlib.util

        _found.append(importlib.util.find_spec("debugpy") is not None)
    return _found[0]


def response(request: Dap, success: bool = True, body: Dap | None = None, message: str | None = None) -> Dap:
    """A DAP response to ``request`` (its ``seq`` is set when it is sent)."""
    seq = request.get("seq")
    reply: Dap = {
        "type": "response",
        "request_seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        "success": success,
        "command": str(request.get("command", "")),
        "body": body or {},
    }
    if message is not None:
        reply["message"] = message
    return reply


class DebuggerError(Exception):
    """Why a debug request failed: its text is the DAP response's ``message``."""


def mark_untraced(thread: threading.Thread) -> None:
    """A thread of the kernel's own: pydevd neither traces nor suspends it,
    nor lists it, and the output capture knows it never prints."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    thread.zembed_kernel_thread = True  # type: ignore[attr-defined]


def is_kernel_thread(thread: threading.Thread) -> bool:
    """One of the kernel's threads, which never print: zembed's own, and
    pyzmq's garbage collector (started by the first large zero-copy send)."""
    if getattr(thread, "zembed_kernel_thread", False) is True:
        return True
    garbage = sys.modules.get("zmq.utils.garbage")
    return garbage is not None and isinstance(thread, garbage.GarbageCollectorThread)


def rich_json(value: Any) -> str:
    """``value``'s mime bundle as JSON: evaluated in a stopped frame for
    ``richInspectVariables``, read back with ``ast.literal_eval``."""
    from ._display import format_bundle

    data, metadata = format_bundle(value)
    return json.dumps({"data": data, "metadata": metadata}, default=str)


def copy_to_namespace(token: int, name: str, value: Any) -> None:
    """``copyToGlobals``: evaluated in a stopped frame, which may be a host
    module's, so the kernel's namespace is found by its debugger's token."""
    namespaces[token][name] = value


def shown(name: str) -> bool:
    return name not in _HIDDEN and not _HIDDEN_PATTERN.match(name)
