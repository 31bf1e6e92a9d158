"""Nothing a client or a host does quietly stops the kernel.

Each test is a defect found by trying zembed from outside; its docstring
says in one line what used to break.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import zmq
from conftest import HOSTS, ROOT, Client, launch_host, wait_until

import zembed
from zembed._connection import address, read_connection_file
from zembed._discovery import find_kernels

# -- a raw signed peer: frames of any shape, signed with the kernel's key ------------------


class RawPeer:
    """DEALER sockets on every channel that send signed frames made of any
    bytes at all (jupyter_client cannot write 100,000 nested arrays)."""

    def __init__(self, connection_file: str | Path) -> None:
        self.info = read_connection_file(connection_file)
        self.key = self.info["key"].encode()
        self.context = zmq.Context()
        self.sockets: dict[str, zmq.Socket[Any]] = {}
        for channel in ("shell", "control", "stdin", "iopub", "hb"):
            sock = self.context.socket(zmq.XSUB if channel == "iopub" else zmq.DEALER)
            sock.linger = 0
            sock.connect(address(self.info, channel))
            self.sockets[channel] = sock
        self.sockets["iopub"].send(b"\x01")  # subscribe to everything

    def sign(self, parts: list[bytes]) -> bytes:
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode()

    def send(self, channel: str, header: bytes, parent: bytes = b"{}", metadata: bytes = b"{}", content: bytes = b"{}"):
        parts = [header, parent, metadata, content]
        self.sockets[channel].send_multipart([b"<IDS|MSG>", self.sign(parts), *parts])

    def reply(self, channel: str, msg_id: str, timeout: float = 10.0) -> dict[str, Any] | None:
        sock = self.sockets[channel]
        deadline = time.monotonic() + timeout
        while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            frames = sock.recv_multipart()
            parts = frames[frames.index(b"<IDS|MSG>") + 2 :][:4]
            parent = json.loads(parts[1])
            if parent.get("msg_id") == msg_id:
                return {"header": json.loads(parts[0]), "parent_header": parent, "content": json.loads(parts[3])}
        return None

    def close(self) -> None:
        self.context.destroy(linger=0)


def header(msg_type: str, **extra: Any) -> tuple[str, bytes]:
    msg_id = uuid.uuid4().hex
    fields = {"msg_id": msg_id, "msg_type": msg_type, "session": "raw", "username": "raw", "version": "5.5"}
    return msg_id, json.dumps({**fields, **extra}).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def serving(client: Client) -> bool:
    return client.value("6 * 7") == 42


# -- 1. one message must never end the socket thread ------------------------------------


def test_deeply_nested_content_does_not_stop_the_kernel(start_host, connect):
    """A signed content frame of 100,000 nested arrays raised RecursionError in
    the stdlib JSON fallback and ended the socket thread for good."""
    host = start_host("asyncio")
    client = connect(host.connection_file)
    peer = RawPeer(host.connection_file)
    try:
        for channel in ("shell", "control", "stdin"):
            for frame in ("header", "parent", "metadata", "content"):
                msg_id, head = header("kernel_info_request")
                parts = {"header": head, "parent": b"{}", "metadata": b"{}", "content": b"{}"}
                parts[frame] = nested(100_000)
                peer.send(channel, **parts)
                if channel != "stdin" and frame != "header":  # identifiable: answered with an error
                    reply = peer.reply(channel, msg_id)
                    assert reply is not None, f"no reply with an unreadable {frame} on {channel}"
                    assert reply["content"]["status"] == "error" and "nests too deeply" in reply["content"]["evalue"]
        assert serving(client)
        msg_id, head = header("kernel_info_request")
        peer.send("control", head)
        assert peer.reply("control", msg_id) is not None, "the kernel no longer answers control"
    finally:
        peer.close()
    assert host.alive()


def test_a_reply_whose_parent_cannot_be_written_back_is_still_sent(start_host, connect):
    """A header nested 1,020 deep parses (orjson reads 1,024 levels) but cannot
    be written back as the reply's parent: the reply was lost."""
    host = start_host("asyncio")
    client = connect(host.connection_file)
    peer = RawPeer(host.connection_file)
    try:
        for channel in ("shell", "control"):
            msg_id, head = header("kernel_info_request")
            peer.send(channel, head[:-1] + b', "deep": ' + nested(1_020) + b"}")
            reply = peer.reply(channel, msg_id)
            assert reply is not None, f"no reply on {channel}"
            assert reply["content"]["status"] == "ok"
            assert reply["parent_header"]["msg_id"] == msg_id and "deep" not in reply["parent_header"]
        assert serving(client)
    finally:
        peer.close()


