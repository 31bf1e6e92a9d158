"""What notebooks send as code (obj?, obj??, !cmd, %%bash, %lsmagic) and
what JupyterLab asks of every kernel (debug_request), in memory
(tests/memory.py); one real-host test per loop keeps the path honest."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from memory import MemoryKernel

from zembed._dap import available as debugger_available
from zembed._syntax import transform


@pytest.fixture
def kernel() -> Iterator[MemoryKernel]:
    memory = MemoryKernel()
    memory.ask("execute_request", {"code": "def add_shape(name: str, size: float = 1.0):\n    '''Add a shape.'''\n"})
    yield memory
    memory.close()


def streamed(exchange) -> str:
    return "".join(content["text"] for content in exchange.of_type("stream"))


def test_question_mark_pages_the_help_and_two_show_the_source(kernel):
    reply = kernel.ask("execute_request", {"code": "add_shape?"}).content
    assert reply["status"] == "ok"
    [page] = reply["payload"]
    assert page["source"] == "page" and page["start"] == 0
    assert "Signature: add_shape(name: str, size: float = 1.0)" in page["data"]["text/plain"]
    assert "def add_shape" not in page["data"]["text/plain"]
    detailed = kernel.ask("execute_request", {"code": "??add_shape"}).content["payload"][0]["data"]["text/plain"]
    assert "def add_shape(name: str, size: float = 1.0):" in detailed


def test_help_for_attributes_magics_and_unknown_names(kernel):
    kernel.ask("execute_request", {"code": "import json"})
    assert (
        "Serialize"
        in kernel.ask("execute_request", {"code": "json.dumps?"}).content["payload"][0]["data"]["text/plain"]
    )
    assert "%time" in kernel.ask("execute_request", {"code": "%time?"}).content["payload"][0]["data"]["text/plain"]
    missing = kernel.ask("execute_request", {"code": "no_such_thing?"})
    assert missing.content["payload"] == [] and streamed(missing) == "Object `no_such_thing` not found.\n"


def test_shell_lines_stream_capture_and_expand(kernel):
    kernel.namespace["greeting"] = "hello"
    exchange = kernel.ask("execute_request", {"code": "!echo $greeting {1 + 2}; echo err >&2"})
    assert streamed(exchange) == "hello 3\nerr\n" and kernel.namespace["_exit_code"] == 0
    kernel.ask("execute_request", {"code": "lines = !printf 'a\\nb\\n'\nn = len(lines)"})
    assert kernel.namespace["lines"] == ["a", "b"] and kernel.namespace["n"] == 2
    kernel.ask("execute_request", {"code": "!exit 3"})
    assert kernel.namespace["_exit_code"] == 3
    kernel.ask("execute_request", {"code": "if True:\n    !echo indented\nx = 1 != 2"})  # != is Python
    assert kernel.namespace["x"] is True


def test_bash_and_sh_cells(kernel):
    exchange = kernel.ask("execute_request", {"code": '%%bash\nfor i in 1 2; do echo "n=$i"; done'})
    assert streamed(exchange) == "n=1\nn=2\n" and exchange.content["status"] == "ok"
    assert streamed(kernel.ask("execute_request", {"code": "%%sh\necho from sh"})) == "from sh\n"


def test_an_interrupt_ends_the_shell_command_and_not_the_host(kernel, tmp_path):
    """The command runs in its own session: killed on interrupt, the host untouched."""
    marker = tmp_path / "pid"
    cell = kernel.message("execute_request", {"code": f"!echo $$$$ > {marker}; sleep 30"})
    kernel.send("shell", cell)

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 10
        while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.01)  # the command writes its pid: the only sign it started
        kernel.router.on_message("control", kernel.message("interrupt_request"))

    thread = threading.Thread(target=interrupt_when_started)
    thread.start()
    began = time.monotonic()
    kernel.poll()
    thread.join()
    reply = kernel.exchange(cell.msg_id).content
    assert reply["ename"] == "KeyboardInterrupt" and time.monotonic() - began < 10
    from zembed._process import pid_gone

    assert pid_gone(int(marker.read_text()))


def test_lsmagic_names_the_syntax_too(kernel):
    text = streamed(kernel.ask("execute_request", {"code": "%lsmagic"}))
    assert "%lsmagic" in text and "%%bash" in text and "!COMMAND" in text and "NAME?" in text


def test_what_is_left_alone():
    for code in ["x = '?'", "a != b", "print('!ls')", "'''\n!ls\nobj?\n'''", "d = {'k?': 1}"]:
        assert transform(code) == code


def test_debug_requests_before_the_debugger_starts_get_dap_answers(kernel):
    exchange = kernel.ask("debug_request", {"type": "request", "seq": 7, "command": "stackTrace"}, channel="control")
    reply = exchange.content
    assert exchange.reply.msg_type == "debug_reply"
    assert reply["type"] == "response" and reply["success"] is False and reply["request_seq"] == 7
    assert reply["command"] == "stackTrace" and "not started" in reply["message"]
    info = kernel.ask("debug_request", {"type": "request", "seq": 8, "command": "debugInfo"}, channel="control")
    assert info.content["success"] is True and info.content["body"]["isStarted"] is False
    assert kernel.ask("kernel_info_request").content["debugger"] is debugger_available()


def test_through_a_host_and_jupyter_client(host_and_client):
    _, client = host_and_client
    kc = client.kc
    reply = kc.execute_interactive("host?", timeout=10)["content"]
    assert reply["status"] == "ok" and "Type:" in reply["payload"][0]["data"]["text/plain"]
    assert client.run("!echo from a shell").stream() == "from a shell\n"
