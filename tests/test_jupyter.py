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
from conftest import HOSTS, ROOT, wait_until
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
    notes = drain_iopub(client)
    died = [m for m in notes if m["msg_type"] == "stream" and "died" in m["content"]["text"]]
    assert died and f"relayed (pid {host.pid}) died" in died[0]["content"]["text"]
    assert any(m["msg_type"] == "status" and m["content"]["execution_state"] == "restarting" for m in notes)

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
