"""Hostile and broken input on every socket: nothing unsigned runs, nothing
crashes, legitimate clients keep being served."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import zmq
from jupyter_client.session import Session

from zembed._protocol import DELIMITER


@pytest.fixture
def target(start_host, connect, tmp_path):
    host = start_host("asyncio")
    info = json.loads(Path(host.connection_file).read_text())
    client = connect(host.connection_file)
    marker = tmp_path / "pwned"
    ctx = zmq.Context()
    sockets = {}
    for channel in ("shell", "control", "stdin"):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://{info['ip']}:{info[f'{channel}_port']}")
        sockets[channel] = sock
    yield host, info, client, marker, sockets
    for sock in sockets.values():
        sock.close()
    ctx.term()


def evil_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('x')"


def assert_still_serving(client):
    assert client.value("6 * 7") == 42


def test_wrong_missing_and_replayed_signatures_never_execute(target):
    host, info, client, marker, sockets = target
    right = Session(key=info["key"].encode())
    wrong = Session(key=b"0" * 64)
    for channel in ("shell", "control"):
        msg = wrong.msg("execute_request", {"code": evil_code(marker), "silent": False})
        sockets[channel].send_multipart(wrong.serialize(msg))
        unsigned = right.serialize(right.msg("execute_request", {"code": evil_code(marker)}))
        unsigned[1] = b""
        sockets[channel].send_multipart(unsigned)
    # replay: a correctly signed request, captured and sent again after the marker is removed
    frames = right.serialize(right.msg("execute_request", {"code": evil_code(marker)}))
    sockets["shell"].send_multipart(frames)
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the genuine request should have run once"
    marker.unlink()
    sockets["shell"].send_multipart(frames)
    assert_still_serving(client)
    time.sleep(0.2)
    assert not marker.exists(), "a replayed or badly signed message was executed"


@pytest.mark.parametrize(
    "frames",
    [
        [b"no delimiter at all"],
        [DELIMITER],
        [DELIMITER, b"sig", b"{}", b"{}"],
        [DELIMITER, b"sig", b"\xff\xfe", b"{", b"[]", b"null"],
        [b""] * 2000,
    ],
    ids=["no-delimiter", "only-delimiter", "truncated", "garbage-json", "many-frames"],
)
def test_malformed_frames_on_every_socket(target, frames):
    host, info, client, marker, sockets = target
    for sock in sockets.values():
        sock.send_multipart(frames)
    assert_still_serving(client)
    assert host.alive()


def test_signed_wrong_types_get_error_replies(target):
    host, info, client, marker, sockets = target
    session = Session(key=info["key"].encode())
    for content in ({"code": 42}, {"code": ["x"]}, {}, {"code": "1", "user_expressions": "nope"}):
        sockets["shell"].send_multipart(session.serialize(session.msg("execute_request", content)))
        assert sockets["shell"].poll(5000)
        reply = session.deserialize(session.feed_identities(sockets["shell"].recv_multipart())[1])
        assert reply["content"]["status"] == "error", content
    assert_still_serving(client)


def test_oversized_frames_are_refused(start_host, connect):
    host = start_host("asyncio")
    info = json.loads(Path(host.connection_file).read_text())
    client = connect(host.connection_file)
    session = Session(key=info["key"].encode())
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    try:
        big = "x" * (65 * 1024 * 1024)  # above the 64 MiB default limit
        sock.send_multipart(session.serialize(session.msg("execute_request", {"code": f"huge = {big!r}"})))
        time.sleep(0.5)
        assert client.value("'huge' in globals()") is False
        assert host.alive()
    finally:
        sock.close()
        ctx.term()


def test_odd_iopub_subscriptions(target):
    host, info, client, marker, sockets = target
    ctx = zmq.Context()
    try:
        for topic in (b"", b"\xff\xfe", b"x" * 10000, b"kernel."):
            sub = ctx.socket(zmq.SUB)
            sub.linger = 0
            sub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
            sub.setsockopt(zmq.SUBSCRIBE, topic)
            sub.close()
    finally:
        ctx.term()
    assert_still_serving(client)


def test_every_subscriber_gets_a_welcome(target):
    host, info, client, marker, sockets = target
    ctx = zmq.Context()
    subs = []
    try:
        for _ in range(3):
            sub = ctx.socket(zmq.SUB)
            sub.linger = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
            subs.append(sub)
        for sub in subs:
            assert sub.poll(5000), "no iopub_welcome"
            reader = Session(key=info["key"].encode())  # each subscriber checks replays on its own
            msg = reader.deserialize(reader.feed_identities(sub.recv_multipart())[1])
            assert msg["msg_type"] == "iopub_welcome" and msg["content"] == {"subscription": ""}
    finally:
        for sub in subs:
            sub.close()
        ctx.term()


def test_rejections_are_logged_at_a_bounded_rate(start_host, tmp_path):
    import subprocess
    import sys

    from conftest import HOSTS

    log_path = tmp_path / "host.err"
    with open(log_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(HOSTS / "host.py"), "--loop", "asyncio"], stdout=subprocess.PIPE, stderr=err
        )
        try:
            info = json.loads(Path(json.loads(process.stdout.readline())["connection_file"]).read_text())
            ctx = zmq.Context()
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
            for _ in range(500):
                sock.send_multipart([DELIMITER, b"bad", b"{}", b"{}", b"{}", b"{}"])
            session = Session(key=info["key"].encode())
            sock.send_multipart(session.serialize(session.msg("kernel_info_request", {})))
            assert sock.poll(10000)  # still serving after the flood
            sock.close()
            ctx.term()
        finally:
            process.kill()
            process.wait()
    lines = [line for line in log_path.read_text().splitlines() if "rejected a message" in line]
    assert 1 <= len(lines) <= 20


def test_the_frame_limit_is_configurable(connect):
    import threading

    import zembed

    with zembed.start_kernel({}, loop="poll", max_message_bytes=4096) as kernel:
        info = kernel.connection_info
        session = Session(key=info["key"].encode())
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        stop = threading.Event()

        def host_loop() -> None:
            while not stop.is_set():
                kernel.poll()
                stop.wait(0.002)

        pump = threading.Thread(target=host_loop)
        pump.start()
        try:
            oversized = {"code": "big = '" + "x" * 8000 + "'"}
            sock.send_multipart(session.serialize(session.msg("execute_request", oversized)))
            time.sleep(0.3)  # nothing to wait on: a refused frame produces no event
            client = connect(str(kernel.connection_file))
            assert client.value("'big' in globals()") is False
            assert client.value("len('small')") == 5  # messages under the limit are served
        finally:
            stop.set()
            pump.join()
            sock.close()
            ctx.term()
