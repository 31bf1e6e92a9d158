"""complete, inspect, is_complete, history, comms: answered from live objects."""

from __future__ import annotations

import pytest


@pytest.fixture
def client(host_and_client):
    _, client = host_and_client
    client.run(
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
    return client


def complete(client, code, cursor_pos=None):
    return client.kc.complete(code, cursor_pos if cursor_pos is not None else len(code), reply=True, timeout=5)[
        "content"
    ]


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
    reply = client.kc.inspect("scene.add_shape(", len("scene.add_shape("), reply=True, timeout=5)["content"]
    assert reply["found"] is True
    text = reply["data"]["text/plain"]
    assert "Signature: scene.add_shape(name: str, size: float = 1.0) -> None" in text
    assert "Add a shape to the scene." in text
    assert "<In [1]>" in text  # where it was defined: the cell


def test_inspect_detail_shows_source(client):
    reply = client.kc.inspect("Scene", 3, detail_level=1, reply=True, timeout=5)["content"]
    assert "def add_shape(self, name: str, size: float = 1.0) -> None:" in reply["data"]["text/plain"]


def test_inspect_unknown_name(client):
    reply = client.kc.inspect("no_such_thing", 5, reply=True, timeout=5)["content"]
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
    reply = client.shell_reply(client.kc.is_complete(code))["content"]
    assert reply["status"] == status
    if indent is not None:
        assert reply["indent"] == indent


def test_history_tail_range_search(client):
    for i in range(5):
        client.run(f"value_{i} = {i}")
    client.run("value_1 = 1")
    tail = client.kc.history(hist_access_type="tail", n=2, reply=True, timeout=5)["content"]["history"]
    assert [entry[2] for entry in tail] == ["value_4 = 4", "value_1 = 1"]
    session = tail[0][0]
    ranged = client.kc.history(hist_access_type="range", session=0, start=2, stop=4, reply=True, timeout=5)
    assert [e[1:] for e in ranged["content"]["history"]] == [[2, "value_0 = 0"], [3, "value_1 = 1"]]
    assert all(e[0] == session for e in ranged["content"]["history"])
    found = client.kc.history(hist_access_type="search", pattern="value_1*", unique=True, reply=True, timeout=5)
    assert [e[1:] for e in found["content"]["history"]] == [[7, "value_1 = 1"]]
    with_output = client.kc.history(hist_access_type="tail", n=1, output=True, reply=True, timeout=5)
    client.run("21 * 2")
    with_output = client.kc.history(hist_access_type="tail", n=1, output=True, reply=True, timeout=5)
    assert with_output["content"]["history"][0][2] == ["21 * 2", "42"]


def test_comm_info_and_unknown_comm_open(client):
    kc = client.kc
    info = kc.comm_info(reply=True, timeout=5)["content"]
    assert info == {"status": "ok", "comms": {}}
    msg = kc.session.msg("comm_open", {"comm_id": "c1", "target_name": "nobody", "data": {}})
    kc.shell_channel.send(msg)
    outputs = client.collect(msg["header"]["msg_id"])
    assert ("comm_close", {"comm_id": "c1", "data": {}}) in outputs


def test_bad_request_content_gets_an_error_reply(client):
    kc = client.kc
    msg = kc.session.msg("complete_request", {"code": 42, "cursor_pos": "x"})
    kc.shell_channel.send(msg)
    reply = client.shell_reply(msg["header"]["msg_id"])
    assert reply["content"]["status"] == "error"
    assert "code" in reply["content"]["evalue"]
    assert client.value("1 + 1") == 2


def test_unknown_request_type_gets_an_error_reply(client):
    kc = client.kc
    msg = kc.session.msg("teleport_request", {})
    kc.shell_channel.send(msg)
    reply = client.shell_reply(msg["header"]["msg_id"])
    assert reply["msg_type"] == "teleport_reply"
    assert reply["content"]["status"] == "error"
