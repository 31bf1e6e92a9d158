"""Stamps for the traces (trace_host.py, trace_floor.py): a function's
entry and exit, on the thread it runs on, in ``time.monotonic_ns()``."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

STAMPS: list[tuple[int, str, str, str]] = []  # (ns, stage, "begin"/"end", thread name)


def stamped(owner: Any, name: str, stage: str, detail: Any = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        label = stage if detail is None else f"{stage}:{detail(*args, **kwargs)}"
        thread = threading.current_thread().name
        STAMPS.append((time.monotonic_ns(), label, "begin", thread))
        try:
            return original(*args, **kwargs)
        finally:
            STAMPS.append((time.monotonic_ns(), label, "end", thread))

    setattr(owner, name, wrapper)
