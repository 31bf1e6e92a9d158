"""Running hosts as engines of a real ipyparallel cluster: a real
``ipcontroller`` on loopback with a temporary profile, real host
subprocesses joining it (``ZEMBED_CLUSTER`` in their environment, or
``kernel.join_cluster`` from a cell), driven by an unmodified
``ipyparallel.Client``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until

ipp = pytest.importorskip("ipyparallel")

pytestmark = pytest.mark.timeout(180)


class Controller:
    def __init__(self, profile_dir: Path, env: dict[str, str] | None = None) -> None:
        self.profile_dir = profile_dir
        self.env = {**os.environ, **(env or {})}
        self.engine_file = profile_dir / "security" / "ipcontroller-engine.json"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.engine_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ipyparallel.controller", f"--profile-dir={self.profile_dir}", "--ip=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,  # its schedulers are processes of their own: stop() kills the group
        )
        wait_until(self.engine_file.exists, timeout=60, what="ipcontroller's engine file")

    def stop(self) -> None:
        """kill -9 the controller and its scheduler processes, which outlive it otherwise."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is gone already
            pass
        self.process.wait(10)
        self.process = None  # its pid may be another process's by the next call

    def client(self) -> ipp.Client:
        return ipp.Client(profile_dir=str(self.profile_dir), timeout=30)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    profile = tmp_path / "profile_cluster"
    profile.mkdir()
    running = Controller(profile)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster(controller, start_host):
    """The controller, two hosts joined to it (an asyncio host and a poll
    host), and a client that sees both engines."""
    env = {"ZEMBED_CLUSTER": str(controller.engine_file)}
    hosts = [start_host("asyncio", "--name", "farm-a", env=env), start_host("poll", "--name", "farm-b", env=env)]
    client = controller.client()
    try:
        client.wait_for_engines(2, timeout=60)
        yield controller, hosts, client
    finally:
        client.close()


def test_hosts_join_and_every_direct_view_method_reaches_their_main_threads(cluster):
    _, hosts, rc = cluster
    view = rc[:]
    pids = sorted(view.apply_sync(os.getpid))
    assert pids == sorted(h.pid for h in hosts)

    @ipp.interactive  # functions of this module travel by value, as from a notebook
    def on_main_thread() -> bool:
        import threading

        return threading.current_thread() is threading.main_thread()

    assert view.apply_sync(on_main_thread) == [True, True]

    @ipp.interactive
    def frames_so_far() -> int:
        return host.frames  # noqa: F821 - the host's own object, in its namespace

    first = view.apply_sync(frames_so_far)
    assert all(isinstance(n, int) for n in first)
    wait_until(lambda: all(b > a for a, b in zip(first, view.apply_sync(frames_so_far), strict=True)))

    view.execute("doubled = host.frames * 2 > 0", block=True)
    assert view.pull("doubled", block=True) == [True, True]
    view.push({"shared": {"answer": 42}}, block=True)
    assert view.apply_sync(ipp.interactive(lambda: shared["answer"])) == [42, 42]  # noqa: F821
    view.scatter("part", list(range(10)), block=True)
    assert sorted(view.gather("part", block=True)) == list(range(10))
    assert view.map_sync(ipp.interactive(lambda x: x * x), range(6)) == [0, 1, 4, 9, 16, 25]

    printed = view.execute("print('hello from', host.name if hasattr(host, 'name') else 'a host')", block=True)
    assert all("hello from" in out for out in printed.stdout)


def test_a_load_balanced_view_and_errors_come_back_as_from_any_engine(cluster):
    _, hosts, rc = cluster
    lview = rc.load_balanced_view()
    results = lview.map_sync(ipp.interactive(lambda x: (x, __import__("os").getpid())), range(20))
    assert [x for x, _ in results] == list(range(20))
    assert {pid for _, pid in results} <= {h.pid for h in hosts}

    @ipp.interactive
    def fails() -> None:
        raise ValueError("on purpose")

    with pytest.raises(ipp.error.CompositeError) as caught:
        rc[:].apply_sync(fails)
    assert "ValueError" in str(caught.value) and "on purpose" in str(caught.value)
    assert rc[:].apply_sync(ipp.interactive(lambda: 1)) == [1, 1], "the engines serve on after an error"


