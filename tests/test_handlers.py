"""Every request type, handled in memory (tests/memory.py): the real
handlers, outbox, cells, history and magics, no sockets, no subprocess.
The subprocess suites keep what needs a real host (threads, loops, signals)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from memory import Exchange, MemoryKernel

from zembed._protocol import PROTOCOL_VERSION


@pytest.fixture
def kernel() -> Iterator[MemoryKernel]:
    memory = MemoryKernel({"__name__": "__main__", "scene": {"cubes": 3}})
    yield memory
    memory.close()


def framed(exchange: Exchange) -> list[str]:
    """The iopub types between (and including) busy and idle."""
    kinds = exchange.types()
    assert kinds[0] == "status" and exchange.published[0].content["execution_state"] == "busy"
    assert kinds[-1] == "status" and exchange.published[-1].content["execution_state"] == "idle"
    return kinds[1:-1]


def test_kernel_info(kernel):
    exchange = kernel.ask("kernel_info_request")
    assert framed(exchange) == []
    info = exchange.content
    assert info["status"] == "ok" and info["protocol_version"] == PROTOCOL_VERSION
    assert info["language_info"]["name"] == "python" and info["zembed"]["app"] == "memory"
    assert info["zembed"]["running_cell"] is None and info["zembed"]["loop"] == "memory"
    assert exchange.reply.msg_type == "kernel_info_reply" and exchange.reply.idents == [b"client-identity"]


def test_execute_result_stream_and_count(kernel):
    exchange = kernel.ask("execute_request", {"code": "print('hi')\nscene['cubes'] * 2"})
    assert framed(exchange) == ["execute_input", "stream", "execute_result"]
    assert exchange.of_type("stream")[0]["text"] == "hi\n"
    assert exchange.of_type("execute_result")[0]["data"]["text/plain"] == "6"
    assert exchange.content == {"status": "ok", "execution_count": 1, "user_expressions": {}, "payload": []}
    assert kernel.execution_count == 1
    assert kernel.history.query({"hist_access_type": "tail", "n": 1})[0][2] == "print('hi')\nscene['cubes'] * 2"


def test_execute_silent_and_user_expressions(kernel):
    exchange = kernel.ask(
        "execute_request", {"code": "x = 5", "silent": True, "user_expressions": {"double": "x * 2", "bad": "1/0"}}
    )
    assert framed(exchange) == []  # silent: no execute_input, no result, not counted
    expressions = exchange.content["user_expressions"]
    assert expressions["double"]["data"]["text/plain"] == "10"
    assert expressions["bad"]["status"] == "error" and expressions["bad"]["ename"] == "ZeroDivisionError"
    assert kernel.execution_count == 0


def test_execute_error_aborts_what_was_queued(kernel):
    failing = kernel.message("execute_request", {"code": "1/0"})
    queued = kernel.message("execute_request", {"code": "never = True"})
    kernel.send("shell", failing)
    kernel.send("shell", queued)  # both wait for the host's thread
    assert kernel.poll()
    exchange = kernel.exchange(failing.msg_id)
    assert framed(exchange) == ["execute_input", "error"]
    assert exchange.content["status"] == "error" and exchange.content["ename"] == "ZeroDivisionError"
    assert any("<In [1]>" in line for line in exchange.content["traceback"])
    aborted = kernel.exchange(queued.msg_id)
    assert aborted.content["status"] == "aborted" and framed(aborted) == []
    assert "never" not in kernel.namespace and not kernel.router.queue


def test_execute_exit_asks_the_client_to_leave(kernel):
    exchange = kernel.ask("execute_request", {"code": "exit"})
    assert exchange.content["payload"] == [{"source": "ask_exit", "keepkernel": True}]


def test_execute_display_and_magics(kernel):
    code = "import zembed\nzembed.display({'text/plain': 'shown'}, raw=True)\n%time 1 + 1"
    exchange = kernel.ask("execute_request", {"code": code})
    assert "display_data" in framed(exchange)
    assert exchange.of_type("display_data")[0]["data"] == {"text/plain": "shown"}
    assert "wall time" in "".join(c["text"] for c in exchange.of_type("stream"))


def test_input_is_refused_when_the_client_does_not_allow_it(kernel):
    exchange = kernel.ask("execute_request", {"code": "input('name? ')", "allow_stdin": False})
    assert exchange.content["ename"] == "StdinNotAvailable"


def test_execute_with_wrong_field_types_is_an_error_reply(kernel):
    exchange = kernel.ask("execute_request", {"code": 42})
    assert exchange.content["status"] == "error" and "'code' must be str" in exchange.content["evalue"]
    assert framed(exchange) == []


def test_complete(kernel):
    content = kernel.ask("complete_request", {"code": "scene.ke", "cursor_pos": 8}).content
    assert "scene.keys" in content["matches"] or "keys" in content["matches"]
    assert content["cursor_end"] == 8


def test_inspect(kernel):
    content = kernel.ask("inspect_request", {"code": "scene", "cursor_pos": 5, "detail_level": 0}).content
    assert content["status"] == "ok" and content["found"] is True
    assert "dict" in content["data"]["text/plain"]


@pytest.mark.parametrize(
    ("code", "status"), [("x = 1", "complete"), ("for i in range(3):", "incomplete"), ("1 +* 2", "invalid")]
)
def test_is_complete(kernel, code, status):
    assert kernel.ask("is_complete_request", {"code": code}).content["status"] == status


def test_history_tail_range_and_search(kernel):
    for code in ("a = 1", "b = 2", "a + b"):
        kernel.ask("execute_request", {"code": code})
    tail = kernel.ask("history_request", {"hist_access_type": "tail", "n": 2}).content["history"]
    assert [entry[2] for entry in tail] == ["b = 2", "a + b"]
    ranged = kernel.ask("history_request", {"hist_access_type": "range", "session": 0, "start": 1, "stop": 3})
    assert [entry[1] for entry in ranged.content["history"]] == [1, 2]
    found = kernel.ask("history_request", {"hist_access_type": "search", "pattern": "a*", "output": True})
    assert [entry[2][0] for entry in found.content["history"]] == ["a = 1", "a + b"]
    assert found.content["history"][-1][2][1] == "3"
    bad = kernel.ask("history_request", {"hist_access_type": "sideways"})
    assert bad.content["status"] == "error"


def test_comms_to_unknown_targets_are_closed(kernel):
    assert kernel.ask("comm_info_request").content == {"status": "ok", "comms": {}}
    opened = kernel.ask("comm_open", {"comm_id": "c1", "target_name": "nobody", "data": {}})
    assert opened.reply is None and opened.of_type("comm_close") == [{"comm_id": "c1", "data": {}}]
    for msg_type in ("comm_msg", "comm_close"):
        exchange = kernel.ask(msg_type, {"comm_id": "c1", "data": {}})
        assert exchange.reply is None and framed(exchange) == []


def test_interrupt_with_no_cell_running(kernel):
    exchange = kernel.ask("interrupt_request", channel="control")
    assert exchange.content == {"status": "ok"} and exchange.reply.msg_type == "interrupt_reply"


def test_shutdown_replies_then_detaches(kernel):
    exchange = kernel.ask("shutdown_request", {"restart": True}, channel="control")
    assert exchange.content == {"status": "ok", "restart": True}
    assert kernel.detach_calls == [True]


def test_unknown_requests_get_an_error_and_other_types_nothing(kernel):
    unknown = kernel.ask("teleport_request")
    assert unknown.content["status"] == "error" and "unknown message type" in unknown.content["evalue"]
    assert unknown.reply.msg_type == "teleport_reply"
    assert kernel.ask("teleport_event").reply is None


def test_a_request_with_an_unreadable_part_is_refused(kernel):
    from zembed import _handlers

    message = kernel.message("execute_request", {})
    _handlers.refuse(kernel, "shell", message, ValueError("content nests too deeply"))
    exchange = kernel.exchange(message.msg_id)
    assert exchange.content["status"] == "error" and exchange.content["evalue"] == "content nests too deeply"
    assert framed(exchange) == [] and kernel.execution_count == 0


def test_a_reply_waits_for_its_history_change(kernel):
    """The recording transport waits as the socket thread does, and counts."""
    kernel.ask("execute_request", {"code": "1"})
    assert kernel.transport.committed_before_send == 1 and kernel.history.committed >= 2  # input and output