def test_numbers_of_100000_digits_are_rejected_not_fatal(start_host, connect):
    host = start_host("poll")
    client = connect(host.connection_file)
    peer = RawPeer(host.connection_file)
    try:
        msg_id, head = header("execute_request")
        peer.send("shell", head, content=b'{"code": "1", "silent": ' + b"9" * 100_000 + b"}")
        peer.send("shell", head.replace(b'"5.5"', b"1" + b"0" * 100_000))
        assert serving(client)
    finally:
        peer.close()


def test_when_the_socket_thread_fails_the_host_is_told(tmp_path, caplog):
    """If the socket thread ever ended, the host went on with a dead kernel and
    a connection file that led clients and `zembed list` to a ghost."""
    errors: list[tuple[Any, BaseException]] = []
    kernel = zembed.start_kernel({}, name="failing", loop="poll", on_error=lambda k, e: errors.append((k, e)))
    try:
        file = kernel.connection_file
        assert file.exists() and kernel.running

        def broken() -> None:
            raise RuntimeError("a bug in the socket thread")

        kernel._sockets._flush_outbox = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="zembed"):
            kernel._sockets._wake()
            wait_until(lambda: kernel.failure is not None, what="the failure to be noticed")
            assert not file.exists(), "clients would find a ghost"
            assert not kernel.running
            wait_until(lambda: kernel.poll() or errors, what="on_error on the host's thread")
        assert errors[0][0] is kernel and str(errors[0][1]) == "a bug in the socket thread"
        assert "stopped serving" in caplog.text and "a bug in the socket thread" in caplog.text
        assert find_kernels() == []
    finally:
        kernel.stop()


def test_a_failing_history_commit_does_not_hold_replies_forever(tmp_path):
    kernel = zembed.start_kernel({}, name="histfail", loop="poll")
    try:

        def broken(seq: int) -> bool:
            raise OSError("disk on fire")

        kernel.history.reached = broken  # type: ignore[method-assign]
        from conftest import drive_poll_host

        value = drive_poll_host(kernel, Client, lambda c: c.value("'still' + ' served'"))
        assert value == "still served"
    finally:
        kernel.stop()


# -- 2. the natural asyncio embedding ---------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio-forever", "tornado-start"])
def test_kernel_started_before_the_loop_runs_is_served(start_host, connect, loop):
    """start_kernel(ns) then loop.run_forever() (or IOLoop.current().start())
    fell back to poll mode and no client was ever answered."""
    host = start_host(loop)
    client = connect(host.connection_file)
    assert client.value("host.frames > 0") is True
    assert client.kc.kernel_info(reply=True, timeout=5)["content"]["zembed"]["loop"] == "asyncio"
    assert client.value("host.thread_id == __import__('threading').get_ident()") is True


def test_a_poll_host_that_stops_polling_says_so(monkeypatch, caplog):
    monkeypatch.setattr("zembed._routing.POLL_STALL_AFTER", 0.5)
    kernel = zembed.start_kernel({}, name="stalled", loop="poll")
    client = None
    try:
        with caplog.at_level(logging.WARNING, logger="zembed"):
            client = _raw_kernel_info_client(kernel)
            wait_until(lambda: "has not been polled" in caplog.text, what="the stall warning")
            busy = client()["zembed"]["host_busy_seconds"]
            assert busy >= 0.5
        assert caplog.text.count("has not been polled") == 1  # once per stall
        kernel.poll()
        assert client()["zembed"]["host_busy_seconds"] < 0.5
    finally:
        kernel.stop()


