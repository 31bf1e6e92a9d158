"""Rich output: mime bundles, ``display()``, ``clear_output()``.

Objects describe themselves the way Jupyter's ecosystem expects: an
optional ``_repr_mimebundle_`` and ``_repr_<format>_`` methods, with
``text/plain`` (``repr``) always present.  A failing ``_repr_`` is logged
and skipped, never fatal to the cell.

``display()`` publishes to the cell that is running (on this thread, or the
newest running cell when called from a thread the cell started); outside
any cell it prints the plain-text form, so host code may call it freely.
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
import uuid
from typing import Any, Protocol

log = logging.getLogger("zembed")

REPR_METHODS = {
    "text/html": "_repr_html_",
    "text/markdown": "_repr_markdown_",
    "text/latex": "_repr_latex_",
    "image/svg+xml": "_repr_svg_",
    "image/png": "_repr_png_",
    "image/jpeg": "_repr_jpeg_",
    "application/json": "_repr_json_",
    "application/javascript": "_repr_javascript_",
    "application/pdf": "_repr_pdf_",
}
BINARY_TYPES = {"image/png", "image/jpeg", "application/pdf"}
PRETTY_LIMIT = 20_000  # characters of repr beyond which pprint is not worth its time


class DisplayTarget(Protocol):
    """Where a running cell's rich output goes (the kernel implements it)."""

    kernel: Any  # the kernel running the cell (magics find it here)

    def publish(self, msg_type: str, content: dict[str, Any]) -> None: ...


_local = threading.local()
_running: list[DisplayTarget] = []  # cells running in this process, newest last
_running_lock = threading.Lock()


class publishing:
    """Context manager: route display() on this thread to ``output``."""

    def __init__(self, output: DisplayTarget) -> None:
        self._output = output

    def __enter__(self) -> None:
        self._previous = getattr(_local, "output", None)
        _local.output = self._output
        with _running_lock:
            _running.append(self._output)

    def __exit__(self, *exc: object) -> None:
        _local.output = self._previous
        with _running_lock:
            _running.remove(self._output)


def current_output() -> DisplayTarget | None:
    output = getattr(_local, "output", None)
    if output is None and _running:
        with _running_lock:
            output = _running[-1] if _running else None
    return output


def plain_text(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception as exc:
        return f"<{type(obj).__name__} object; repr() failed: {type(exc).__name__}: {exc}>"
    if len(text) > 79 and len(text) < PRETTY_LIMIT and type(obj) in (dict, list, tuple, set, frozenset):
        import pprint  # on first use: most hosts' cells never show a long container

        try:
            return pprint.pformat(obj, width=79, sort_dicts=False)
        except Exception:
            return text
    return text


def _encode(mime: str, value: Any) -> Any:
    if mime in BINARY_TYPES and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def format_bundle(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, metadata)`` for ``obj``; ``data`` always has ``text/plain``."""
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    bundle_method = getattr(type(obj), "_repr_mimebundle_", None)
    if bundle_method is not None:
        try:
            result = obj._repr_mimebundle_(include=None, exclude=None)
            if isinstance(result, tuple):
                result, metadata = result[0], dict(result[1] or {})
            data.update({k: _encode(k, v) for k, v in (result or {}).items()})
        except Exception:
            log.warning("zembed: %s._repr_mimebundle_ failed", type(obj).__name__, exc_info=True)
    for mime, method_name in REPR_METHODS.items():
        if mime in data or getattr(type(obj), method_name, None) is None:
            continue
        try:
            value = getattr(obj, method_name)()
        except Exception:
            log.warning("zembed: %s.%s failed", type(obj).__name__, method_name, exc_info=True)
            continue
        if isinstance(value, tuple) and len(value) == 2:  # (data, metadata) form
            value, metadata[mime] = value
        if value is not None:
            data[mime] = _encode(mime, value)
    data.setdefault("text/plain", plain_text(obj))
    return data, metadata


class DisplayHandle:
    """Returned by ``display(obj, display_id=True)``: update that output later."""

    def __init__(self, display_id: str) -> None:
        self.display_id = display_id

    def display(self, obj: Any, **kwargs: Any) -> None:
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj: Any, **kwargs: Any) -> None:
        display(obj, display_id=self.display_id, update=True, **kwargs)

    def __repr__(self) -> str:
        return f"<DisplayHandle display_id={self.display_id}>"


def display(
    *objs: Any,
    display_id: str | bool | None = None,
    update: bool = False,
    raw: bool = False,
    metadata: dict[str, Any] | None = None,
) -> DisplayHandle | None:
    """Show objects in every attached frontend, as rich as they allow.

    ``raw=True`` takes ready-made mime bundles (dicts of mime type to data).
    ``display_id=True`` makes up an id and returns a ``DisplayHandle``;
    ``update=True`` replaces the output shown earlier under ``display_id``.
    """
    if display_id is True:
        display_id = uuid.uuid4().hex
    if update and not display_id:
        raise TypeError("display(update=True) needs a display_id")
    output = current_output()
    for obj in objs:
        if raw:
            if not isinstance(obj, dict):
                raise TypeError("display(raw=True) takes dicts of mime type -> data")
            data, meta = dict(obj), dict[str, Any]()
        else:
            data, meta = format_bundle(obj)
        meta.update(metadata or {})
        if output is None:
            stream = sys.stdout
            if stream is not None:
                print(data.get("text/plain", ""), file=stream)
            continue
        content: dict[str, Any] = {"data": data, "metadata": meta, "transient": {}}
        if display_id:
            content["transient"] = {"display_id": display_id}
        output.publish("update_display_data" if update else "display_data", content)
    return DisplayHandle(display_id) if isinstance(display_id, str) and not update else None


def clear_output(wait: bool = False) -> None:
    """Clear the cell's output in frontends (after the next output if ``wait``)."""
    output = current_output()
    if output is not None:
        output.publish("clear_output", {"wait": bool(wait)})