def test_a_cell_joins_and_leaves_a_cluster_and_status_says_so(controller, start_host, connect):
    host = start_host("asyncio", "--name", "joiner")
    client = connect(host.connection_file)
    # the host put its kernel in its namespace; the profile form, as ipengine takes it
    client.run(f"kernel.join_cluster(profile_dir={str(controller.profile_dir)!r})")
    rc = controller.client()
    try:
        rc.wait_for_engines(1, timeout=60)
        assert rc[:].apply_sync(os.getpid) == [host.pid]
        membership = client.value("kernel.cluster")
        assert membership["state"] == "registered" and membership["engine_id"] == rc.ids[0]
        assert "engine" in client.value("kernel.status()")["cluster"]
        shown = client.run("%zembed").stream()
        assert f"engine {rc.ids[0]} of {controller.engine_file} (registered)" in shown
        listed = subprocess.run([sys.executable, "-m", "zembed", "list"], capture_output=True, text=True, timeout=30)
        line = next(row for row in listed.stdout.splitlines() if row.startswith("joiner"))
        assert line.endswith(f"[engine {rc.ids[0]}, registered]"), listed.stdout
        as_json = subprocess.run(
            [sys.executable, "-m", "zembed", "list", "--json"], capture_output=True, text=True, timeout=30
        )
        (record,) = [r for r in json.loads(as_json.stdout) if r["app"] == "joiner"]
        assert record["cluster"]["engine_id"] == rc.ids[0] and record["cluster"]["controller"] == str(
            controller.engine_file
        )
        client.run("kernel.leave_cluster()")
        wait_until(lambda: not rc.ids, timeout=30, what="the controller dropping the engine that left")
        assert client.value("kernel.cluster") is None
        assert client.value("1 + 1") == 2, "the host's own kernel serves on"
    finally:
        rc.close()


def test_a_bad_cluster_file_is_a_clear_error_and_the_kernel_serves_on(tmp_path, start_host, connect):
    missing = tmp_path / "nowhere" / "ipcontroller-engine.json"
    host = start_host("asyncio", "--name", "lonely", env={"ZEMBED_CLUSTER": str(missing)})
    client = connect(host.connection_file)
    assert client.value("1 + 1") == 2
    outcome = client.run(f"kernel.join_cluster({str(missing)!r})")
    assert outcome.content["ename"] == "ClusterError"
    assert "no controller file" in outcome.content["evalue"]
    both = client.run(f"kernel.join_cluster({str(missing)!r}, profile='default')")
    assert "not both" in both.content["evalue"]
    profile = client.run(f"kernel.join_cluster(profile_dir={str(tmp_path)!r}, cluster_id='farm')")
    assert str(tmp_path / "security" / "ipcontroller-farm-engine.json") in profile.content["evalue"]
    assert client.value("kernel.cluster") is None and client.value("2 + 2") == 4


def test_a_killed_host_is_dropped_at_once_and_registers_again_when_it_returns(cluster, start_host):
    controller, hosts, rc = cluster
    victim = hosts[1]
    os.kill(victim.pid, signal.SIGKILL)  # no goodbye: the nanny tells the controller
    victim.process.wait(10)
    wait_until(lambda: len(rc.ids) == 1, timeout=15, what="the controller dropping the killed host")
    assert rc[:].apply_sync(os.getpid) == [hosts[0].pid], "the other host serves on"
    again = start_host("poll", "--name", "farm-b", env={"ZEMBED_CLUSTER": str(controller.engine_file)})
    wait_until(lambda: len(rc.ids) == 2, timeout=30, what="the restarted host registering again")
    assert sorted(rc[:].apply_sync(os.getpid)) == sorted([hosts[0].pid, again.pid])


def test_a_controller_restart_does_not_disturb_the_hosts_and_they_join_the_new_one(cluster, connect):
    controller, hosts, rc = cluster
    rc.close()
    client = connect(hosts[0].connection_file)
    controller.stop()  # kill -9: no goodbye to the engines
    assert client.value("1 + 1") == 2, "the host's own kernel serves on without its controller"
    controller.start()  # a new file: new ports, a new key
    fresh = controller.client()
    try:
        fresh.wait_for_engines(2, timeout=60)
        assert sorted(fresh[:].apply_sync(os.getpid)) == sorted(h.pid for h in hosts)
        assert client.value("kernel.cluster['state']") == "registered"
    finally:
        fresh.close()


