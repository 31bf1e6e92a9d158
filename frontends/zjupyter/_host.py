"""The relay's side towards the host: finding it, its sockets, its life.

``find_host`` applies ``zconsole --existing APP``'s rule (the newest live
kernel of app APP) to zembed hosts only.  A ``HostLink`` holds the sockets
to one host (shell and stdin sharing one identity, since a host sends
``input_request`` to the identity that sent the cell) and tells its death:
two missed heartbeats, or, for a host on this machine, a pid that is gone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zmq

from zembed.frontend import (
    ConnectionFileError,
    KernelRecord,
    Session,
    open_client_sockets,
    pid_gone,
    report_for,
    resolve,
)

PING_EVERY = 0.5  # seconds between heartbeat pings to the host
PING_TIMEOUT = 0.8  # a ping unanswered this long is a miss; two misses are a death


class HostLink:
    """The relay's sockets to one host, and what is known of its life."""

    def __init__(self, context: zmq.Context[Any], record: KernelRecord) -> None:
        self.record = record
        self.info = record.info
        self.session = Session(str(self.info["key"]).encode(), username="zembed-relay")
        self.identity = f"relay-{os.getpid()}-{self.session.session_id[:8]}".encode()
        self._context = context
        self.sockets: dict[str, zmq.Socket[Any]] = open_client_sockets(
            context, self.info, self.identity, ("shell", "control", "stdin", "iopub")
        )
        self.local = self.info.get("transport") == "ipc" or str(self.info.get("ip", "")).startswith("127.")
        self._heartbeat: zmq.Socket[Any] | None = None
        self._ping_sent: float | None = None
        self._next_ping = 0.0
        self.misses = 0

    @property
    def app(self) -> str:
        return self.record.app or "?"

    @property
    def pid(self) -> int | None:
        return self.record.pid

    def who(self) -> str:
        return f"{self.app} (pid {self.pid})" if self.pid else self.app

    def heartbeat(self) -> zmq.Socket[Any]:
        if self._heartbeat is None:
            self._heartbeat = open_client_sockets(self._context, self.info, self.identity, ("hb",))["hb"]
        return self._heartbeat

    def check(self, now: float) -> bool:
        """Ping and count misses; False once the host is gone."""
        if self.local and self.pid is not None and pid_gone(self.pid):
            return False
        beat = self.heartbeat()
        if self._ping_sent is not None:
            if beat.poll(0):
                beat.recv()
                self._ping_sent, self.misses = None, 0
            elif now - self._ping_sent > PING_TIMEOUT:
                self.misses += 1
                beat.close()  # a REQ that missed its answer cannot ask again
                self._heartbeat, self._ping_sent = None, None
                if self.misses >= 2:
                    return False
        if self._ping_sent is None and now >= self._next_ping:
            self.heartbeat().send(b"ping")
            self._ping_sent, self._next_ping = now, now + PING_EVERY
        return True

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        if self._heartbeat is not None:
            self._heartbeat.close()

    def crash_report(self) -> dict[str, Any] | None:
        """The dead host's crash report, when it left one on this machine."""
        meta = self.info.get("zembed")
        app_dir = meta.get("app_dir") if isinstance(meta, dict) else None
        if not isinstance(app_dir, str) or self.pid is None or not self.local:
            return None
        try:
            return report_for(Path(app_dir), self.pid, wait=0.5)
        except OSError:
            return None


def find_host(app: str) -> KernelRecord | None:
    """The newest live host of app ``app``, or None.  Only zembed hosts
    count: a relay (or any other kernel) is never relayed to."""
    try:
        record = resolve(app, timeout=0.5)
    except (ConnectionFileError, OSError):
        return None
    if record.app != app or not record.alive:
        return None
    return record
