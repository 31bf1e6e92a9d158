"""Running one cell of Python source in the host's namespace.

Owns: compiling (the last expression statement is evaluated separately so
its value becomes the ``execute_result``), registering the source with
``linecache`` (tracebacks and ``inspect.getsource`` work on cell code), and
turning exceptions into Jupyter ``error`` content without zembed's own
frames.  It does not capture output or talk to sockets; ``_kernel`` does.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class CellResult:
    value: Any = None
    data: dict[str, Any] | None = None  # mime bundle of a non-None last expression
    metadata: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # ename, evalue, traceback
    exit_requested: bool = False  # the cell called exit()/sys.exit(): detach that client
    payload: list[dict[str, Any]] = field(default_factory=list)  # execute_reply payloads (the pager's text)


# Cells that may leave code behind (functions, classes, lambdas, generator
# expressions) keep their source in linecache for good, as in IPython: a
# traceback or inspect.getsource() through them may come any time later.
# Other cells keep it while they are among the last RECENT_SOURCES, so a
# host running cells for weeks does not grow by every cell it ever ran.
RECENT_SOURCES = 1000
_LEAVES_CODE = ("def ", "class ", "lambda", " for ", "async ")
_recent: deque[str] = deque()


def register_source(filename: str, source: str) -> None:
    # mtime None keeps linecache.checkcache from evicting it.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    if any(marker in source for marker in _LEAVES_CODE):
        return
    _recent.append(filename)
    while len(_recent) > RECENT_SOURCES:
        old = _recent.popleft()
        if old != filename:
            linecache.cache.pop(old, None)


def compile_cell(source: str, filename: str) -> tuple[CodeType | None, CodeType | None]:
    """``(body, last_expression)``; either may be None.

    ``dont_inherit``: this module's ``from __future__`` imports must not
    leak into user code (postponed annotations would change its meaning).
    """
    tree = ast.parse(source, filename, "exec")
    last: ast.Expression | None = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    body = compile(tree, filename, "exec", dont_inherit=True) if tree.body else None
    return body, compile(last, filename, "eval", dont_inherit=True) if last is not None else None


def _user_frames(tb: TracebackType | None) -> tuple[TracebackType | None, int | None]:
    """Skip the leading frames that belong to zembed itself (running the
    cell), and count the frames up to the last one that is not zembed's
    (an interrupt lands in zembed's ``time.sleep``): a ``limit`` for
    ``format_exception``."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    first, count, last_user = tb, 0, None
    while tb is not None:
        count += 1
        if not tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            last_user = count
        tb = tb.tb_next
    return first, last_user


def error_content(exc: BaseException) -> dict[str, Any]:
    """Jupyter's error fields; the traceback lines are plain text."""
    exc_type = type(exc)
    if isinstance(exc, SyntaxError) and exc.msg == "'await' outside function":
        exc.msg += " (top-level await is not supported in cells: use asyncio.ensure_future(...) instead)"
    if isinstance(exc, SyntaxError):
        lines = traceback.format_exception_only(exc_type, exc)
    else:
        frames, limit = _user_frames(exc.__traceback__)
        lines = traceback.format_exception(exc_type, exc, frames, limit=limit)
    text = "".join(lines).rstrip("\n")
    return {"ename": exc_type.__name__, "evalue": str(exc), "traceback": text.split("\n")}


def run_cell(
    source: str,
    filename: str,
    namespace: dict[str, Any],
    guard: Callable[[], AbstractContextManager[None]],
    format_value: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]],
    rewrite: Callable[[str], str] = lambda source: source,
) -> CellResult:
    """Run ``source`` with ``namespace`` as globals; never raises.

    ``guard()`` wraps exactly the user's code (and the value's formatting,
    which runs user ``__repr__``s): it is the interrupt window.
    KeyboardInterrupt is reported as an error like any other exception.
    SystemExit (``exit()``, ``sys.exit()``) must not end the host: it is
    reported as ``exit_requested``, which asks the client to detach.
    ``rewrite`` turns the source into Python (magics); tracebacks and
    ``linecache`` keep showing the source as typed.
    """
    register_source(filename, source)
    namespace.setdefault("__builtins__", builtins)
    if source.strip() in ("exit", "quit") and source.strip() not in namespace:
        # Bare exit/quit, as IPython users type it to leave a console.
        return CellResult(exit_requested=True)
    try:
        with guard():
            body, last = compile_cell(rewrite(source), filename)
            if body is not None:
                exec(body, namespace)
            if last is None:
                return CellResult()
            value = eval(last, namespace)
            if value is None:
                return CellResult()
            namespace["_"] = value
            data, metadata = format_value(value)
            return CellResult(value=value, data=data, metadata=metadata)
    except SystemExit:
        return CellResult(exit_requested=True)
    except BaseException as exc:  # noqa: BLE001 - a cell may raise anything
        return CellResult(error=error_content(exc))


def evaluate_expressions(expressions: dict[str, Any], namespace: dict[str, Any], formatter: Any) -> dict[str, Any]:
    """``user_expressions`` of an execute_request, evaluated after the cell."""
    results: dict[str, Any] = {}
    for name, expression in expressions.items():
        try:
            if not isinstance(expression, str):
                raise TypeError(f"user expression must be a string, not {type(expression).__name__}")
            value = eval(compile(expression, "<user_expression>", "eval", dont_inherit=True), namespace)
            data, metadata = formatter(value)
            results[name] = {"status": "ok", "data": data, "metadata": metadata}
        except Exception as exc:
            results[name] = {"status": "error", **error_content(exc)}
    return results
