"""Hosts in Jupyter frontends, as those frontends start kernels: jupyter_client's
KernelManager (what VS Code, nbclient, papermill and jupyter_server do) with
kernelspecs installed by ``zembed kernelspec install``, for a host launched as
a kernel and for the relay to a host already running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HOSTS, ROOT, Client, wait_until
from dap import Dap
from jupyter_client import KernelManager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def kernelspecs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``zembed kernelspec`` into a prefix of the test's own, found through JUPYTER_PATH."""
    prefix = tmp_path / "prefix"
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))

    def zembed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zembed", "kernelspec", *args], capture_output=True, text=True, timeout=30
        )

    def install(*args: str) -> str:
        done = zembed("install", "--prefix", str(prefix), *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    install.zembed = zembed  # type: ignore[attr-defined]
    return install


@pytest.fixture
def managers() -> Iterator[Any]:
    started: list[KernelManager] = []

    def start(name: str) -> tuple[KernelManager, Any]:
        manager = KernelManager(kernel_name=name)
        manager.start_kernel()
        started.append(manager)
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        manager.test_client = client  # type: ignore[attr-defined]
        return manager, client

    yield start
    for manager in started:
        manager.test_client.stop_channels()  # type: ignore[attr-defined]
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def host_command(name: str, *extra: str) -> list[str]:
    return [sys.executable, str(HOSTS / "host.py"), "--loop", "asyncio", "--name", name, *extra]


def outputs(client: Any, code: str, timeout: float = 10) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    reply = client.execute_interactive(code, timeout=timeout, output_hook=seen.append)
    return reply["content"], seen


def text_of(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")


# -- a host launched as a kernel -----------------------------------------------------


def test_kernelspec_list_install_remove(kernelspecs):
    out = kernelspecs("myapp", "--display-name", "My App")
    assert "zembed-myapp" in out and "My App" in out
    kernelspecs("other", "--name", "custom", "--launch", "--", "blender", "--background")
    listing = kernelspecs.zembed("list").stdout
    assert "zembed-myapp" in listing and "relay to myapp" in listing and "custom" in listing and "blender" in listing
    spec = json.loads((Path(os.environ["JUPYTER_PATH"]) / "kernels" / "zembed-myapp" / "kernel.json").read_text())
    assert spec["interrupt_mode"] == "message" and spec["display_name"] == "My App"
    assert spec["argv"][1:] == ["-m", "zjupyter", "relay", "myapp", "-f", "{connection_file}"]
    removed = kernelspecs.zembed("remove", "custom")
    assert removed.returncode == 0 and "custom" not in kernelspecs.zembed("list").stdout
    missing = kernelspecs.zembed("remove", "custom")
    assert missing.returncode == 1 and "no zembed kernelspec named 'custom'" in missing.stderr


def test_a_launched_host_serves_the_launchers_ports_and_key(kernelspecs, managers):
    kernelspecs("launched", "--launch", "--", *host_command("launched", "--exit-on-shutdown"))
    manager, client = managers("zembed-launched")
    chosen = manager.get_connection_info()
    served = json.loads(Path(manager.connection_file).read_text())
    for field in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port", "ip", "transport"):
        assert served[field] == chosen[field]
    assert served["key"] == chosen["key"].decode() and served["zembed"]["app"] == "launched"
    reply, seen = outputs(client, "print(host.frames > 0, host.thread_id == __import__('threading').get_ident())")
    assert reply["status"] == "ok" and text_of(seen) == "True True\n"
    first = served["zembed"]["pid"]
    manager.restart_kernel(now=False)  # a new host, on the same file, the same ports
    client.wait_for_ready(timeout=30)
    again = json.loads(Path(manager.connection_file).read_text())
    assert again["zembed"]["pid"] != first and again["shell_port"] == chosen["shell_port"]
    assert outputs(client, "6 * 7")[0]["status"] == "ok"


def test_a_launched_host_gives_the_file_back_when_it_stops(kernelspecs, managers):
    kernelspecs("launched", "--launch", "--", *host_command("launched"))
    manager, client = managers("zembed-launched")
    client.execute("host.quit = True")  # the host ends its loop and stops its kernel
    wait_until(lambda: not manager.is_alive(), timeout=20, what="the host to exit")
    left = json.loads(Path(manager.connection_file).read_text())
    assert "zembed" not in left and left["key"] == manager.get_connection_info()["key"].decode()


def test_a_launched_host_that_cannot_start_says_why(kernelspecs, tmp_path):
    (tmp_path / "bad.json").write_text('{"shell_port": 1}')
    done = subprocess.run(
        host_command("bad"),
        env={**os.environ, "ZEMBED_CONNECTION_FILE": str(tmp_path / "bad.json")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0 and "not a Jupyter connection file" in done.stderr
    nothing = subprocess.run([sys.executable, "-m", "zembed", "launch", "x.json"], capture_output=True, text=True)
    assert nothing.returncode == 2 and "give the host's command after --" in nothing.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "zembed", "launch", "x.json", "--", "no-such-host-program"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 127 and "cannot run 'no-such-host-program'" in missing.stderr


# -- the relay to a running host ---------------------------------------------------


def test_the_relay_runs_cells_on_the_hosts_thread_and_interrupts_them(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    manager, client = managers("zembed-relayed")
    reply, seen = outputs(client, "import threading; print(threading.get_ident() == host.thread_id, host.frames > 0)")
    assert reply["status"] == "ok" and text_of(seen) == "True True\n"
    info = client.kernel_info(reply=True, timeout=10)["content"]
    assert info["zembed"]["app"] == "relayed" and info["zembed"]["pid"] == host.pid
    started = client.execute("import time\nfor _ in range(600): time.sleep(0.05)")
    wait_until(lambda: host_running_cell(host), timeout=10, what="the cell to start on the host")
    manager.interrupt_kernel()  # interrupt_mode message: a control message through the relay
    reply = client.get_shell_msg(timeout=10)
    assert reply["parent_header"]["msg_id"] == started and reply["content"]["ename"] == "KeyboardInterrupt"
    assert host.alive() and host.frames_on()


def host_running_cell(host: Any) -> bool:
    from zembed.frontend import resolve

    details = resolve(host.connection_file).details.get("zembed", {})
    return details.get("running_cell") is not None


def test_the_relay_keeps_the_hosts_key_to_itself(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    manager, client = managers("zembed-relayed")
    host_key = json.loads(Path(host.connection_file).read_text())["key"]
    assert manager.get_connection_info()["key"].decode() != host_key
    relay_pid = manager.provisioner.process.pid
    assert host_key not in Path(f"/proc/{relay_pid}/cmdline").read_text()
    assert host_key not in Path(manager.connection_file).read_text()  # the frontend's side has its own
    outputs(client, "1")  # and what came back through the relay was signed with the frontend's key


def test_shut_down_ends_the_relay_and_the_host_serves_on(kernelspecs, managers, start_host, connect):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    manager, client = managers("zembed-relayed")
    outputs(client, "from_the_notebook = 1")
    manager.shutdown_kernel(now=False)  # the relay answers, exits; the host is left alone
    assert not manager.is_alive() and host.alive()
    assert connect(host.connection_file).value("from_the_notebook") == 1


def test_restart_re_attaches_to_the_same_host(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    manager, client = managers("zembed-relayed")
    outputs(client, "kept = 'the host keeps its namespace'")
    manager.restart_kernel(now=False)
    client.wait_for_ready(timeout=30)
    assert text_of(outputs(client, "print(kept)")[1]) == "the host keeps its namespace\n"
    assert host.alive()


def test_forward_shutdown_detaches_the_host(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "relayed", "--exit-on-shutdown")
    kernelspecs("relayed", "--forward-shutdown")
    manager, _ = managers("zembed-relayed")
    manager.shutdown_kernel(now=False)
    host.process.wait(10)  # this host opted in to exiting on a client's shutdown


def test_the_host_dies_and_comes_back(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    manager, client = managers("zembed-relayed")
    long_cell = client.execute("import time\nfor _ in range(600): time.sleep(0.05)")
    wait_until(lambda: host_running_cell(host), timeout=10, what="the cell to start on the host")
    host.kill()
    killed = time.monotonic()
    reply = client.get_shell_msg(timeout=5)  # the cell that was running is answered, not left hanging
    told_after = time.monotonic() - killed
    assert reply["parent_header"]["msg_id"] == long_cell and reply["content"]["ename"] == "HostNotRunning"
    assert told_after < 3
    notes: list[dict[str, Any]] = []

    def restarting() -> bool:  # iopub is another socket than the reply's: it may come a little later
        notes.extend(drain_iopub(client))
        return any(m["msg_type"] == "status" and m["content"]["execution_state"] == "restarting" for m in notes)

    wait_until(restarting, timeout=5, what="the 'restarting' status")
    died = [m for m in notes if m["msg_type"] == "stream" and "died" in m["content"]["text"]]
    assert died and f"relayed (pid {host.pid}) died" in died[0]["content"]["text"]

    began = time.monotonic()
    reply, seen = outputs(client, "1 + 1", timeout=5)  # meanwhile: an error at once
    assert reply["status"] == "error" and reply["ename"] == "HostNotRunning" and time.monotonic() - began < 2
    assert "waits for it" in reply["evalue"] and any(m["msg_type"] == "error" for m in seen)
    assert manager.is_alive()

    back = start_host("asyncio", "--name", "relayed")
    notices: list[dict[str, Any]] = []
    wait_until(lambda: saw(client, notices, "re-attached"), timeout=10, what="the relay to say it re-attached")
    reply, seen = outputs(client, "print(host.frames > 0)")
    assert reply["status"] == "ok" and f"re-attached to relayed (pid {back.pid})" in text_of(seen)
    assert "True\n" in text_of(seen)


def drain_iopub(client: Any) -> list[dict[str, Any]]:
    messages = []
    while client.iopub_channel.msg_ready():
        messages.append(client.get_iopub_msg(timeout=1))
    return messages


def saw(client: Any, seen: list[dict[str, Any]], text: str) -> bool:
    seen.extend(drain_iopub(client))
    return text in text_of(seen)


def test_the_relay_waits_for_a_host_that_is_not_there_yet(kernelspecs, managers, start_host):
    kernelspecs("later")
    manager, client = managers("zembed-later")  # ready with no host: kernel_info is the relay's own
    info = client.kernel_info(reply=True, timeout=10)["content"]
    assert info["zembed"] == {"relay": True, "app": "later", "attached": False}
    assert outputs(client, "1")[0]["ename"] == "HostNotRunning"
    assert client.complete("pri", reply=True, timeout=5)["content"]["matches"] == []  # quiet, not an error
    start_host("asyncio", "--name", "later")
    wait_until(lambda: outputs(client, "1")[0]["status"] == "ok", timeout=15, what="the relay to attach")


def test_the_debugger_through_the_relay(kernelspecs, managers, start_host):
    """JupyterLab's debugger through the relay: the spec says there is one,
    requests cross it both ways, and while no host is attached each gets
    a Debug Adapter Protocol failure, not silence."""
    pytest.importorskip("debugpy")
    kernelspecs("dbg")
    spec = json.loads((Path(os.environ["JUPYTER_PATH"]) / "kernels" / "zembed-dbg" / "kernel.json").read_text())
    assert spec["metadata"]["debugger"] is True
    manager, _ = managers("zembed-dbg")
    front = Client(manager.connection_file)
    try:
        dap = Dap(front)
        alone = dap("initialize", adapterID="python")
        assert alone["success"] is False and "no live host" in alone["message"], alone
        start_host("asyncio", "--name", "dbg")
        wait_until(lambda: outputs(front.kc, "1")[0]["status"] == "ok", timeout=15, what="the relay to attach")
        dap.start()
        cell = "x = 41\nx += 1\n"
        dap.break_in_cell(cell, 2)
        msg_id = front.kc.execute(cell)
        thread = dap.event("stopped")["body"]["threadId"]
        frame = dap.ok("stackTrace", threadId=thread)["stackFrames"][0]
        assert dap.ok("evaluate", expression="x", frameId=frame["id"], context="repl")["result"] == "41"
        dap.ok("continue", threadId=thread)
        assert front.shell_reply(msg_id)["content"]["status"] == "ok"
        dap.ok("disconnect")
    finally:
        front.close()


def test_every_client_sees_the_others(kernelspecs, managers, start_host, connect):
    host = start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    _, notebook = managers("zembed-relayed")
    console = connect(host.connection_file)  # a zconsole-like client on the host directly
    seen_by_console: list[dict[str, Any]] = []
    outputs(notebook, "print('from the notebook')")
    wait_until(
        lambda: saw(console.kc, seen_by_console, "from the notebook"),
        timeout=5,
        what="the console to see the notebook's output",
    )
    seen_by_notebook: list[dict[str, Any]] = []
    console.run("print('from the console')")
    wait_until(
        lambda: saw(notebook, seen_by_notebook, "from the console"),
        timeout=5,
        what="the notebook to see the console's output",
    )


@pytest.mark.parametrize("kind", ["launched", "relayed"])
def test_jupyter_kernel_test_conformance(kernelspecs, start_host, kind):
    if kind == "launched":
        kernelspecs("conform", "--launch", "--", *host_command("conform", "--exit-on-shutdown"))
    else:
        start_host("asyncio", "--name", "conform")
        kernelspecs("conform")
    done = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "jupyter_conformance"],
        cwd=str(ROOT / "tests"),
        env={**os.environ, "ZEMBED_CONFORMANCE_KERNEL": "zembed-conform"},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "FAILED" not in done.stderr and " ok" in done.stderr


def write_notebook(path: Path, kernel: str, cells: list[str]) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, str(path))
    return path


def test_nbclient_runs_a_notebook_against_the_running_host(kernelspecs, start_host, connect, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    host = start_host("asyncio", "--name", "scene")
    kernelspecs("scene")
    path = write_notebook(
        tmp_path / "report.ipynb",
        "zembed-scene",
        ["frames = host.frames\nframes > 0", "host.report = 'made by nbclient'\nprint(host.report)", "host?"],
    )
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=30, kernel_name="zembed-scene").execute()
    assert notebook.cells[0].outputs[0]["data"]["text/plain"] == "True"
    assert notebook.cells[1].outputs[0]["text"] == "made by nbclient\n"
    assert connect(host.connection_file).value("host.report") == "made by nbclient"
    assert host.alive()  # the notebook's end shut the relay down, not the host


def test_papermill_parameterizes_a_notebook_on_the_host(kernelspecs, start_host, connect, tmp_path):
    import nbformat
    import papermill

    host = start_host("asyncio", "--name", "scene")
    kernelspecs("scene")
    source = write_notebook(tmp_path / "in.ipynb", "zembed-scene", ["size = 1", "host.size = size * 10\nhost.size"])
    notebook = nbformat.read(str(source), as_version=4)
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, str(source))
    papermill.execute_notebook(
        str(source), str(tmp_path / "out.ipynb"), parameters={"size": 7}, kernel_name="zembed-scene", progress_bar=False
    )
    done = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    assert done.cells[-1].outputs[0]["data"]["text/plain"] == "70"
    assert connect(host.connection_file).value("host.size") == 70


def test_a_notebook_run_when_the_host_is_gone_fails_at_once_and_clearly(kernelspecs, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    kernelspecs("absent")
    notebook = nbformat.read(str(write_notebook(tmp_path / "x.ipynb", "zembed-absent", ["1 + 1"])), as_version=4)
    began = time.monotonic()
    with pytest.raises(CellExecutionError, match="HostNotRunning: no live host of app 'absent' is running"):
        NotebookClient(notebook, timeout=30, kernel_name="zembed-absent").execute()
    assert time.monotonic() - began < 15  # a kernel start and one answer, never a 30 s timeout


def test_qtconsole_attaches_through_the_relay(kernelspecs, start_host):
    host = start_host("asyncio", "--name", "scene")
    kernelspecs("scene")
    artefacts = ROOT / "artefacts" / "qtconsole"
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "qtconsole-through-the-relay.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "qtconsole_client.py"), "zembed-scene",
         "print('qtconsole sees', type(host).__name__, host.frames > 0)", "qtconsole sees Host True", str(shot)],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_API": "pyside6"},
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["found"], result["text"]
    assert "a kernel inside 'scene'" in result["text"]  # the host's banner, through the relay
    assert shot.stat().st_size > 10_000 and host.alive()


def test_the_relay_attaches_to_an_encrypted_host(kernelspecs, managers, start_host):
    host = start_host("asyncio", "--name", "secret", env={"ZEMBED_ENCRYPTION": "curve"})
    assert "curve_publickey" in json.loads(Path(host.connection_file).read_text())
    kernelspecs("secret")
    manager, client = managers("zembed-secret")
    reply, seen = outputs(client, "print('through Curve', host.frames > 0)")
    assert reply["status"] == "ok" and text_of(seen) == "through Curve True\n"


REMOTE_NOTEBOOK = """
import json, sys, time
from jupyter_client import KernelManager
manager = KernelManager(kernel_name="zembed-remote")
manager.start_kernel()
client = manager.client()
client.start_channels()
client.wait_for_ready(timeout=30)
seen = []
reply = client.execute_interactive("print('remote', host.frames > 0)", timeout=20, output_hook=seen.append)
print(json.dumps([reply["content"]["status"], [m["content"].get("text") for m in seen if m["msg_type"] == "stream"]]))
sys.stdout.flush()
sys.stdin.readline()  # the test kills the host now
began = time.monotonic()
while True:
    message = client.get_iopub_msg(timeout=10)
    if message["msg_type"] == "stream" and "died" in message["content"]["text"]:
        print(json.dumps([time.monotonic() - began, message["content"]["text"]]), flush=True)
        break
client.stop_channels()
manager.shutdown_kernel(now=True)
"""


def test_the_relay_attaches_to_a_host_on_another_machine(kernelspecs, namespaces, tmp_path):
    """Two network namespaces: the host binds its veth address (Curve by
    default), the relay and its KernelManager run in the other one."""
    host_ns, client_ns, host_address = namespaces
    kernelspecs("remote")
    host = subprocess.Popen(
        ["ip", "netns", "exec", host_ns, *host_command("remote")],
        stdout=subprocess.PIPE,
        env={**os.environ, "ZEMBED_IP": host_address, "PYTHONUNBUFFERED": "1"},
        cwd=str(ROOT),
    )
    notebook = None
    try:
        assert host.stdout is not None
        json.loads(host.stdout.readline().decode())  # the host serves
        notebook = subprocess.Popen(
            ["ip", "netns", "exec", client_ns, sys.executable, "-c", REMOTE_NOTEBOOK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert notebook.stdout is not None and notebook.stdin is not None
        assert json.loads(notebook.stdout.readline()) == ["ok", ["remote True\n"]]
        host.kill()
        host.wait(10)
        notebook.stdin.write("go\n")
        notebook.stdin.flush()
        seconds, text = json.loads(notebook.stdout.readline())
        assert seconds < 3 and "remote" in text  # no pid to look at from there: the heartbeat tells
        notebook.wait(30)
    finally:
        host.kill()
        if notebook is not None:
            notebook.kill()


def test_new_notebook_on_the_qt_example_starts_the_app(kernelspecs, managers, monkeypatch):
    """The kernelspec docs/notebooks.md gives for the Qt example: the app is the kernel."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    app = str(ROOT / "examples" / "gui_app" / "qt_app.py")
    kernelspecs("shapes", "--launch", "--", "python", app, "--name", "shapes", "--quit-on-shutdown")
    manager, client = managers("zembed-shapes")
    reply, _ = outputs(client, "scene.add('square', 100, 100, 80, '#ff0000'); app.processEvents()")
    assert reply["status"] == "ok"
    reply, seen = outputs(client, "len(scene.shapes), window.isVisible()")
    assert [m["content"]["data"]["text/plain"] for m in seen if m["msg_type"] == "execute_result"] == ["(1, True)"]
    process = manager.provisioner.process
    began = time.monotonic()
    manager.shutdown_kernel(now=False)  # 'shut down kernel': the app quits by itself, nobody kills it
    assert process.wait(10) == 0 and time.monotonic() - began < 5


def test_a_relay_leaves_nothing_behind(kernelspecs, start_host, runtime_dir, tmp_path):
    """Shut down or killed, on tcp or ipc: only the host's own file stays."""
    start_host("asyncio", "--name", "relayed")
    kernelspecs("relayed")
    before = set(runtime_dir.iterdir())
    for transport, ending in [("tcp", "shutdown"), ("ipc", "shutdown"), ("ipc", "kill")]:
        manager = KernelManager(kernel_name="zembed-relayed", transport=transport)
        if transport == "ipc":
            manager.ip = str(tmp_path / f"relay-{ending}")
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        client.stop_channels()
        if ending == "kill":  # what its launcher does for a relay that died: the relay itself wrote nothing
            process = manager.provisioner.process
            os.kill(process.pid, 9)
            process.wait(10)
            manager.cleanup_resources()
        else:
            manager.shutdown_kernel(now=False)
        assert set(runtime_dir.iterdir()) == before
        assert not list(tmp_path.glob("relay-*")), list(tmp_path.glob("relay-*"))
