"""What a cluster asks of a host engine, run on the host's thread.

``apply_request`` and ``execute_request`` from an ipyparallel client run
exactly like a cell (``Cells.run``: output captured and published, the
interrupt window, the host's namespace as globals), so a function a
client applies sees the host's live objects and runs between its frames.

``apply_request`` is run the way ipyparallel's own engine runs it: the
function and its arguments are unpacked with ipyparallel's serialization
(``unpack_apply_message``, with the host's namespace for ``@interactive``
functions), bound to temporary names, called by one line of code, and the
result serialized back (``serialize_object``).  ipyparallel's helpers for
``push``, ``pull`` and ``execute`` find the namespace through
``ipyparallel.util.get_ipython()``, which without an IPython shell is None:
while such a request runs, it answers with the host's namespace, and the
original is put back after (process-wide state only while user code runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._kernel import Kernel

Content = dict[str, Any]
Publish = Callable[[str, Content], None]
# jupyter_client's Session defaults, which ipyparallel's clients use too:
# objects larger than this travel as buffers of their own, not pickled inline
BUFFER_THRESHOLD = 1024
ITEM_THRESHOLD = 64


class _Shell:
    """What ipyparallel's helpers ask of ``get_ipython()``."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.user_ns = self.user_global_ns = namespace


@contextmanager
def _host_as_shell(namespace: dict[str, Any]) -> Iterator[None]:
    import ipyparallel.util as util

    saved = util.get_ipython
    util.get_ipython = lambda: _Shell(namespace)  # type: ignore[assignment, return-value]
    try:
        yield
    finally:
        util.get_ipython = saved


def _no_input(prompt: str, password: bool) -> str:
    raise RuntimeError("engines have no stdin: input() is not available to cluster requests")


def _run(kernel: Kernel, code: str, name: str, parent: Content, publish: Publish) -> Any:
    result, _ = kernel.cells.run(
        code,
        count=0,
        filename=name,
        namespace=kernel.namespace,
        parent=parent,
        publish=publish,
        ask_input=_no_input,
        allow_stdin=False,
        user_expressions={},
        history_session=None,
        rewrite=lambda source: source,
        kernel=kernel,
    )
    return result


def apply(
    kernel: Kernel, buffers: list[bytes], msg_id: str, parent: Content, publish: Publish
) -> tuple[Content, list[Any]]:
    """``(reply content, result buffers)`` of an ``apply_request``."""
    from ipyparallel.serialize import serialize_object, unpack_apply_message

    namespace = kernel.namespace
    prefix = "_" + "".join(c if c.isalnum() else "_" for c in msg_id) + "_"
    names = {part: prefix + part for part in ("f", "args", "kwargs", "result")}
    try:
        function, args, kwargs = unpack_apply_message(buffers, namespace, copy=False)
    except Exception as exc:
        return _error(exc), []
    namespace.update({names["f"]: function, names["args"]: args, names["kwargs"]: kwargs})
    try:
        with _host_as_shell(namespace):
            result = _run(
                kernel,
                f"{names['result']} = {names['f']}(*{names['args']}, **{names['kwargs']})",
                f"<apply {msg_id[:8]}>",
                parent,
                publish,
            )
        value = namespace.get(names["result"])
    finally:
        for name in names.values():
            namespace.pop(name, None)
    if result.error is not None:
        publish("error", result.error)
        return {"status": "error", **result.error}, []
    try:
        return {"status": "ok"}, serialize_object(value, BUFFER_THRESHOLD, ITEM_THRESHOLD)
    except Exception as exc:  # a result that cannot be pickled
        return _error(exc, f"the result of the function cannot be sent: {type(exc).__name__}: {exc}"), []


def execute(kernel: Kernel, content: Content, parent: Content, publish: Publish, count: int) -> Content:
    """The content of an ``execute_reply`` for a cluster's ``execute_request``."""
    code = content.get("code")
    if not isinstance(code, str):
        return {"status": "error", "ename": "TypeError", "evalue": "execute_request.code must be a string"}
    if not content.get("silent"):
        publish("execute_input", {"code": code, "execution_count": count})
    with _host_as_shell(kernel.namespace):
        result = _run(kernel, code, f"<engine In [{count}]>", parent, publish)
    if result.error is not None:
        publish("error", result.error)
        return {"status": "error", "execution_count": count, **result.error}
    if result.data is not None and not content.get("silent"):
        publish("execute_result", {"execution_count": count, "data": result.data, "metadata": result.metadata or {}})
    return {"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []}


def _error(exc: BaseException, evalue: str | None = None) -> Content:
    from ._execute import error_content

    content = error_content(exc)
    if evalue is not None:
        content["evalue"] = evalue
    return {"status": "error", **content}