def _raw_kernel_info_client(kernel: zembed.Kernel) -> Any:
    """kernel_info over control, answered by the socket thread alone."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient(connection_file=str(kernel.connection_file))
    kc.load_connection_file()
    kc.start_channels()

    def ask() -> dict[str, Any]:
        msg = kc.session.msg("kernel_info_request", {})
        kc.control_channel.send(msg)
        while True:
            reply = kc.get_control_msg(timeout=5)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]

    kernel.on_stop(kc.stop_channels)
    return ask


# -- 3. discovery finds what Jupyter finds ----------------------------------------------


def test_discovery_finds_connection_files_of_any_name(runtime_dir, start_host):
    """A host passing its own file name (runtime_dir/"myapp.json") was invisible
    to zconsole, zembed.connect and zembed list, but not to jupyter console."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    (runtime_dir / "jpserver-123.json").write_text(json.dumps({"url": "http://localhost:8888/", "token": "x"}))
    (runtime_dir / "broken.json").write_text("{not json")
    (runtime_dir / "kernel-huge.json").write_text(json.dumps({"junk": "x" * (2 << 20)}))
    (runtime_dir / "kernel-badports.json").write_text(
        json.dumps(
            {"ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256"}
            | {f"{c}_port": "nope" for c in ("shell", "iopub", "stdin", "control", "hb")}
        )
    )
    script = (
        "import json, os, sys, time, zembed\n"
        "from zembed._connection import runtime_dir\n"
        "k = zembed.start_kernel({}, name='custom-app', connection_file=str(runtime_dir() / 'myapp.json'))\n"
        "os.write(1, (json.dumps({'connection_file': str(k.connection_file), 'pid': os.getpid()}) + '\\n').encode())\n"
        "while k.running:\n    k.wait(0.1); k.poll()\n"
    )
    path = runtime_dir.parent / "own_file_host.py"
    path.write_text(script)
    host = launch_host(path, env={"ZEMBED_LOOP": "poll"})
    try:
        listing = json.loads(_zembed("list", "myapp", "--json").stdout)
        assert [(r["app"], r["state"], r["matched_by"]) for r in listing] == [("custom-app", "live", "file name")]
        by_app = json.loads(_zembed("list", "custom-app", "--json").stdout)
        assert [r["matched_by"] for r in by_app] == ["app name"]
        every = {Path(r["connection_file"]).name for r in json.loads(_zembed("list", "--json").stdout)}
        assert every == {"myapp.json"}  # server info, broken, huge and bad-port files are skipped
        with zembed.connect("myapp") as client:
            assert client.eval("1 + 1") == 2
        ran = _zembed("exec", "custom-app", "-c", "print('hi from', 6 * 7)")
        assert ran.returncode == 0 and ran.stdout.strip() == "hi from 42"
    finally:
        host.kill()


def _zembed(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zembed", *args], capture_output=True, text=True, timeout=30, cwd=ROOT, **kwargs
    )


@pytest.mark.parametrize("command", [["-m", "zembed", "list"], ["-m", "zconsole", "--list"]])
def test_listing_into_a_closed_pipe_is_quiet(start_host, command):
    """`zembed list | head -2` ended in a BrokenPipeError traceback."""
    start_host("asyncio")
    reader, writer = os.pipe()
    os.close(reader)  # the reader left before anything was written: the write fails
    try:
        done = subprocess.run([sys.executable, *command], stdout=writer, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(writer)
    assert done.stderr.decode() == ""
    assert done.returncode == 141


# -- 4. the demo's restarted host -------------------------------------------------------


def test_children_of_the_demo_launcher_get_default_signal_handling():
    """The launcher ignored SIGINT with SIG_IGN while its console ran; the
    restarted demo host inherited it and ignored the SIGINT asking it to stop."""
    import signal

    from zembed.__main__ import _DemoHost, _ignore

    previous = signal.signal(signal.SIGINT, _ignore)  # what _run_console sets while the console runs
    log = Path(os.environ["ZEMBED_DATA_DIR"]) / "demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    host = _DemoHost("sigdemo", log)
    try:
        ignored = _signal_mask(host.process.pid, "SigIgn")
        assert not ignored & (1 << (signal.SIGINT - 1)), "the host ignores SIGINT"
        assert host.stop() == 0, "SIGINT did not stop the host cleanly"
    finally:
        signal.signal(signal.SIGINT, previous)
        if host.process.poll() is None:
            host.process.kill()


def _signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


# -- 5. private files ---------------------------------------------------------------------


def test_every_file_and_folder_is_private_whatever_the_umask(tmp_path, runtime_dir):
    """The run record's mkdir(parents=True) made the app folder 0755 and
    history.sqlite came out 0644, readable by every local user."""
    data = Path(os.environ["ZEMBED_DATA_DIR"])
    previous = os.umask(0)  # the most permissive: any reliance on the umask shows
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, str(HOSTS / "host.py"), "--loop", "poll", "--name", "perm"],
                stdout=subprocess.PIPE,
                env={**os.environ, "ZEMBED_PERSISTENT_HISTORY": history, "PYTHONUNBUFFERED": "1"},
                cwd=ROOT,
            )
            for history in ("true", "false", "true", "false")
        ]
        try:
            for process in processes:
                assert process.stdout is not None and b"connection_file" in process.stdout.readline()
            with zembed.connect("perm") as client:  # a cell: the cell file and history are written
                client.execute("x = 1")
            paths = [p for p in (*data.rglob("*"), *runtime_dir.rglob("*"))] + [data, runtime_dir]
            assert any(p.name == "history.sqlite" for p in paths) and any(p.suffix == ".log" for p in paths)
            loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths if _too_open(p)}
            assert loose == {}
        finally:
            for process in processes:
                process.kill()
                process.wait(5)
    finally:
        os.umask(previous)


