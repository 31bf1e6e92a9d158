"""The Jupyter debug protocol on debugpy, driven as JupyterLab drives it:
DAP requests in ``debug_request`` on control, events in ``debug_event`` on
iopub, through jupyter_client, against real host subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import HOSTS, Client, launch_host, wait_until
from dap import Dap
from memory import MemoryKernel
from zconsole._liveness import waiting_reason

from zembed._debugger import HASH_SEED, murmur2

pytest.importorskip("debugpy")
pytestmark = pytest.mark.timeout(120)

CELL = "a = 1\nb = a + 1\nc = b * 3\n"


def host_state(client: Client) -> dict[str, Any]:
    """Threads (the OS's count) and the host thread's trace and profile functions."""
    return client.value(
        "({'tasks': len(__import__('os').listdir('/proc/self/task')), "
        "'trace': repr(__import__('sys').gettrace()), 'profile': type(__import__('sys').getprofile()).__name__, "
        "'thread_trace': repr(__import__('threading').gettrace())})"
    )


@pytest.fixture
def debug_host(start_host: Any, connect: Any) -> Any:
    def make(loop: str = "asyncio") -> tuple[Any, Client, Dap]:
        host = start_host(loop)
        client = connect(host.connection_file)
        return host, client, Dap(client)

    return make


def test_murmur2_names_cells_as_jupyterlab_and_ipykernel_do() -> None:
    # Values of ipykernel's murmur2_x86 with the same seed: frontends that
    # computed a cell's path for ipykernel compute the same one here.
    expected = {
        "": 3990065800,
        "a": 2167009006,
        "ab": 2805137849,
        "abc": 3350977461,
        "abcd": 804720481,
        "abcde": 730143326,
        "x = 1\nprint(x)\n": 1538517086,
        "é ü 漢字 🐍": 990377277,
    }
    assert {text: murmur2(text.encode(), HASH_SEED) for text in expected} == expected


def test_kernel_info_advertises_the_debugger(debug_host: Any) -> None:
    _, client, _ = debug_host()
    client.kc.kernel_info()
    info = client.kc.get_shell_msg(timeout=5)["content"]
    assert info["debugger"] is True and "debugger" in info["supported_features"]
    assert info["zembed"]["debugger"] == {"started": False, "stopped": False, "stopped_seconds": 0.0}


@pytest.mark.parametrize("loop", ["asyncio", "poll", "qt"])
def test_the_dap_exchange_jupyterlab_makes_stops_and_resumes_the_host(
    debug_host: Any, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    host, client, dap = debug_host(loop)
    before = host_state(client)
    info = dap.ok("debugInfo")
    assert info["isStarted"] is False and info["hashMethod"] == "Murmur2" and info["hashSeed"] == HASH_SEED
    dap.start()
    path = dap.break_in_cell(CELL, 2)
    assert path == f"{info['tmpFilePrefix']}{murmur2(CELL.encode(), HASH_SEED)}{info['tmpFileSuffix']}"
    assert dap.ok("debugInfo")["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]

    msg_id = client.kc.execute(CELL)
    stopped = dap.event("stopped")
    assert stopped["body"]["reason"] == "breakpoint"
    thread = stopped["body"]["threadId"]
    assert not host.frames_on(timeout=1.5), "the host's frame loop ran on while its thread was stopped"
    # the kernel answers meanwhile: control, kernel_info on shell, the debugger
    assert client.control("kernel_info_request")["zembed"]["debugger"]["stopped"] is True
    assert dap.ok("debugInfo")["stoppedThreads"] == [thread]

    frames = dap.ok("stackTrace", threadId=thread)["stackFrames"]
    assert (frames[0]["source"]["path"], frames[0]["line"]) == (path, 2)
    assert not [f for f in frames if "/zembed/" in f["source"].get("path", "")], frames  # no kernel frames
    scopes = dap.ok("scopes", frameId=frames[0]["id"])["scopes"]
    names = {
        v["name"]: v["value"]
        for v in dap.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"]
    }
    assert names["a"] == "1" and "b" not in names and "__builtins__" not in names
    assert dap.ok("evaluate", expression="a + 100", frameId=frames[0]["id"], context="repl")["result"] == "101"
    rich = dap.ok("richInspectVariables", variableName="a", frameId=frames[0]["id"])
    assert rich["data"]["text/plain"] == "1"
    dap.ok("copyToGlobals", srcVariableName="a", dstVariableName="copied", srcFrameId=frames[0]["id"])

    dap.ok("next", threadId=thread)
    assert dap.event("stopped")["body"]["reason"] == "step"
    assert dap.ok("stackTrace", threadId=thread)["stackFrames"][0]["line"] == 3
    dap.ok("continue", threadId=thread)
    assert client.shell_reply(msg_id)["content"]["status"] == "ok"
    assert host.frames_on(timeout=10), "the host's frame loop did not resume"
    assert client.value("(a, b, c, copied)") == (1, 2, 6, 1)

    listed = {v["name"]: v for v in dap.ok("inspectVariables")["variables"]}
    assert listed["c"]["value"] == "6" and listed["c"]["type"] == "int" and "__builtins__" not in listed
    assert dap.ok("richInspectVariables", variableName="c")["data"]["text/plain"] == "6"

    dap.ok("disconnect", restart=False, terminateDebuggee=False)
    # pydevd's threads end within a moment of its stop (its writer polls every 0.1 s)
    wait_until(lambda: host_state(client) == before, timeout=5, what="no thread or trace function left behind")
    assert dap.ok("debugInfo")["isStarted"] is False
    assert client.run(CELL).content["status"] == "ok"  # no breakpoint left: it runs through


def test_a_breakpoint_in_the_hosts_own_code_is_hit_by_its_frame_loop(debug_host: Any, tmp_path: Path) -> None:
    host, client, dap = debug_host()
    module = tmp_path / "host_tick.py"
    module.write_text(
        "ticks = 0\n\n\ndef tick():\n    global ticks\n    ticks += 1\n    frame = ticks\n    return frame\n"
    )
    outcome = client.run(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import host_tick; host.per_frame.append(host_tick.tick)"
    )
    assert outcome.content["status"] == "ok", outcome.content
    dap.start()
    dap.ok("setBreakpoints", source={"path": str(module)}, breakpoints=[{"line": 8}])
    dap.ok("configurationDone")
    stopped = dap.event("stopped")  # no cell runs: the host's loop called it
    thread = stopped["body"]["threadId"]
    frames = dap.ok("stackTrace", threadId=thread)["stackFrames"]
    assert (frames[0]["source"]["path"], frames[0]["line"]) == (str(module), 8)
    assert any(f["source"].get("path", "").endswith("hosts/host.py") for f in frames[1:]), frames
    scopes = dap.ok("scopes", frameId=frames[0]["id"])["scopes"]
    local = {
        v["name"]: v["value"]
        for v in dap.ok("variables", variablesReference=scopes[0]["variablesReference"])["variables"]
    }
    assert int(local["frame"]) > 0
    assert "def tick" in dap.ok("source", source={"path": str(module)})["content"]
    modules = dap.ok("modules")  # JupyterLab's "kernel sources": where the host's files are found
    assert {"name": "host_tick", "path": str(module)}.items() <= next(
        m for m in modules["modules"] if m["name"] == "host_tick"
    ).items()
    assert not [m for m in modules["modules"] if "/zembed/" in m["path"] or "/debugpy/" in m["path"]]
    script = next(m for m in modules["modules"] if m["name"] == "__main__")  # a script has no spec, only a file
    assert script["path"].endswith("tests/hosts/host.py")
    # stopped outside any cell: clients are told it is the debugger, not a busy host
    status = client.control("kernel_info_request")["zembed"]
    assert status["debugger"]["stopped"] is True and status["executing"] is False
    reason, busy = waiting_reason(status, "another-session")  # what zconsole says of a cell left waiting
    assert reason is not None and "stopped at a breakpoint" in reason and not busy
    listing = subprocess.run([sys.executable, "-m", "zembed", "list"], capture_output=True, text=True, timeout=30)
    assert f"{host.pid}" in listing.stdout and "debugging" in listing.stdout, listing.stdout
    dap.ok("setBreakpoints", source={"path": str(module)}, breakpoints=[])
    dap.ok("continue", threadId=thread)
    assert host.frames_on(timeout=10)
    dap.ok("disconnect")
    assert client.run("host.per_frame.clear()").content["status"] == "ok"


def test_an_interrupt_while_stopped_ends_the_cell_not_the_host(debug_host: Any) -> None:
    host, client, dap = debug_host()
    dap.start()
    dap.break_in_cell(CELL, 2)
    msg_id = client.kc.execute(CELL)
    dap.event("stopped")
    assert client.interrupt()["status"] == "ok"
    reply = client.shell_reply(msg_id)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert host.frames_on(timeout=10)
    assert client.value("host.interrupts_in_host_code") == 0
    later = "d = 4\ne = d + 1\n"  # the debugger still stops the host afterwards
    dap.break_in_cell(later, 2)
    msg_id = client.kc.execute(later)
    dap.ok("continue", threadId=dap.event("stopped")["body"]["threadId"])
    assert client.shell_reply(msg_id)["content"]["status"] == "ok"
    dap.ok("disconnect")
    assert client.value("1 + 1") == 2


def test_a_second_session_in_the_same_host_and_under_cprofile(tmp_path: Path, connect: Any) -> None:
    """debugpy listens once per process; zembed's stop lets it listen again.
    A host run under cProfile keeps its profiler through both sessions."""
    host = launch_host(
        "-m", "cProfile", "-o", str(tmp_path / "profile.out"), str(HOSTS / "host.py"), "--loop", "asyncio"
    )
    try:
        client = connect(host.connection_file)
        before = host_state(client)
        assert before["profile"] == "Profile" and before["trace"] == "None"
        for _ in range(2):
            dap = Dap(client)
            dap.start()
            dap.break_in_cell(CELL, 3)
            msg_id = client.kc.execute(CELL)
            thread = dap.event("stopped")["body"]["threadId"]
            dap.ok("continue", threadId=thread)
            assert client.shell_reply(msg_id)["content"]["status"] == "ok"
            dap.ok("disconnect")
            wait_until(lambda: host_state(client) == before, timeout=5, what="the host as it was")
    finally:
        host.kill()


def test_blender_like_host_whose_executable_is_not_python(debug_host: Any) -> None:
    """In Blender ``sys.executable`` is Blender: nothing is spawned with it."""
    _, client, dap = debug_host()
    assert client.run("import sys; sys.executable = '/bin/false'").content["status"] == "ok"
    dap.start()
    dap.break_in_cell(CELL, 1)
    msg_id = client.kc.execute(CELL)
    dap.ok("continue", threadId=dap.event("stopped")["body"]["threadId"])
    assert client.shell_reply(msg_id)["content"]["status"] == "ok"
    dap.ok("disconnect")


def test_a_host_that_already_traces_is_told_not_broken(debug_host: Any) -> None:
    _, client, dap = debug_host()
    client.run("import threading; threading.settrace(lambda *args: None)")
    answer = dap("initialize", clientID="x", adapterID="python")
    assert answer["success"] is False and "trace function" in answer["message"], answer
    assert dap.ok("debugInfo")["isStarted"] is False
    client.run("threading.settrace(None)")
    dap.start()  # once the other tracer is gone it starts
    dap.ok("disconnect")


def test_bad_debug_requests_get_dap_errors_and_the_kernel_serves_on(debug_host: Any) -> None:
    _, client, dap = debug_host()
    for content in (
        {},
        {"type": "event", "seq": 1, "command": "x"},
        {"type": "request", "command": "next"},
        {"type": "request", "seq": "7", "command": "next"},
    ):
        answer = client.control("debug_request", content)
        assert answer["type"] == "response" and answer["success"] is False and answer["message"], answer
    for command in ("stackTrace", "next", "dumpCell", "frobnicate"):
        answer = dap(command)
        assert answer["success"] is False and "not started" in answer["message"], answer
    dap.start()
    for command, arguments in (
        ("dumpCell", {}),
        ("source", {"source": {"path": "/no/such/file.py"}}),
        ("stackTrace", {"threadId": 99999}),
        ("frobnicate", {}),
        ("copyToGlobals", {"srcVariableName": "1x", "dstVariableName": "y"}),
        ("variables", {"variablesReference": 123456}),
    ):
        answer = dap(command, **arguments)
        assert answer["success"] is False, (command, answer)
    answer = client.control("debug_request", {"type": "request", "seq": 1, "command": "evaluate", "arguments": 5})
    assert answer["success"] is False and "arguments" in answer["message"]
    assert dap.ok("evaluate", expression="1 + 1", context="repl")["result"] == "2"  # still working
    dap.ok("disconnect")
    assert client.value("2 + 2") == 4


def test_debug_reply_sits_between_busy_and_idle() -> None:
    kernel = MemoryKernel()
    try:
        request = kernel.message("debug_request", {"type": "request", "seq": 3, "command": "debugInfo"})
        kernel.send("control", request)
        sent = [m for _, m in kernel.parsed() if m.parent_header.get("msg_id") == request.msg_id]
        kinds = [(m.msg_type, m.content.get("execution_state")) for m in sent]
        assert kinds == [("status", "busy"), ("debug_reply", None), ("status", "idle")]
        reply = sent[1].content
        assert reply["request_seq"] == 3 and reply["body"]["isStarted"] is False
        json.dumps(reply)
    finally:
        kernel.close()


def test_a_client_that_leaves_with_the_host_stopped_does_not_leave_it_stopped(debug_host: Any, connect: Any) -> None:
    host, client, dap = debug_host()
    before = host_state(client)
    dap.start()
    dap.break_in_cell(CELL, 2)
    client.kc.execute(CELL)
    dap.event("stopped")
    assert not host.frames_on(timeout=1)
    client.close()  # gone without turning the debugger off (a closed laptop): the last subscriber
    assert host.frames_on(timeout=10), "the host stayed stopped at a breakpoint for a client that is gone"
    later = connect(host.connection_file)
    assert later.value("(a, b, c)") == (1, 2, 6)  # the cell ran on to its end
    wait_until(lambda: host_state(later) == before, timeout=5, what="the debugger off, nothing left behind")
    assert Dap(later).ok("debugInfo")["isStarted"] is False


def test_a_host_that_stops_its_kernel_while_debugging_exits_cleanly(start_host: Any, connect: Any) -> None:
    """The host quits with the debugger on and a breakpoint set: its kernel's
    stop ends the debugging session (on the host's thread) and the process
    exits by itself, leaving no cell files behind."""
    host = start_host("asyncio", "--exit-on-shutdown")
    client = connect(host.connection_file)
    dap = Dap(client)
    info = dap.ok("debugInfo")
    dap.start()
    dap.break_in_cell("z = 1\nz += 1\n", 2)
    cells = Path(info["tmpFilePrefix"])
    assert list(cells.glob("*.py")), "dumpCell wrote no file"
    client.run("z = 5")  # a cell with no breakpoint runs through with the debugger on
    client.kc.shutdown()
    assert host.process.wait(20) == 0
    assert not cells.exists(), "the cells' folder outlived the kernel"


def test_a_host_thread_that_comes_back_too_late_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """initialize waits for the host's thread to start tracing; a host away
    for longer gets a DAP failure, and when its thread does come back no
    debugger starts behind the frontend's back."""
    import zembed._debug_session as debug_session

    monkeypatch.setattr(debug_session, "ANSWER_TIMEOUT", 0.3)
    kernel = MemoryKernel()
    later: list[Any] = []
    kernel.call_on_host = later.append  # type: ignore[method-assign]  # the host's thread is away
    try:
        request = kernel.message("debug_request", {"type": "request", "seq": 1, "command": "initialize"})
        kernel.send("control", request)

        def reply() -> Any:
            return next((m for _, m in kernel.parsed() if m.msg_type == "debug_reply"), None)

        answer = wait_until(reply, timeout=10, what="initialize's answer").content
        assert answer["success"] is False and "did not come back" in answer["message"], answer
        wait_until(lambda: kernel.debugger is not None and kernel.debugger._session is None, what="its thread's end")
        for callback in later:  # back, too late
            callback()
        assert sys.gettrace() is None
        pydevd = sys.modules.get("pydevd")
        assert pydevd is None or pydevd.get_global_debugger() is None, "a debugger started nobody asked for any more"
    finally:
        kernel.close()