def test_a_running_task_is_interrupted_and_a_queued_one_aborted_without_signalling_the_host(cluster, connect):
    _, hosts, rc = cluster
    target = rc[0]
    engine_pid = target.apply_sync(os.getpid)
    host = next(h for h in hosts if h.pid == engine_pid)

    @ipp.interactive
    def nap() -> str:
        import time

        print("napping", flush=True)
        time.sleep(60)
        return "slept"

    running = target.apply_async(nap)
    queued = target.apply_async(ipp.interactive(lambda: "ran"))
    client = connect(host.connection_file)

    def started() -> bool:  # the client's IO thread fills stdout in as the output arrives
        return "napping" in (running.stdout or "")

    wait_until(started, what="the task starting (its output on the cluster's iopub)")
    rc.abort(queued, targets=[rc.ids[0]], block=True)
    rc.send_signal("SIGINT", targets=[rc.ids[0]], block=True)
    with pytest.raises(ipp.error.RemoteError) as interrupted:
        running.get(timeout=10)
    assert interrupted.value.ename == "KeyboardInterrupt"
    with pytest.raises(ipp.error.TaskAborted):
        queued.get(timeout=10)
    with pytest.raises(ipp.error.RemoteError, match="never signals a host"):
        rc.send_signal("SIGTERM", targets=[rc.ids[0]], block=True)
    assert host.process.poll() is None and client.value("1 + 1") == 2, "the host lives on, unsignalled"
    assert target.apply_sync(ipp.interactive(lambda: "again")) == "again"


def test_a_qt_host_serves_the_cluster_from_its_event_loop(controller, start_host):
    qt_host = start_host("qt", "--name", "qt-engine", env={"ZEMBED_CLUSTER": str(controller.engine_file)})
    rc = controller.client()
    try:
        rc.wait_for_engines(1, timeout=60)

        @ipp.interactive
        def where() -> tuple[int, bool, bool]:
            import threading

            from PySide6 import QtCore

            app = QtCore.QCoreApplication.instance()
            return (
                __import__("os").getpid(),
                threading.current_thread() is threading.main_thread(),
                app is not None and QtCore.QThread.currentThread() is app.thread(),
            )

        # 'host' below is the host's own object, in its namespace (this test's is qt_host)
        assert rc[:].apply_sync(where) == [(qt_host.pid, True, True)]
        before = rc[:].apply_sync(ipp.interactive(lambda: host.frames))[0]  # noqa: F821
        wait_until(lambda: rc[:].apply_sync(ipp.interactive(lambda: host.frames))[0] > before)  # noqa: F821
    finally:
        rc.close()


