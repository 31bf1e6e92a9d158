"""The comm protocol (spec: "Custom Messages") in memory (tests/memory.py):
targets a host registers, messages both ways with binary buffers, listing,
closing, and what bad comm traffic gets.  Widgets: tests/test_widgets.py."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from memory import MemoryKernel


@pytest.fixture
def kernel() -> Iterator[MemoryKernel]:
    memory = MemoryKernel()
    yield memory
    memory.close()


class Echo:
    """A host's comm target: answers each message, doubling ``n``."""

    def __init__(self) -> None:
        self.opened: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.closed: list[dict[str, Any]] = []
        self.comms: list[Any] = []

    def __call__(self, comm: Any, msg: dict[str, Any]) -> None:
        self.opened.append(msg)
        self.comms.append(comm)
        comm.on_msg(self.on_msg)
        comm.on_close(self.closed.append)
        comm.send({"hello": msg["content"]["data"].get("who")})

    def on_msg(self, msg: dict[str, Any]) -> None:
        self.received.append(msg)
        self.comms[-1].send({"n": msg["content"]["data"]["n"] * 2}, buffers=[b"\x00\x01" * 3, memoryview(b"xyz")])


def comm_messages(exchange: Any, msg_type: str) -> list[Any]:
    return [m for m in exchange.published if m.msg_type == msg_type]


def test_a_host_target_opens_talks_with_buffers_and_closes(kernel):
    echo = Echo()
    kernel.comms.register_target("echo", echo)
    opened = kernel.ask("comm_open", {"comm_id": "c1", "target_name": "echo", "data": {"who": "lab"}})
    [hello] = comm_messages(opened, "comm_msg")
    assert hello.content == {"comm_id": "c1", "data": {"hello": "lab"}}
    assert hello.parent_header["msg_id"] == opened.published[0].parent_header["msg_id"]  # answers the comm_open
    assert not comm_messages(opened, "comm_close") and echo.opened[0]["content"]["target_name"] == "echo"

    message = kernel.message("comm_msg", {"comm_id": "c1", "data": {"n": 21}})
    message.buffers = [b"in-buffer"]
    answer = kernel.handle("shell", message)
    [reply] = comm_messages(answer, "comm_msg")
    assert reply.content["data"] == {"n": 42} and reply.buffers == [b"\x00\x01" * 3, b"xyz"]
    assert echo.received[0]["buffers"] == [b"in-buffer"]  # binary buffers both ways

    listed = kernel.ask("comm_info_request", {"target_name": "echo"}).content
    assert listed == {"status": "ok", "comms": {"c1": {"target_name": "echo"}}}
    assert kernel.ask("comm_info_request", {"target_name": "other"}).content["comms"] == {}
    assert kernel.ask("comm_info_request").content["comms"] == {"c1": {"target_name": "echo"}}

    kernel.ask("comm_close", {"comm_id": "c1", "data": {"bye": True}})
    assert echo.closed[0]["content"]["data"] == {"bye": True}
    assert kernel.ask("comm_info_request").content["comms"] == {}
    assert echo.comms[0]._closed  # a closed comm sends nothing more
    before = len(kernel.transport.sent)
    echo.comms[0].send({"late": 1})
    assert len(kernel.transport.sent) == before


def test_the_host_opens_a_comm_and_sends_from_any_thread(kernel):
    kernel.ask("execute_request", {"code": "import comm\nc = comm.create_comm(target_name='plot', data={'x': 1})"})
    opened = [m for _, m in kernel.parsed() if m.msg_type == "comm_open"]
    assert opened[0].content["target_name"] == "plot" and opened[0].content["data"] == {"x": 1}
    made = kernel.namespace["c"]
    thread = threading.Thread(target=lambda: made.send({"from": "frame loop"}))
    thread.start()
    thread.join()
    sent = [m for _, m in kernel.parsed() if m.msg_type == "comm_msg"]
    assert sent[-1].content == {"comm_id": made.comm_id, "data": {"from": "frame loop"}}
    assert sent[-1].parent_header == {}  # not an answer to any request


def test_the_comm_package_is_hooked_only_while_a_cell_runs(kernel):
    import comm

    before = comm.create_comm, comm.get_comm_manager
    kernel.ask("execute_request", {"code": "import comm\nseen = comm.get_comm_manager()"})
    assert kernel.namespace["seen"] is kernel.comms
    assert (comm.create_comm, comm.get_comm_manager) == before  # restored exactly


def test_unknown_targets_ids_and_failing_handlers(kernel, caplog):
    closed = kernel.ask("comm_open", {"comm_id": "c9", "target_name": "nobody", "data": {}})
    assert [m.content for m in comm_messages(closed, "comm_close")] == [{"comm_id": "c9", "data": {}}]

    def broken(comm: Any, msg: dict[str, Any]) -> None:
        raise RuntimeError("the target is broken")

    kernel.comms.register_target("broken", broken)
    with caplog.at_level(logging.WARNING, logger="zembed"):
        failed = kernel.ask("comm_open", {"comm_id": "c10", "target_name": "broken", "data": {}})
        assert comm_messages(failed, "comm_close") and "the target is broken" in caplog.text
        kernel.ask("comm_msg", {"comm_id": "never-opened", "data": {}})
        assert "comm_msg for unknown comm never-opened" in caplog.text
        kernel.ask("comm_msg", {"data": {}})  # no comm_id at all
        assert "lacks 'comm_id'" in caplog.text

    def raises_on_msg(comm: Any, msg: dict[str, Any]) -> None:
        comm.on_msg(lambda _msg: 1 / 0)

    kernel.comms.register_target("divides", raises_on_msg)
    kernel.ask("comm_open", {"comm_id": "c11", "target_name": "divides", "data": {}})
    with caplog.at_level(logging.WARNING, logger="zembed"):
        exchange = kernel.ask("comm_msg", {"comm_id": "c11", "data": {}})
    assert exchange.types()[-1] == "status" and "ZeroDivisionError" in caplog.text  # logged; idle still sent
    assert kernel.ask("execute_request", {"code": "1 + 1"}).content["status"] == "ok"  # still serving


def test_without_ipywidgets_a_widget_comm_is_closed(kernel, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    closed = kernel.ask("comm_open", {"comm_id": "w1", "target_name": "jupyter.widget.control", "data": {}})
    assert comm_messages(closed, "comm_close")
