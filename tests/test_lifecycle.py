"""Starting and stopping in one process: no leaks, no singletons, clear misuse
errors; the loop contract proved with the simplest fake host loop."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time

import psutil
import pytest

import zembed


def test_public_surface_is_pinned():
    assert sorted(zembed.__all__) == sorted(
        [
            "AsyncClient",
            "BadSignature",
            "Client",
            "HostDied",
            "RemoteError",
            "Result",
            "connect",
            "connect_async",
            "ConnectionFileError",
            "DisplayHandle",
            "Kernel",
            "KernelConfig",
            "KernelStopped",
            "MalformedMessage",
            "ProtocolError",
            "ReplayedMessage",
            "StdinNotAvailable",
            "UsageError",
            "ZembedError",
            "__version__",
            "clear_output",
            "display",
            "serve",
            "start_kernel",
        ]
    )
    for name in zembed.__all__:  # the client names load lazily: each must resolve
        assert getattr(zembed, name) is not None


def test_kernel_and_loops_surface_is_pinned():
    """What a host may use of a Kernel, and of zembed.loops; a change here is a decision."""
    import zembed.loops

    members = sorted(n for n in dir(zembed.Kernel) if not n.startswith("_"))
    assert members == [
        "call_on_host", "cluster", "current_parent", "detach", "detached", "executing", "host_busy_seconds",
        "interrupt", "join_cluster", "leave_cluster", "loop", "magics", "messages_handled", "on_stop", "poll",
        "register_comm_target", "register_magic", "running", "running_cell", "status", "stop", "subscribers",
        "take_queued", "wait",
    ]  # fmt: skip
    kernel = zembed.start_kernel({}, name="pinned", loop="poll")
    try:
        attributes = sorted(n for n in vars(kernel) if not n.startswith("_"))
    finally:
        kernel.stop()
    assert attributes == [
        "app_dir", "cells", "comms", "config", "connection_file", "connection_info", "crashes", "debugger",
        "execution_count", "failure", "history", "name", "namespace", "outbox", "session", "started",
    ]  # fmt: skip
    assert sorted(zembed.loops.__all__) == ["CallableLoop", "LoopAdapter", "PollLoop", "resolve_loop"]


def test_frontends_use_the_named_seam_only():
    """zconsole imported seven private modules and the CLI module."""
    import re
    from pathlib import Path

    import zembed.frontend

    frontends = Path(__file__).parent.parent / "frontends"
    used = set()
    for source in frontends.rglob("*.py"):
        used |= set(re.findall(r"^\s*(?:from|import) (zembed[\w.]*)", source.read_text(), re.MULTILINE))
    assert used == {"zembed.frontend"}
    assert sorted(zembed.frontend.__all__) == sorted(
        [
            "ConnectionFileError", "KernelRecord", "Message", "ProtocolError", "Session", "__version__",
            "closed_pipe_is_quiet", "connect_socket", "describe_crash", "list_command", "open_client_sockets",
            "open_private", "pid_gone", "private_dir", "read_connection_file", "report_for", "resolve", "runtime_dir",
        ]
    )  # fmt: skip
    for name in zembed.frontend.__all__:
        assert getattr(zembed.frontend, name) is not None


CYCLES = """
import json, threading, psutil, zembed
def counts():
    p = psutil.Process()
    return [p.num_fds(), p.num_threads(), threading.active_count()]
zembed.start_kernel({}, loop="poll").stop()  # warm up lazy imports
before = counts()
for _ in range(50):
    zembed.start_kernel({}, loop="poll").stop()
