"""Adapter for a host that offers one "run this on my thread soon" callable.

The smallest contract a host can give (trio's guest mode asks the same):
``start_kernel(ns, loop=call_soon_threadsafe)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("zembed")


class CallableLoop:
    name = "callable"

    def __init__(self, call_soon_threadsafe: Callable[[Callable[[], None]], Any]) -> None:
        self._call_soon = call_soon_threadsafe

    def call_soon(self, callback: Callable[[], None]) -> None:
        try:
            self._call_soon(callback)
        except Exception:
            log.exception("zembed: the host's call-soon callable failed; kernel work not scheduled")

    def close(self) -> None:
        pass
