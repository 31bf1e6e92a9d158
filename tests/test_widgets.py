"""ipywidgets on a running host, with jupyter_client as the frontend (the
widget protocol as JupyterLab's widget manager speaks it), two clients kept
in sync; the browser test is in tests/test_jupyterlab.py."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import wait_until

pytestmark = pytest.mark.timeout(90)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class WidgetClient:
    """One frontend's view of the widgets: comm messages from iopub, updates sent on shell."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.kc = client.kc
        self.seen: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while self.kc.iopub_channel.msg_ready():
            self.seen.append(self.kc.get_iopub_msg(timeout=1))
        return self.seen

    def comm_msgs(self, comm_id: str, method: str) -> list[dict[str, Any]]:
        return [
            m["content"]["data"]
            for m in self.drain()
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm_id
            and m["content"]["data"].get("method") == method
        ]

    def send(self, msg_type: str, content: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
        msg = self.kc.session.msg(msg_type, content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def update(self, comm_id: str, **state: Any) -> str:
        return self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": state,
                                                                   "buffer_paths": []}})  # fmt: skip


def show_slider(client: Any) -> str:
    """A cell makes an IntSlider on a host value and shows it; its model id."""
    client.run(
        "from ipywidgets import IntSlider\n"
        "speed = IntSlider(value=3, min=0, max=100, description='speed')\n"
        "host.speed_seen = []\n"
        "import threading\n"
        "speed.observe(lambda change: host.speed_seen.append((change['new'], threading.get_ident() == host.thread_id)),"
        " 'value')"
    )
    out = client.run("speed")
    results = [c for kind, c in out.outputs if kind == "execute_result"]
    assert results and WIDGET_VIEW in results[0]["data"], out.outputs
    return str(results[0]["data"][WIDGET_VIEW]["model_id"])


def test_a_slider_shown_synced_both_ways_and_to_every_client(start_host, connect):
    host = start_host("asyncio")
    first, second = connect(host.connection_file), connect(host.connection_file)
    one, two = WidgetClient(first), WidgetClient(second)
    model_id = show_slider(first)
    opened = [m for m in two.drain() if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == model_id]
    assert opened and opened[0]["content"]["target_name"] == "jupyter.widget"
    assert opened[0]["content"]["data"]["state"]["value"] == 3  # the other client sees the widget made

    one.update(model_id, value=42)  # the page moved the slider
    wait_until(lambda: first.value("speed.value") == 42, timeout=5, what="the host's value to follow the page")
    assert first.value("host.speed_seen") == [(42, True)]  # the observer ran on the host's thread
    wait_until(lambda: {"value": 42} in [d["state"] for d in two.comm_msgs(model_id, "echo_update")], timeout=5,
               what="the other client to get the echo")  # fmt: skip

    # The host's own frame loop moves it: every client is told.
    first.run("host.per_frame.append(lambda: (setattr(speed, 'value', 77), host.per_frame.clear()))")
    for view in (one, two):
        wait_until(lambda v=view: {"value": 77} in [d["state"] for d in v.comm_msgs(model_id, "update")], timeout=5,
                   what="the frame loop's change to reach the clients")  # fmt: skip


def test_the_control_comm_gives_a_new_page_every_widget_state(start_host, connect):
    host = start_host("asyncio")
    first = connect(host.connection_file)
    model_id = show_slider(first)
    late = WidgetClient(connect(host.connection_file))  # a page opened later (a second tab, a reload)
    control = {"comm_id": "control-1", "target_name": "jupyter.widget.control", "data": {}}
    late.send("comm_open", control, metadata={"version": "1.0.0"})  # what JupyterLab's widget manager sends
    late.send("comm_msg", {"comm_id": "control-1", "data": {"method": "request_states"}})

    def states() -> dict[str, Any] | None:
        for data in late.comm_msgs("control-1", "update_states"):
            return dict(data["states"])
        return None

    found = wait_until(states, timeout=10, what="update_states on the control comm")
    assert found[model_id]["state"]["value"] == 3 and found[model_id]["model_name"] == "IntSliderModel"


def test_output_widget_captures_a_cells_output(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    client.run("from ipywidgets import Output\nout = Output()")
    out = client.run("with out:\n    print('captured')\nout.msg_id")
    assert out.result == "''"  # reset when the block ends
    captured = [c for kind, c in out.outputs if kind == "comm_msg" and c["data"].get("state", {}).get("msg_id")]
    assert captured, out.outputs  # the frontend is told which request's output to capture
    parent_ids = {c["data"]["state"]["msg_id"] for c in captured}
    assert len(parent_ids) == 1 and parent_ids.pop()  # this cell's own msg_id


def test_bad_widget_traffic_leaves_the_host_serving(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    model_id = show_slider(client)
    view = WidgetClient(client)
    view.update(model_id, value="not a number")  # traitlets refuses it: logged, nothing changes
    view.send("comm_msg", {"comm_id": model_id, "data": {"method": "no-such-method"}})
    view.send("comm_msg", {"comm_id": "nobody", "data": {"method": "update", "state": {}}})
    view.send("comm_msg", {"comm_id": model_id})  # no data at all
    # nothing to wait on: the next cell queues behind them on the host's thread
    assert client.value("speed.value") == 3 and host.alive() and host.frames_on()


def test_widgets_shown_with_display_and_in_containers(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    out = client.run(
        "from ipywidgets import IntSlider, VBox\nfrom zembed import display\n"
        "box = VBox([IntSlider(1), IntSlider(2)])\ndisplay(box)"
    )
    shown = [c for kind, c in out.outputs if kind == "display_data"]
    assert shown and shown[0]["data"][WIDGET_VIEW]["model_id"] == client.value("box.model_id")
    opened = [c for kind, c in out.outputs if kind == "comm_open"]
    names = [c["data"]["state"]["_model_name"] for c in opened]  # layouts and styles are widgets too
    assert names.count("IntSliderModel") == 2 and names.count("VBoxModel") == 1


def test_a_host_comm_target_with_binary_buffers_over_real_sockets(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    client.run(
        "def echo(comm, msg):\n"
        "    comm.on_msg(lambda m: comm.send({'sizes': [len(b) for b in m['buffers']]},"
        " buffers=[bytes(reversed(bytes(b))) for b in m['buffers']]))\n"
        "kernel.register_comm_target('echo', echo)"
    )
    kc = client.kc
    kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": "b1", "target_name": "echo", "data": {}}))
    payload = bytes(range(256)) * 4
    message = kc.session.msg("comm_msg", {"comm_id": "b1", "data": {}})
    kc.session.send(kc.shell_channel.socket, message, buffers=[payload, b"\x00\xff"])

    def echoed() -> Any:
        while kc.iopub_channel.msg_ready():
            msg = kc.get_iopub_msg(timeout=1)
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == "b1":
                return msg
        return None

    msg = wait_until(echoed, timeout=10, what="the host's answer with buffers")
    assert msg["content"]["data"] == {"sizes": [1024, 2]}
    assert [bytes(b) for b in msg["buffers"]] == [payload[::-1], b"\xff\x00"]
