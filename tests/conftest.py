"""Harnesses: an isolated Jupyter runtime dir, real subprocess hosts, and a
jupyter_client peer that collects everything a request produced."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient

HOSTS = Path(__file__).parent / "hosts"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """A virtual X display (Xvfb) for Tk and GUI hosts: its DISPLAY value."""
    import shutil

    if shutil.which("Xvfb") is None:
        raise RuntimeError("the Tk tests need Xvfb: apt-get install xvfb (.ci/run installs it)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", "1024x768x24"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()  # Xvfb writes the display number once it serves
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.kill()
        server.wait(5)


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user config file leaks in
    for key in [k for k in os.environ if k.startswith("ZEMBED_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ZEMBED_DATA_DIR", str(tmp_path / "data"))  # history and crash reports stay in the test
    return path


@dataclass
class HostProcess:
    process: subprocess.Popen[bytes]
    connection_file: str
    pid: int
    stdout_lines: list[str] = field(default_factory=list)

    def read_stdout(self, timeout: float = 5.0) -> str:
        """All the host printed, after it exited (or was killed)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.process.communicate()
        return "\n".join(self.stdout_lines) + "\n" + out.decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def frames_on(self, timeout: float = 10.0) -> bool:
        """Wait for the host to print something new (host.py prints a line
        every 30 frames): proof that its own loop runs, needing no kernel."""
        import select

        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        os.set_blocking(fd, False)
        try:
            while True:  # what it printed before now proves nothing: skip it
                try:
                    if not os.read(fd, 65536):
                        return False  # the host closed its stdout: it ended
                except BlockingIOError:
                    break
            return bool(select.select([fd], [], [], timeout)[0])
        finally:
            os.set_blocking(fd, True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def launch_host(script: str | Path, *args: str, env: dict[str, str] | None = None, timeout: float = 20) -> HostProcess:
    """Start a host script (or ``"-m", "module"``); wait for the JSON line
    naming its connection file."""
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=None,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        cwd=str(ROOT),
    )
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        raw = process.stdout.readline()
        if not raw:
            process.wait(5)
            raise RuntimeError(f"host exited ({process.returncode}) before serving: {lines}")
        line = raw.decode().strip()
        if line.startswith("{"):
            info = json.loads(line)
            return HostProcess(process, info["connection_file"], info["pid"], lines)
        lines.append(line)
    process.kill()
    raise RuntimeError("host did not announce its connection file in time")


@pytest.fixture
def start_host() -> Iterator[Any]:
    started: list[HostProcess] = []

    def start(loop: str = "asyncio", *args: str, **kwargs: Any) -> HostProcess:
        host = launch_host(HOSTS / "host.py", "--loop", loop, *args, **kwargs)
        started.append(host)
        return host

    yield start
    for host in started:
        host.kill()


@dataclass
class Outcome:
    reply: dict[str, Any]
    outputs: list[tuple[str, dict[str, Any]]]

    @property
    def content(self) -> dict[str, Any]:
        return self.reply["content"]

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [c for t, c in self.outputs if t == msg_type]

    def stream(self, name: str = "stdout") -> str:
        return "".join(c["text"] for c in self.of_type("stream") if c["name"] == name)

    @property
    def result(self) -> str | None:
        results = self.of_type("execute_result")
        return results[0]["data"]["text/plain"] if results else None


