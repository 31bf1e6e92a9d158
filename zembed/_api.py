"""``start_kernel`` and ``serve``: the two ways a host starts a kernel."""

from __future__ import annotations

import logging
from typing import Any

from ._config import load_config
from ._errors import UsageError
from ._kernel import ErrorHook, Kernel, ShutdownHook
from .loops import resolve_loop

log = logging.getLogger("zembed")


def start_kernel(
    namespace: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    connection_file: str | None = None,
    loop: Any = None,
    ip: str | None = None,
    transport: str | None = None,
    on_shutdown: ShutdownHook | None = None,
    on_error: ErrorHook | None = None,
    **options: Any,
) -> Kernel:
    """Start serving ``namespace`` to Jupyter clients; return at once.

    ``namespace`` is the dict cells run in, as their globals: the host sees
    every change at once, and functions defined in one cell see names from
    another.  ``loop`` says how cell code reaches the host's thread:
    ``"auto"`` (default), ``"asyncio"``, ``"poll"`` (call ``kernel.poll()``
    yourself), an asyncio or tornado loop object, or a thread-safe
    ``call_soon(callback)`` callable.  Arguments left as None come from the
    config file or ``ZEMBED_*`` environment variables; ``options`` takes any
    other option (see ``zembed.KernelConfig``).

    ``on_shutdown(kernel, restart)`` is called on the host's thread after a
    client's ``shutdown_request`` detached the kernel; by default the host
    just keeps running.  ``on_error(kernel, exc)`` is called on the host's
    thread if the kernel ever stops serving by itself (its socket thread
    failed: a bug in zembed, logged with its traceback); ``kernel.running``
    is False from then on and ``kernel.failure`` holds the exception.

    Cells see ``__name__ == "__main__"`` when ``namespace`` has no
    ``__name__`` (as in IPython): that key is the only one added to it.
    """
    explicit = {"name": name, "connection_file": connection_file, "ip": ip, "transport": transport}
    overrides = {k: v for k, v in explicit.items() if v is not None}
    overrides.update(options)
    if isinstance(loop, str):
        overrides["loop"] = loop
    config = load_config(overrides)
    adapter = resolve_loop(config.loop if loop is None or isinstance(loop, str) else loop)
    if namespace is None:
        namespace = {}
    elif not isinstance(namespace, dict):
        raise UsageError(f"namespace must be a dict, not {type(namespace).__name__}")
    for hook, what in ((on_shutdown, "on_shutdown"), (on_error, "on_error")):
        if hook is not None and not callable(hook):
            raise UsageError(f"{what} must be a callable, not {type(hook).__name__}")
    namespace.setdefault("__name__", "__main__")
    return Kernel(namespace, config, adapter, on_shutdown, on_error)


def serve(namespace: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Serve ``namespace`` until a client shuts the kernel down or Ctrl-C.

    The blocking convenience for scripts: "drop a kernel here".  Runs cells
    on the calling thread.
    """
    if "loop" in kwargs:
        raise UsageError("serve() runs its own poll loop; use start_kernel() to choose a loop")
    kernel = start_kernel(namespace, loop="poll", **kwargs)
    print(f"zembed: serving {kernel.name!r}; attach with:\n  zconsole --existing {kernel.connection_file}")
    try:
        while kernel.running:
            kernel.wait(0.5)
            kernel.poll()
    except KeyboardInterrupt:
        pass
    finally:
        kernel.stop()
