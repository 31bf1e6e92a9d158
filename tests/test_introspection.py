"""complete, inspect, is_complete, history, comms: answered from live objects.

The cases run in memory (tests/memory.py: the real router, handlers and
history, no sockets); one test per loop goes through a real host and
jupyter_client, to keep the path there honest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from memory import MemoryKernel

SCENE = (
    "class Scene:\n"
    "    '''A scene of shapes.'''\n"
    "    def __init__(self):\n"
    "        self.shapes = {'circle': 1, 'square': 2}\n"
    "    def add_shape(self, name: str, size: float = 1.0) -> None:\n"
    "        '''Add a shape to the scene.'''\n"
    "        self.shapes[name] = size\n"
    "scene = Scene()\n"
    "scene_count = 1"
)


class Asker:
    """The few calls these tests make, on a memory kernel."""

    def __init__(self, kernel: MemoryKernel) -> None:
        self.kernel = kernel

    def run(self, code: str) -> None:
        reply = self.kernel.ask("execute_request", {"code": code}).content
        assert reply["status"] == "ok", reply

    def value(self, expression: str) -> Any:
        return eval(expression, self.kernel.namespace)

    def ask(self, msg_type: str, **content: Any) -> dict[str, Any]:
        return self.kernel.ask(msg_type, content).content

    def history(self, **content: Any) -> list[Any]:
        return self.ask("history_request", **{"output": False, "raw": True, **content})["history"]


@pytest.fixture
def client() -> Iterator[Asker]:
    kernel = MemoryKernel()
    asker = Asker(kernel)
    asker.run(SCENE)
    yield asker
    kernel.close()


def complete(client: Asker, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
    return client.ask("complete_request", code=code, cursor_pos=cursor_pos if cursor_pos is not None else len(code))


def inspect(client: Asker, code: str, cursor_pos: int, detail_level: int = 0) -> dict[str, Any]:
    return client.ask("inspect_request", code=code, cursor_pos=cursor_pos, detail_level=detail_level)


def test_through_a_host_and_jupyter_client(host_and_client):
    _, real = host_and_client
    real.run(SCENE)
    kc = real.kc
    completed = kc.complete("scene.add", len("scene.add"), reply=True, timeout=5)["content"]
    assert completed["matches"] == ["add_shape"] and completed["cursor_start"] == len("scene.")
    inspected = kc.inspect("scene.add_shape(", len("scene.add_shape("), reply=True, timeout=5)["content"]
    assert "Add a shape to the scene." in inspected["data"]["text/plain"]
    assert real.shell_reply(kc.is_complete("for i in range(3):"))["content"]["status"] == "incomplete"
    tail = kc.history(hist_access_type="tail", n=1, reply=True, timeout=5)["content"]["history"]
    assert tail[0][2] == SCENE
    assert kc.comm_info(reply=True, timeout=5)["content"] == {"status": "ok", "comms": {}}


def test_complete_names_of_the_namespace(client):
    reply = complete(client, "scen")
    assert reply["status"] == "ok"
    assert {"scene", "scene_count"} <= set(reply["matches"])
    assert reply["cursor_start"] == 0 and reply["cursor_end"] == 4


def test_complete_attributes_of_live_objects(client):
    reply = complete(client, "scene.add")
    assert reply["matches"] == ["add_shape"]
    assert reply["cursor_start"] == len("scene.")
    types = reply["metadata"]["_jupyter_types_experimental"]
    assert types[0]["type"] == "function"


def test_complete_attributes_added_at_run_time(client):
    client.run("scene.late_attribute = 3")
    assert "late_attribute" in complete(client, "scene.la")["matches"]


def test_complete_dict_keys(client):
    reply = complete(client, "scene.shapes['ci")
    assert reply["matches"] == ["circle']"]
    assert reply["cursor_start"] == len("scene.shapes['")


def test_complete_in_the_middle_of_a_line_uses_code_points(client):
    code = "ñ = 'é'; scene.ad + 1"
    pos = code.index(".ad") + 3
    reply = complete(client, code, pos)
    assert reply["matches"] == ["add_shape"]
    assert reply["cursor_start"] == code.index(".ad") + 1 and reply["cursor_end"] == pos


def test_complete_does_not_call_functions(client):
    client.run("calls = []\ndef f():\n    calls.append(1)\n    return scene")
    complete(client, "f().sha")
    assert client.value("calls") == []


def test_complete_modules_after_import(client):
    assert "json" in complete(client, "import js")["matches"]


def test_inspect_signature_and_docstring(client):
    reply = inspect(client, "scene.add_shape(", len("scene.add_shape("))
    assert reply["found"] is True
    text = reply["data"]["text/plain"]
    assert "Signature: scene.add_shape(name: str, size: float = 1.0) -> None" in text
    assert "Add a shape to the scene." in text
    assert "<In [1]>" in text  # where it was defined: the cell


def test_inspect_detail_shows_source(client):
    reply = inspect(client, "Scene", 3, detail_level=1)
    assert "def add_shape(self, name: str, size: float = 1.0) -> None:" in reply["data"]["text/plain"]


def test_inspect_unknown_name(client):
    reply = inspect(client, "no_such_thing", 5)
    assert reply == {"status": "ok", "found": False, "data": {}, "metadata": {}}


@pytest.mark.parametrize(
    "code,status,indent",
    [
        ("x = 1", "complete", None),
        ("for i in range(3):", "incomplete", "    "),
        ("for i in range(3):\n    print(i)", "incomplete", "    "),
        ("for i in range(3):\n    print(i)\n", "complete", None),
        ("x = (1,", "incomplete", ""),
        ("x = )", "invalid", None),
    ],
)
def test_is_complete(client, code, status, indent):
    reply = client.ask("is_complete_request", code=code)
    assert reply["status"] == status
    if indent is not None:
        assert reply["indent"] == indent


def test_history_tail_range_search(client):
    for i in range(5):
        client.run(f"value_{i} = {i}")
    client.run("value_1 = 1")
    tail = client.history(hist_access_type="tail", n=2)
    assert [entry[2] for entry in tail] == ["value_4 = 4", "value_1 = 1"]
    session = tail[0][0]
    ranged = client.history(hist_access_type="range", session=0, start=2, stop=4)
    assert [e[1:] for e in ranged] == [[2, "value_0 = 0"], [3, "value_1 = 1"]]
    assert all(e[0] == session for e in ranged)
    found = client.history(hist_access_type="search", pattern="value_1*", unique=True)
    assert [e[1:] for e in found] == [[7, "value_1 = 1"]]
    client.run("21 * 2")
    with_output = client.history(hist_access_type="tail", n=1, output=True)
    assert with_output[0][2] == ["21 * 2", "42"]


def test_bad_request_content_gets_an_error_reply(client):
    reply = client.ask("complete_request", code=42, cursor_pos="x")
    assert reply["status"] == "error" and "code" in reply["evalue"]
    assert client.value("scene_count") == 1