def _too_open(path: Path) -> bool:
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode != (0o700 if path.is_dir() else 0o600)


# -- 6. names and files -------------------------------------------------------------------


def test_two_kernels_with_one_name_in_one_process_each_get_a_file():
    """Both used kernel-zembed-NAME-PID.json: the first was unreachable, and
    stopping it deleted the second's file."""
    first = zembed.start_kernel({}, name="twin", loop="poll")
    second = zembed.start_kernel({}, name="twin", loop="poll")
    try:
        assert first.connection_file != second.connection_file
        assert read_connection_file(first.connection_file)["key"] != read_connection_file(second.connection_file)["key"]
        first.stop()
        assert second.connection_file.exists()
        with pytest.raises(zembed.UsageError, match="already used by another kernel"):
            zembed.start_kernel({}, name="x", loop="poll", connection_file=str(second.connection_file))
        assert second.connection_file.exists() and second.running
    finally:
        first.stop()
        second.stop()


def test_a_stopping_kernel_leaves_another_processes_file_alone(tmp_path):
    kernel = zembed.start_kernel({}, name="owner", loop="poll")
    path = kernel.connection_file
    taken_over = {**read_connection_file(path), "key": "someone-else"}
    path.write_text(json.dumps(taken_over))  # another process was given the same path meanwhile
    kernel.stop()
    assert path.exists() and read_connection_file(path)["key"] == "someone-else"


@pytest.mark.parametrize(
    ("name", "error"),
    [("x" * 300, "at most 128"), ("a\nb", "control characters"), ("   ", "blank")],
)
def test_bad_names_are_usage_errors(name, error):
    """A 300-character name ended in a raw OSError (file name too long)."""
    with pytest.raises(zembed.UsageError, match=error):
        zembed.start_kernel({}, name=name, loop="poll")


def test_names_keep_their_letters_in_file_names():
    """ünï became "n" in file names (only ASCII letters were kept)."""
    kernel = zembed.start_kernel({}, name="ünï", loop="poll")
    try:
        assert "ünï" in kernel.connection_file.name
        assert kernel.app_dir.name == "ünï"
        assert find_kernels()[0].app == "ünï"
    finally:
        kernel.stop()
    long_one = zembed.start_kernel({}, name="y" * 128, loop="poll")
    other = zembed.start_kernel({}, name="y" * 127 + "z", loop="poll")
    try:
        assert len(long_one.connection_file.name.encode()) < 120
        assert long_one.app_dir != other.app_dir  # shortened names stay apart
    finally:
        long_one.stop()
        other.stop()


def test_an_unnamed_kernel_is_named_after_its_program(tmp_path, connect):
    """Unnamed kernels all shared the app name "zembed": one program's crash
    report was announced to another program."""
    script = tmp_path / "inventory_tool.py"
    script.write_text((HOSTS / "host.py").read_text())
    host = launch_host(script, "--loop", "asyncio", "--name", "")
    try:
        info = connect(host.connection_file).kc.kernel_info(reply=True, timeout=5)["content"]
        assert info["zembed"]["app"] == "inventory_tool"
        assert "app name 'inventory_tool' is the host program's name" in info["banner"]
        assert "inventory_tool" in Path(host.connection_file).name
    finally:
        host.kill()


