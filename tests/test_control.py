"""Control channel, interrupts, heartbeat and shutdown, while the host's
thread is busy: the kernel answers without the host's help."""

from __future__ import annotations

import time

import pytest
import zmq
from conftest import assert_frames_advance, wait_until


def start_cell(client, code):
    return client.kc.execute(code)


def wait_for_busy_cell(client, seconds=10):
    """Until kernel_info says a cell is executing."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = control_kernel_info(client)
        if info["zembed"]["executing"]:
            return info
    raise AssertionError("cell never started")


def control_kernel_info(client):
    return client.control("kernel_info_request")


def test_kernel_info_fields(host_and_client):
    _, client = host_and_client
    info = client.kc.kernel_info(reply=True, timeout=5)["content"]
    assert info["protocol_version"] == "5.5"
    assert info["implementation"] == "zembed"
    assert info["language_info"]["name"] == "python"
    assert info["status"] == "ok"
    assert "testhost" in info["banner"]
    assert isinstance(info["help_links"], list) and isinstance(info["supported_features"], list)


def test_control_answers_within_100ms_while_cell_runs(host_and_client):
    _, client = host_and_client
    msg_id = start_cell(client, "while True: pass")
    wait_for_busy_cell(client)
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        info = control_kernel_info(client)
        timings.append(time.perf_counter() - t0)
        assert info["zembed"]["executing"] is True
    assert sorted(timings)[2] < 0.1, timings  # median: the GIL switch interval bounds it
    client.interrupt()
    assert client.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"


def test_host_busy_is_reported(host_and_client):
    _, client = host_and_client
    msg_id = start_cell(client, "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.2: pass")
    wait_for_busy_cell(client)
    time.sleep(0.6)  # let the host be busy for a measurable while
    busy = control_kernel_info(client)["zembed"]["host_busy_seconds"]
    assert busy >= 0.5
    client.shell_reply(msg_id)
    assert control_kernel_info(client)["zembed"]["host_busy_seconds"] < 0.5


@pytest.mark.parametrize(
    "code",
    [
        "while True: pass",
        "import time\ntime.sleep(60)",
        "from time import sleep\nsleep(60)",
        "input('never answered: ')",
    ],
)
def test_interrupt_within_one_second(host_and_client, code):
    host, client = host_and_client
    msg_id = client.kc.execute(code, allow_stdin=False) if "input" not in code else client.kc.execute(code)
    wait_for_busy_cell(client)
    t0 = time.monotonic()
    client.interrupt()  # jupyter_client sends interrupt_request: kernelspec-free, message mode
    reply = client.shell_reply(msg_id, timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # The cell is interrupted, nothing else: the host goes on framing, unharmed.
    assert client.value("host.interrupts_in_host_code") == 0
    assert_frames_advance(client)
    assert host.alive()


def test_cell_can_catch_the_interrupt_and_carry_on(host_and_client):
    _, client = host_and_client
    msg_id = client.kc.execute(
        "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    caught = True\ntime.sleep(0.05)\n'done'"
    )
    wait_for_busy_cell(client)
    client.interrupt()
    assert client.shell_reply(msg_id)["content"]["status"] == "ok"
    assert client.value("caught") is True


def test_interrupts_between_cells_never_reach_host_code(host_and_client):
    host, client = host_and_client
    for _ in range(30):
        client.interrupt()
        client.run("x = 1")
    first = client.value("host.frames")
    for _ in range(30):  # host frames run while interrupts arrive with no cell running
        client.interrupt()
    wait_until(lambda: client.value("host.frames") > first + 5, what="host frames after the interrupts")
    assert client.value("host.interrupts_in_host_code") == 0
    assert host.alive()


def test_no_signal_handler_is_changed(host_and_client):
    _, client = host_and_client
    msg_id = client.kc.execute("import time; time.sleep(30)")
    wait_for_busy_cell(client)
    client.interrupt()
    client.shell_reply(msg_id)
    assert client.value("host.signals_unchanged()") is True


def test_time_sleep_is_patched_only_during_cells(host_and_client):
    _, client = host_and_client
    # Inside a cell, time.sleep is the interruptible stand-in ...
    assert client.value("type(__import__('time').sleep).__name__") == "function"
    # ... and the host's own code between cells sees the original builtin.
    assert client.value("host.sleep_was_builtin_between_cells") is True


def test_heartbeat_answers_while_python_is_busy(host_and_client):
    host, client = host_and_client
    import json

    info = json.load(open(host.connection_file))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        msg_id = client.kc.execute("while True: pass")
        wait_for_busy_cell(client)
        for _ in range(10):
            t0 = time.perf_counter()
            sock.send(b"ping")
            assert sock.poll(1000), "no heartbeat while the host is busy"
            assert sock.recv() == b"ping"
            assert time.perf_counter() - t0 < 0.1
        client.interrupt()
        client.shell_reply(msg_id)
    finally:
        sock.close()
        ctx.term()


def test_shutdown_request_detaches_and_host_keeps_running(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    client.run("frames_before = host.frames")
    client.kc.shutdown()
    content = client.kc.get_control_msg(timeout=5)["content"]
    assert content == {"status": "ok", "restart": False}
    deadline = time.monotonic() + 5
    import os

    while os.path.exists(host.connection_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(host.connection_file), "connection file not removed on detach"
    assert host.frames_on() and host.frames_on(), "the host must keep running after a remote shutdown"
    assert host.alive()


def test_exit_on_shutdown_policy_is_the_hosts_choice(start_host, connect):
    host = start_host("asyncio", "--exit-on-shutdown")
    client = connect(host.connection_file)
    client.kc.shutdown()
    assert host.process.wait(10) == 0


def test_interrupt_that_overtakes_its_cell_stops_it_as_it_starts(start_host, connect):
    """Regression: a Ctrl-C right after Enter reached the kernel (control,
    answered at once) before the cell had started on the busy host thread;
    it found nothing to interrupt and the cell then ran to its end."""
    host = start_host("asyncio")
    client = connect(host.connection_file)
    client.run("import asyncio, threading; asyncio.get_running_loop().call_soon(threading.Event().wait, 1.0)")
    started = time.monotonic()
    msg_id = client.kc.execute("import time; time.sleep(30); 'ran to the end'")
    while client.control("kernel_info_request")["zembed"]["host_busy_seconds"] == 0:
        assert time.monotonic() - started < 5  # until the cell waits in the kernel's queue (shell and control race)
    client.interrupt()  # the host is still blocked: the cell is queued, not running
    reply = client.shell_reply(msg_id, timeout=10)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 5
    assert client.value("1 + 1") == 2  # the next cell runs normally
