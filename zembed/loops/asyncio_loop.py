"""Adapter for asyncio loops (and tornado, whose IOLoop runs on asyncio)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("zembed")


class AsyncioLoop:
    name = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call_soon(self, callback: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the host closed its loop: nothing can run there now
            log.debug("zembed: asyncio loop is closed; dropping kernel work")

    def close(self) -> None:
        self._loop = None  # type: ignore[assignment]  # drop the reference; the loop is the host's
