"""Where each request goes (zembed._routing), in memory: the real router and
host queue on a poll loop, the real handlers, no sockets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from memory import MemoryKernel


@pytest.fixture
def kernel() -> Iterator[MemoryKernel]:
    memory = MemoryKernel()
    yield memory
    memory.close()


def test_control_and_kernel_info_are_answered_without_the_host(kernel):
    for channel, msg_type in [("shell", "kernel_info_request"), ("control", "kernel_info_request")]:
        message = kernel.message(msg_type)
        kernel.send(channel, message)  # nobody polls
        assert kernel.exchange(message.msg_id).content["status"] == "ok"
    assert not kernel.router.queue and kernel.router.messages == 2


def test_host_requests_wait_for_the_host(kernel):
    message = kernel.message("execute_request", {"code": "ran = True"})
    kernel.send("shell", message)
    assert kernel.exchange(message.msg_id).reply is None and "ran" not in kernel.namespace
    assert kernel.router.queue.waiting_since is not None
    assert kernel.poll()
    assert kernel.exchange(message.msg_id).content["status"] == "ok" and kernel.namespace["ran"] is True
    assert kernel.router.queue.waiting_since is None and not kernel.poll()  # nothing left to do


def test_an_interrupt_before_the_cell_starts_reaches_it(kernel):
    """Ctrl-C right after Enter: the cell is queued, not running yet."""
    cell = kernel.message("execute_request", {"code": "ran = True"})
    kernel.send("shell", cell)
    assert kernel.ask("interrupt_request", channel="control").content["status"] == "ok"
    kernel.poll()
    reply = kernel.exchange(cell.msg_id).content
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt" and "ran" not in kernel.namespace


def test_after_detach_the_host_takes_nothing_and_control_still_answers(kernel):
    kernel.ask("shutdown_request", {"restart": False}, channel="control")
    late = kernel.message("execute_request", {"code": "ran = True"})
    kernel.send("shell", late)
    assert not kernel.router.queue and not kernel.poll() and "ran" not in kernel.namespace
    assert kernel.ask("kernel_info_request", channel="control").content["status"] == "ok"


def test_input_replies_go_to_stdin_and_nowhere_else(kernel):
    before = len(kernel.transport.sent)
    reply = kernel.message("input_reply", {"value": "typed"})
    kernel.send("stdin", reply)
    assert not kernel.router.queue and len(kernel.transport.sent) == before  # not answered, not queued
    assert kernel.cells.stdin._replies[-1] is reply
    kernel.send("stdin", kernel.message("execute_request", {"code": "ran = True"}))  # only replies come on stdin
    assert not kernel.router.queue and len(kernel.transport.sent) == before


def test_subscriptions_are_counted_and_welcomed(kernel):
    router = kernel.router
    router.on_subscribe("", True)
    router.on_subscribe("", True)
    router.on_subscribe("", False)
    assert router.subscribers == 1
    router.on_subscribe("", False)
    router.on_subscribe("", False)  # more unsubscriptions than subscriptions (a peer's choice)
    assert router.subscribers == 0
    welcomes = [channel for channel, frames in kernel.transport.sent if b"iopub_welcome" in b"".join(frames)]
    assert welcomes == ["iopub", "iopub"]


def test_malformed_requests_are_refused_and_the_rest_ignored(kernel):
    request = kernel.message("complete_request")
    kernel.router.on_malformed("shell", request, ValueError("content nests too deeply"))
    assert kernel.exchange(request.msg_id).content["evalue"] == "content nests too deeply"
    before = len(kernel.transport.sent)
    kernel.router.on_malformed("stdin", kernel.message("input_reply"), ValueError("x"))  # nobody to answer
    kernel.router.on_malformed("shell", kernel.message("comm_msg"), ValueError("x"))  # not a request
    assert len(kernel.transport.sent) == before and not kernel.router.queue


def test_ticks_while_the_host_has_work_and_when_a_stall_is_due(kernel, monkeypatch):
    monkeypatch.setattr("zembed._routing.POLL_STALL_AFTER", 60.0)
    router = kernel.router
    kernel.poll()
    idle = router.tick_interval()
    assert idle is not None and 59 < idle <= 60  # a poll host: look again when a stall would be due
    kernel.send("shell", kernel.message("execute_request", {"code": "1"}))
    assert router.tick_interval() == kernel.config.stream_flush_interval  # output must stream
    kernel.poll()
    assert router.tick_interval() > kernel.config.stream_flush_interval


def test_a_stall_is_told_once_and_its_end_too(kernel, monkeypatch, caplog):
    monkeypatch.setattr("zembed._routing.POLL_STALL_AFTER", 5.0)
    kernel.adapter.last_poll = time.monotonic() - 6
    with caplog.at_level(logging.INFO, logger="zembed"):
        kernel.router.on_tick()
        kernel.router.on_tick()
        assert caplog.text.count("has not been polled for 6 s") == 1
        kernel.poll()
        kernel.router.on_tick()
        assert "is polled again" in caplog.text
        kernel.adapter.last_poll = time.monotonic() - 6
        kernel.router.on_tick()
        assert caplog.text.count("has not been polled") == 2  # a new stall is a new warning


def test_a_long_cell_streams_on_ticks(kernel):
    """The socket thread's tick drains a running cell's captured output."""
    seen: list[str] = []
    kernel.namespace["tick"] = lambda: (kernel.router.on_tick(), seen.extend(_streams(kernel)))
    exchange = kernel.ask("execute_request", {"code": "print('early'); tick(); print('late')"})
    assert seen == ["early\n"]  # published while the cell still ran
    assert "".join(content["text"] for content in exchange.of_type("stream")) == "early\nlate\n"


def _streams(kernel: MemoryKernel) -> list[str]:
    reader = kernel.session.__class__(kernel.session.key)
    out = []
    for channel, frames in kernel.transport.sent:
        if channel == "iopub":
            message = reader.parse(frames)
            if message.msg_type == "stream":
                out.append(message.content["text"])
    return out