def test_px_in_ipython_runs_on_every_host(cluster, tmp_path):
    controller, hosts, _ = cluster
    script = tmp_path / "px.ipy"
    script.write_text(
        "import ipyparallel as ipp\n"
        f"rc = ipp.Client(profile_dir={str(controller.profile_dir)!r})\n"
        "rc.wait_for_engines(2, timeout=60)\n"
        "rc[:].activate()\n"
        "%px import os; px_pid = os.getpid()\n"
        "print(sorted(rc[:].pull('px_pid', block=True)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert str(sorted(h.pid for h in hosts)) in done.stdout


class FakeController:
    """The controller's side of the engine protocol, by hand: to send what
    a real controller never would."""

    def __init__(self, directory: Path) -> None:
        import zmq

        from zembed._protocol import Session, new_key

        self.zmq = zmq
        self.context = zmq.Context()
        self.key = new_key()
        self.session = Session(self.key)
        kinds = {"registration": zmq.ROUTER, "control": zmq.ROUTER, "mux": zmq.ROUTER, "task": zmq.ROUTER}
        kinds.update({"iopub": zmq.SUB, "hb_ping": zmq.PUB, "hb_pong": zmq.ROUTER, "broadcast": zmq.ROUTER})
        self.sockets = {}
        ports = {}
        for name, kind in kinds.items():
            sock = self.context.socket(kind)
            sock.linger = 0
            if kind == zmq.ROUTER:
                sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            ports[name] = sock.bind_to_random_port("tcp://127.0.0.1")
            self.sockets[name] = sock
        self.sockets["iopub"].setsockopt(zmq.SUBSCRIBE, b"")
        ports["broadcast"] = [ports["broadcast"]]
        self.engine_file = directory / "ipcontroller-engine.json"
        self.engine_file.write_text(
            json.dumps(
                {"interface": "tcp://127.0.0.1", **ports, "key": self.key.decode(), "signature_scheme": "hmac-sha256"}
            )
        )
        self.identity = b""

    def register(self) -> None:
        frames = self.recv("registration", timeout=20)
        self.identity = frames[0]
        request = self.session.parse(frames[1:])
        assert request.msg_type == "registration_request" and request.content["uuid"].encode() == self.identity
        reply = self.session.serialize("registration_reply", {"status": "ok", "id": 7, "hb_period": 3000})
        self.sockets["registration"].send_multipart([self.identity, *reply])

    def recv(self, name: str, timeout: float = 10) -> list[bytes]:
        sock = self.sockets[name]
        assert sock.poll(int(timeout * 1000)), f"nothing on {name} within {timeout} s"
        return sock.recv_multipart()

    def send_to_engine(self, name: str, frames: list[bytes]) -> None:
        wait_until(lambda: self._try_send(name, frames), what=f"the engine connected to {name}")

    def _try_send(self, name: str, frames: list[bytes]) -> bool:
        try:
            self.sockets[name].send_multipart([self.identity, *frames])
        except self.zmq.ZMQError:  # not connected yet (ROUTER_MANDATORY)
            return False
        return True

    def request(self, msg_type: str, content: dict, buffers: list[bytes] | None = None, name: str = "mux") -> dict:
        frames = self.session.serialize(msg_type, content, idents=[b"client"], buffers=buffers)
        self.send_to_engine(name, frames)
        while True:
            reply = self.session.parse(self.recv(name)[1:])
            if reply.msg_type.endswith("_reply"):
                return {"type": reply.msg_type, "content": reply.content, "metadata": reply.metadata}

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close(linger=0)
        self.context.term()


def test_what_the_controller_side_sends_wrong_never_silences_the_engine(tmp_path, start_host, connect):
    fake = FakeController(tmp_path)
    try:
        host = start_host("asyncio", "--name", "hostile", env={"ZEMBED_CLUSTER": str(fake.engine_file)})
        fake.register()
        assert fake.request("execute_request", {"code": "seen = 1 + 1"})["content"]["status"] == "ok"
        fake.send_to_engine("mux", [b"client", b"not a jupyter message"])
        fake.send_to_engine("mux", [b"client", b"<IDS|MSG>", b"0" * 64, b"{}", b"{}", b"{}", b"{}"])  # a bad signature
        broken = fake.request("apply_request", {}, buffers=[b"not pickled at all"])
        assert broken["content"]["status"] == "error" and broken["metadata"]["status"] == "error"
        unknown = fake.request("frobnicate_request", {})
        assert unknown["type"] == "frobnicate_reply" and "not served" in unknown["content"]["evalue"]
        refused = fake.request("clear_request", {}, name="control")
        assert refused["content"]["status"] == "error" and "its own" in refused["content"]["evalue"]
        assert fake.request("execute_request", {"code": "seen * 21"})["content"]["status"] == "ok"
        fake.sockets["hb_ping"].send(b"ping-1")
        wait_until(lambda: fake.sockets["hb_pong"].poll(0) or fake.sockets["hb_ping"].send(b"ping-1"), what="a pong")
        assert fake.recv("hb_pong")[1] == b"ping-1"
        client = connect(host.connection_file)
        assert client.value("seen") == 2 and host.process.poll() is None, "the host and its own kernel serve on"
    finally:
        fake.close()


def test_hosts_join_a_curve_cluster_whose_messages_are_unsigned(tmp_path, start_host):
    profile = tmp_path / "profile_curve"
    profile.mkdir()
    controller = Controller(profile, env={"IPP_ENABLE_CURVE": "1"})
    controller.start()
    try:
        info = json.loads(controller.engine_file.read_text())
        assert info["curve_serverkey"] and not info["key"], "ipyparallel's Curve mode: encrypted, unsigned"
        hosts = [start_host(loop, "--name", f"curve-{loop}", env={"ZEMBED_CLUSTER": str(controller.engine_file)})
                 for loop in ("asyncio", "poll")]  # fmt: skip
        rc = controller.client()
        try:
            rc.wait_for_engines(2, timeout=60)
            assert sorted(rc[:].apply_sync(os.getpid)) == sorted(h.pid for h in hosts)
            rc[:].push({"secret": "over curve"}, block=True)
            assert rc[:].pull("secret", block=True) == ["over curve", "over curve"]
        finally:
            rc.close()
    finally:
        controller.stop()


def test_an_open_cluster_file_is_refused(tmp_path, start_host, connect):
    """An empty key and no Curve: anyone could run code in the host."""
    fake = FakeController(tmp_path)
    try:
        info = json.loads(fake.engine_file.read_text())
        fake.engine_file.write_text(json.dumps({**info, "key": ""}))
        host = start_host("asyncio", "--name", "open-door")
        client = connect(host.connection_file)
        outcome = client.run(f"kernel.join_cluster({str(fake.engine_file)!r})")
        assert outcome.content["ename"] == "ClusterError" and "never joins an open cluster" in outcome.content["evalue"]
    finally:
        fake.close()