class Client:
    """jupyter_client's BlockingKernelClient, plus "run and collect"."""

    def __init__(self, connection_file: str) -> None:
        self.kc = BlockingKernelClient(connection_file=connection_file)
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=15)
        self._replies: dict[str, dict[str, Any]] = {}

    def collect(self, msg_id: str, timeout: float = 15) -> list[tuple[str, dict[str, Any]]]:
        """iopub messages of one request, from busy through idle."""
        outputs = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            outputs.append((msg["msg_type"], msg["content"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return outputs

    def run(self, code: str, timeout: float = 15, **kwargs: Any) -> Outcome:
        msg_id = self.kc.execute(code, **kwargs)
        reply = self.shell_reply(msg_id, timeout)
        return Outcome(reply, self.collect(msg_id, timeout))

    def shell_reply(self, msg_id: str, timeout: float = 15) -> dict[str, Any]:
        """The reply to ``msg_id``; replies to other requests are kept for later."""
        deadline = time.monotonic() + timeout
        while msg_id not in self._replies:
            reply = self.kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            self._replies[reply["parent_header"].get("msg_id")] = reply
        return self._replies.pop(msg_id)

    def control(self, msg_type: str, content: dict[str, Any] | None = None, timeout: float = 5) -> dict[str, Any]:
        """Send a control request and return its reply's content."""
        msg = self.kc.session.msg(msg_type, content or {})
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_control_msg(timeout=max(0.01, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]

    def update_widget(self, model_id: str, **state: Any) -> None:
        """What a page sends when its widget moves: ``update`` on the widget's comm."""
        data = {"method": "update", "state": state, "buffer_paths": []}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": model_id, "data": data}))

    def interrupt(self) -> dict[str, Any]:
        return self.control("interrupt_request")

    def value(self, expression: str) -> Any:
        """Evaluate in the host and bring back a literal value."""
        import ast

        outcome = self.run(expression)
        assert outcome.content["status"] == "ok", outcome.content
        return ast.literal_eval(outcome.result) if outcome.result is not None else None

    def close(self) -> None:
        self.kc.stop_channels()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll ``predicate()`` until it is truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.01)


def assert_frames_advance(client: Client, by: int = 3, timeout: float = 10.0) -> None:
    """The host's own loop makes progress (a frozen host fails this)."""
    first = client.value("host.frames")
    wait_until(lambda: client.value("host.frames") >= first + by, timeout, f"{by} more host frames")


def drive_poll_host(kernel: Any, connect: Any, client_work: Any, frame: Any = None, timeout: float = 30) -> Any:
    """Be a ``loop="poll"`` host on this thread: run ``frame()`` (default:
    ``kernel.poll()`` and a 1 ms nap) until a client in another thread has
    done ``client_work(client)``; return its value, or raise its exception."""
    import threading

    results: dict[str, Any] = {}

    def client_side() -> None:
        try:
            results["value"] = client_work(connect(str(kernel.connection_file)))
        except BaseException as exc:  # reported below, on the host thread
            results["error"] = exc

    def default_frame() -> None:
        kernel.poll()
        time.sleep(0.001)

    helper = threading.Thread(target=client_side)
    helper.start()
    deadline = time.monotonic() + timeout
    while helper.is_alive() and time.monotonic() < deadline:
        (frame or default_frame)()
    helper.join(5)
    if "error" in results:
        raise results["error"]
    assert "value" in results, "client did not finish: the host loop stalled"
    return results["value"]


@pytest.fixture
def connect() -> Iterator[Any]:
    clients: list[Client] = []

    def make(connection_file: str) -> Client:
        client = Client(connection_file)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(params=["asyncio", "poll"])
def host_and_client(request: pytest.FixtureRequest, start_host: Any, connect: Any) -> tuple[HostProcess, Client]:
    host = start_host(request.param, "--fps", "200")
    return host, connect(host.connection_file)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


@pytest.fixture
def namespaces():
    """``(host_ns, client_ns, host_address)``: two namespaces on one veth
    link, 10.77.x.1 (host) and 10.77.x.2 (client); removed afterwards."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.fail("this test needs root and iproute2's `ip` (.ci/run installs iproute2; CI runs as root)")
    tag = uuid.uuid4().hex[:6]
    host_ns, client_ns = f"zh-{tag}", f"zc-{tag}"
    subnet = 1 + int(tag, 16) % 250
    host_address, client_address = f"10.77.{subnet}.1", f"10.77.{subnet}.2"
    try:
        for ns in (host_ns, client_ns):
            assert _ip("netns", "add", ns).returncode == 0
            _ip("-n", ns, "link", "set", "lo", "up")
        steps = [
            ("link", "add", f"vh-{tag}", "type", "veth", "peer", "name", f"vc-{tag}"),
            ("link", "set", f"vh-{tag}", "netns", host_ns),
            ("link", "set", f"vc-{tag}", "netns", client_ns),
            ("-n", host_ns, "addr", "add", f"{host_address}/24", "dev", f"vh-{tag}"),
            ("-n", client_ns, "addr", "add", f"{client_address}/24", "dev", f"vc-{tag}"),
            ("-n", host_ns, "link", "set", f"vh-{tag}", "up"),
            ("-n", client_ns, "link", "set", f"vc-{tag}", "up"),
        ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield host_ns, client_ns, host_address
    finally:
        for ns in (host_ns, client_ns):
            _ip("netns", "delete", ns)