print(json.dumps({"before": before, "after": counts()}))
"""


def test_fifty_start_stop_cycles_leak_nothing():
    # In a fresh process: other tests' clients and threads wind down
    # asynchronously and would move this process's counts.
    done = subprocess.run([sys.executable, "-c", CYCLES], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(done.stdout)
    assert result["after"] == result["before"], "fds, OS threads, Python threads: " + str(result)


def test_threads_added_while_running():
    before = psutil.Process().num_threads()
    with zembed.start_kernel({}, loop="poll"):
        added = psutil.Process().num_threads() - before
    assert added <= 5  # socket thread, heartbeat, history writer, libzmq's I/O thread and reaper


def test_context_manager_and_idempotent_stop():
    with zembed.start_kernel({}, loop="poll") as kernel:
        assert kernel.running and kernel.connection_file.exists()
    assert not kernel.running and not kernel.connection_file.exists()
    kernel.stop()  # again: harmless
    assert "stopped" in repr(kernel)


def test_two_kernels_in_one_process(connect):
    ns_a, ns_b = {"who": "a"}, {"who": "b"}
    with zembed.start_kernel(ns_a, name="a", loop="poll") as a, zembed.start_kernel(ns_b, name="b", loop="poll") as b:
        assert a.connection_file != b.connection_file
        stop = threading.Event()

        def pump():
            while not stop.is_set():
                a.poll()
                b.poll()
                time.sleep(0.002)

        # This thread is the host thread of both; the clients run from here too,
        # so pump from a helper thread that plays the host.
        host = threading.Thread(target=pump)
        host.start()
        try:
            assert connect(str(a.connection_file)).value("who") == "a"
            assert connect(str(b.connection_file)).value("who") == "b"
        finally:
            stop.set()
            host.join()


def test_poll_is_cheap_when_idle():
    with zembed.start_kernel({}, loop="poll") as kernel:
        n = 20000
        t0 = time.perf_counter()
        for _ in range(n):
            kernel.poll()
        per_call = (time.perf_counter() - t0) / n
    assert per_call < 20e-6, f"idle poll() took {per_call * 1e6:.1f} µs"


def test_misuse_gives_clear_errors(monkeypatch):
    # jupyter_client (used by other tests in this process) leaves a current loop behind: none here
    monkeypatch.setattr(asyncio, "get_event_loop_policy", lambda: asyncio.DefaultEventLoopPolicy())
    with pytest.raises(zembed.UsageError, match="needs an asyncio loop on this thread"):
        zembed.start_kernel({}, loop="asyncio")
    monkeypatch.undo()
    with pytest.raises(zembed.UsageError, match="unknown loop"):
        zembed.start_kernel({}, loop="gtk4")
    with pytest.raises(zembed.UsageError, match="must be a dict"):
        zembed.start_kernel([1, 2])  # type: ignore[arg-type]
    with pytest.raises(zembed.UsageError, match="refusing to bind"):
        zembed.start_kernel({}, ip="0.0.0.0", encryption="none", loop="poll")
    with pytest.raises(zembed.UsageError, match="unknown option"):
        zembed.start_kernel({}, colour="red")
    loop = asyncio.new_event_loop()
    try:
        with zembed.start_kernel({}, loop=loop) as kernel, pytest.raises(zembed.UsageError, match="poll"):
            kernel.poll()
    finally:
        loop.close()


def test_insecure_remote_needs_explicit_opt_in(caplog):
    with zembed.start_kernel({}, ip="0.0.0.0", encryption="none", allow_insecure_remote=True, loop="poll") as kernel:
        assert kernel.connection_info["ip"] == "0.0.0.0"
        assert "curve_publickey" not in kernel.connection_info
    assert "WITHOUT encryption" in caplog.text


def test_port_in_use_raises_and_leaves_no_file(runtime_dir):
    with zembed.start_kernel({}, loop="poll") as first:
        port = first.connection_info["shell_port"]
        with pytest.raises(Exception, match="Address already in use"):
            zembed.start_kernel({}, name="second", shell_port=port, loop="poll")
    assert list(runtime_dir.glob("*second*")) == []


def test_auto_picks_asyncio_inside_a_running_loop():
    async def main():
        with zembed.start_kernel({}) as kernel:
            return kernel.loop

    assert asyncio.run(main()) == "asyncio"


def test_auto_without_a_loop_falls_back_to_poll_and_says_so(caplog):
    with zembed.start_kernel({}) as kernel:
        assert kernel.loop == "poll"
    assert "kernel.poll()" in caplog.text


def test_fake_host_loop_contract(connect):
    """The one-callable contract, with the simplest host loop there is."""
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    ran_on: list[int] = []
    namespace = {"ran_on": ran_on}
    kernel = zembed.start_kernel(namespace, loop=tasks.put)
    results: dict = {}

    def client_side():
        client = connect(str(kernel.connection_file))
        results["value"] = client.value("ran_on.append(__import__('threading').get_ident()) or 7")
        results["done"] = True

    helper = threading.Thread(target=client_side)
    helper.start()
    try:
        deadline = time.monotonic() + 20
        while "done" not in results and time.monotonic() < deadline:
            try:
                tasks.get(timeout=0.05)()  # the whole host loop
            except queue.Empty:
                pass
    finally:
        helper.join(5)
        kernel.stop()
    assert results.get("value") == 7
    assert ran_on == [threading.get_ident()]


def test_serve_blocks_until_shutdown(tmp_path, connect):
    script = tmp_path / "serve_host.py"
    script.write_text(
        "import json, os, zembed, zembed._kernel as k\n"
        "orig = k.Kernel.__init__\n"
        "def init(self, *a, **kw):\n"
        "    orig(self, *a, **kw)\n"
        "    os.write(2, (json.dumps({'connection_file': str(self.connection_file)}) + '\\n').encode())\n"
        "k.Kernel.__init__ = init\n"
        "zembed.serve({'answer': 42}, name='served')\n"
        "print('serve returned')\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ}
    )
    try:
        import json

        line = process.stderr.readline().decode()
        client = connect(json.loads(line)["connection_file"])
        assert client.value("answer") == 42
        client.kc.shutdown()
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0
        assert b"zconsole --existing" in out and b"serve returned" in out
    finally:
        process.kill()


def test_documented_options_match_the_code():
    import importlib.util

    root = os.path.join(os.path.dirname(__file__), "..", "docs")
    spec = importlib.util.spec_from_file_location("render_options", os.path.join(root, "render_options.py"))
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = open(os.path.join(root, "configuration.md")).read()
    stale = [row for row in render.rows() if row not in text]
    assert not stale, "docs/configuration.md is stale; regenerate with python docs/render_options.py"


def test_stop_from_inside_a_cell_leaves_the_host_running(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    client.kc.execute("kernel.stop()")
    deadline = time.monotonic() + 10
    while os.path.exists(host.connection_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(host.connection_file)
    time.sleep(0.2)
    assert host.alive()


def test_host_exiting_without_stop_cleans_up(runtime_dir):
    code = "import zembed; k = zembed.start_kernel({}, name='forgetful', loop='poll'); print(k.connection_file)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(done.stdout.strip())


def test_a_poll_host_that_stops_polling_is_reported_busy(connect):
    with zembed.start_kernel({}, loop="poll") as kernel:
        client = connect(str(kernel.connection_file))  # kernel_info is served without the host
        msg_id = client.kc.execute("'ran'")
        time.sleep(0.5)  # the host "hangs": nobody polls
        info = client.control("kernel_info_request")["zembed"]
        assert info["host_busy_seconds"] >= 0.4 and info["executing"] is False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not kernel.poll():  # the host comes back
            time.sleep(0.01)
        assert client.shell_reply(msg_id)["content"]["status"] == "ok"
        assert client.control("kernel_info_request")["zembed"]["host_busy_seconds"] < 0.4


def test_stop_called_from_a_cell_answers_that_cell_first(start_host, connect):
    """Regression: a cell that stopped the kernel (directly, or through a GUI
    quit handler) never got its reply."""
    host = start_host("asyncio")
    client = connect(host.connection_file)
    outcome = client.run("print('stopping'); kernel.stop(); 'stopped after this'")
    assert outcome.content["status"] == "ok" and outcome.result == "'stopped after this'"
    assert outcome.stream() == "stopping\n"
    deadline = time.monotonic() + 5
    while os.path.exists(host.connection_file):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert host.alive()  # the host lives on without its kernel
