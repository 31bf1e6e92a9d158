"""stdout/stderr: captured only while a cell runs, complete, ordered, and
streamed while the cell is still running; the host's own prints stay home."""

from __future__ import annotations

import time


def test_output_in_order_and_complete(host_and_client):
    _, client = host_and_client
    out = client.run("import sys\nfor i in range(2000):\n    print(i)\nsys.stderr.write('err\\n')\nprint('end')")
    assert out.stream("stdout") == "".join(f"{i}\n" for i in range(2000)) + "end\n"
    assert out.stream("stderr") == "err\n"
    # batched: far fewer messages than lines
    assert len(out.of_type("stream")) < 20
    # stdout before stderr before the final stdout, as written
    names = [c["name"] for c in out.of_type("stream")]
    assert names.index("stderr") > 0 and names[-1] == "stdout"


def test_output_arrives_while_the_cell_runs(host_and_client):
    _, client = host_and_client
    msg_id = client.kc.execute("import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')")
    t0 = time.monotonic()
    while True:
        msg = client.kc.get_iopub_msg(timeout=5)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    assert msg["content"]["text"] == "first\n"
    assert time.monotonic() - t0 < 1.0, "first line only arrived at the end of the cell"
    client.shell_reply(msg_id)


def test_threads_started_by_the_cell_are_captured(host_and_client):
    _, client = host_and_client
    out = client.run(
        "import threading\n"
        "def work():\n    print('from worker')\n"
        "t = threading.Thread(target=work); t.start(); t.join()"
    )
    assert out.stream() == "from worker\n"


def test_host_prints_stay_on_the_host_terminal(start_host, connect):
    host = start_host("asyncio", "--fps", "200")
    client = connect(host.connection_file)
    seen = []
    for _ in range(20):
        seen.extend(client.run("x = 1").outputs)
    time.sleep(0.3)  # between cells the host prints 'host-own-output N' lines itself
    printed = client.value("host.printed")
    assert printed > 0
    # none of the host's own output was broadcast
    while True:
        try:
            msg = client.kc.get_iopub_msg(timeout=0.2)
        except Exception:
            break
        seen.append((msg["msg_type"], msg["content"]))
    assert not any("host-own-output" in str(content) for _, content in seen)
    client.run("host.quit = True")
    assert "host-own-output 1" in host.read_stdout()


def test_streams_restored_exactly(host_and_client):
    _, client = host_and_client
    client.run("print('captured')")
    client.run("import time; time.sleep(0.05)")  # let a host frame look between cells
    # Between cells, the host's stream objects are exactly what they were.
    assert client.value("host.streams_seen_between_cells == 1") is True


def test_windowed_host_with_no_stdout(start_host, connect):
    host = start_host("poll", "--stdout-none", "--fps", "200")
    client = connect(host.connection_file)
    out = client.run("import sys\nprint('captured')\nsys.stderr.write('e')")
    assert out.content["status"] == "ok"
    assert out.stream() == "captured\n" and out.stream("stderr") == "e"
    assert client.value("host.streams_seen_between_cells == 1") is True  # still None after the cell