def test_a_crashed_hosts_connection_file_is_removed_by_the_next_run(start_host, runtime_dir):
    """After a crash the dead file stayed, and `jupyter console --existing APP`
    picked it and hung with no output."""
    first = start_host("asyncio", "--name", "phoenix")
    first.kill()
    assert Path(first.connection_file).exists()  # nobody removed it: the host was killed
    second = start_host("asyncio", "--name", "phoenix")
    assert not Path(first.connection_file).exists()
    assert [r.connection_file.name for r in find_kernels()] == [Path(second.connection_file).name]


# -- 8. smaller surprises -----------------------------------------------------------------


def test_a_namespace_without_name_runs_cells_as_main():
    """Cells saw __name__ == 'builtins': classes defined in a cell claimed
    module builtins."""
    namespace: dict[str, Any] = {"scene": [1, 2]}
    kernel = zembed.start_kernel(namespace, name="named", loop="poll")
    try:
        from conftest import drive_poll_host

        module = drive_poll_host(kernel, Client, lambda c: c.value("class Thing: pass\nThing.__module__"))
        assert module == "__main__"
        assert set(namespace) - {"scene", "Thing", "_"} <= {"__name__", "__builtins__"}
        assert namespace["__name__"] == "__main__"
    finally:
        kernel.stop()
    own = {"__name__": "myhost"}
    kernel = zembed.start_kernel(own, name="named2", loop="poll")
    kernel.stop()
    assert own["__name__"] == "myhost"


def test_a_client_timeout_interrupts_the_cell(start_host):
    """Client.execute(timeout=1) raised TimeoutError but left the cell running:
    the next call waited behind it."""
    host = start_host("asyncio")
    with zembed.connect(host.connection_file) as client:
        with pytest.raises(TimeoutError, match="the cell was interrupted"):
            client.execute("import time; time.sleep(60)", timeout=1)
        started = time.monotonic()
        assert client.eval("1 + 1") == 2
        assert time.monotonic() - started < 2
        with pytest.raises(TimeoutError, match="still runs in the host"):
            client.execute("import time; time.sleep(1.5); done = True", timeout=0.5, interrupt_on_timeout=False)
        assert client.eval("done", timeout=10) is True  # it did run to the end


def test_kernel_info_says_whose_cell_waits_for_input(start_host, connect):
    """zconsole showed no notice while another client's cell waited in input()."""
    from zconsole._liveness import waiting_reason

    host = start_host("asyncio")
    first, second = connect(host.connection_file), connect(host.connection_file)
    msg_id = first.kc.execute("answer = input('name? ')", allow_stdin=True)
    first.kc.get_stdin_msg(timeout=10)  # the prompt reached the first client
    status = second.control("kernel_info_request")["zembed"]
    running = status["running_cell"]
    assert running["session"] == first.kc.session.session and running["waiting_for_input"] is True
    reason, busy = waiting_reason(status, second.kc.session.session)
    assert reason is not None and "waits for input from that client" in reason and not busy
    first.kc.input("zembed")
    first.shell_reply(msg_id)
    assert second.value("answer") == "zembed"
    assert second.control("kernel_info_request")["zembed"]["running_cell"] is None


def test_waiting_reason_names_a_poll_host_that_does_not_poll(monkeypatch):
    from zconsole._liveness import waiting_reason

    kernel = zembed.start_kernel({}, name="nopoll", loop="poll")
    try:
        ask = _raw_kernel_info_client(kernel)
        status = wait_until(lambda: (s := ask()["zembed"])["host_busy_seconds"] >= 1.1 and s, what="1 s unpolled")
        reason, busy = waiting_reason(status, "not-the-runner")
        assert busy and reason is not None and "has not called kernel.poll()" in reason
    finally:
        kernel.stop()


def test_threads_do_not_outlive_a_stop():
    before = set(threading.enumerate())
    kernel = zembed.start_kernel({}, name="threads", loop="poll")
    kernel.stop()
    wait_until(lambda: set(threading.enumerate()) <= before, what="the kernel's threads to end")
