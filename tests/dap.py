"""A Jupyter debug protocol client over a test ``Client``, as JupyterLab is one."""

from __future__ import annotations

import time
from typing import Any

from conftest import Client


class Dap:
    """A debug client over a jupyter_client connection, as JupyterLab is one."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seq = 0
        self.events: list[dict[str, Any]] = []

    def __call__(self, command: str, timeout: float = 30, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        return self.client.control("debug_request", content, timeout=timeout)

    def ok(self, command: str, **arguments: Any) -> dict[str, Any]:
        answer = self(command, **arguments)
        assert answer["success"], answer
        assert answer["command"] == command and answer["request_seq"] == self.seq, answer
        return answer.get("body") or {}

    def event(self, name: str, timeout: float = 15) -> dict[str, Any]:
        """The next ``name`` debug_event (others are kept in ``events``)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["msg_type"] == "debug_event":
                self.events.append(msg["content"])
                if msg["content"]["event"] == name:
                    return msg["content"]

    def start(self) -> None:
        """JupyterLab's start: initialize, attach (configurationDone follows)."""
        self.ok(
            "initialize",
            clientID="jupyterlab",
            adapterID="python",
            pathFormat="path",
            linesStartAt1=True,
            columnsStartAt1=True,
            supportsVariableType=True,
            supportsVariablePaging=True,
        )
        self.ok("attach")

    def break_in_cell(self, code: str, line: int) -> str:
        path = self.ok("dumpCell", code=code)["sourcePath"]
        marks = self.ok("setBreakpoints", source={"path": path}, breakpoints=[{"line": line}])["breakpoints"]
        assert marks[0]["verified"], marks
        self.ok("configurationDone")
        return str(path)
