"""CurveZMQ: encrypted kernels, jupyter_client attaching unmodified, an
eavesdropper getting nothing, and a real attach across network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zmq
from jupyter_client.session import Session

import zembed
from zembed._connection import address

ROOT = Path(__file__).resolve().parent.parent
SECRET = "the-launch-codes-0451"


def encrypted_host(start_host):
    """A loopback host that encrypts anyway (``encryption="curve"``)."""
    host = start_host("asyncio", env={"ZEMBED_ENCRYPTION": "curve"})
    return host, json.loads(Path(host.connection_file).read_text())


def plain_subscriber(info: dict, context: zmq.Context) -> zmq.Socket:
    """An eavesdropper who can reach the port but lacks the Curve key."""
    sub = context.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address(info, "iopub"))
    return sub


def received(sock: zmq.Socket, seconds: float) -> list[list[bytes]]:
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            frames.append(sock.recv_multipart())
    return frames


def test_jupyter_client_attaches_to_an_encrypted_kernel_unmodified(start_host, connect):
    host, info = encrypted_host(start_host)
    assert len(info["curve_publickey"]) == 40 and len(info["curve_secretkey"]) == 40  # Z85 keys
    client = connect(host.connection_file)  # a plain BlockingKernelClient.load_connection_file
    out = client.run(f"print({SECRET!r}); 6 * 7")
    assert out.stream() == SECRET + "\n" and out.result == "42"
    info_reply = client.kc.kernel_info(reply=True, timeout=10)["content"]
    assert info_reply["zembed"]["encrypted"] is True
    assert client.kc.is_alive()
    # zembed's own client and the discovery probe speak Curve too
    with zembed.connect(host.connection_file) as ours:
        assert ours.eval("6 * 7") == 42
    from zembed._discovery import list_kernels

    (record,) = [r for r in list_kernels() if str(r.connection_file) == host.connection_file]
    assert record.state == "live"


def test_without_the_curve_key_an_eavesdropper_gets_nothing_and_runs_nothing(start_host, connect, tmp_path):
    host, info = encrypted_host(start_host)
    client = connect(host.connection_file)
    context = zmq.Context()
    marker = tmp_path / "pwned"
    try:
        spy = plain_subscriber(info, context)
        wrong_key = context.socket(zmq.SUB)  # a Curve client that guessed a server key
        wrong_key.linger = 0
        public, secret = zmq.curve_keypair()
        wrong_key.curve_publickey, wrong_key.curve_secretkey = public, secret
        wrong_key.curve_serverkey = zmq.curve_keypair()[0]
        wrong_key.setsockopt(zmq.SUBSCRIBE, b"")
        wrong_key.connect(address(info, "iopub"))
        # Even the HMAC key is not enough: without Curve, a signed request never arrives.
        intruder = context.socket(zmq.DEALER)
        intruder.linger = 0
        intruder.connect(address(info, "shell"))
        session = Session(key=info["key"].encode())
        request = session.msg("execute_request", {"code": f"open({str(marker)!r}, 'w')", "silent": False})
        intruder.send_multipart(session.serialize(request))
        for _ in range(5):
            assert client.run(f"print({SECRET!r})").stream() == SECRET + "\n"
        assert received(spy, 1.0) == [] and received(wrong_key, 0.2) == []
        assert received(intruder, 0.2) == []
        assert not marker.exists()
    finally:
        context.destroy(linger=0)


def test_a_non_loopback_bind_is_encrypted_by_default_and_plain_only_on_request(caplog):
    with zembed.start_kernel({}, ip="0.0.0.0", loop="poll") as kernel:
        assert "curve_publickey" in kernel.connection_info
        assert json.loads(kernel.connection_file.read_text())["curve_secretkey"]
    with pytest.raises(zembed.UsageError, match="without encryption"):
        zembed.start_kernel({}, ip="0.0.0.0", encryption="none", loop="poll")
    with zembed.start_kernel({}, loop="poll") as kernel:
        assert "curve_publickey" not in kernel.connection_info  # loopback: the key file is the boundary


# -- two network namespaces joined by a veth pair ------------------------------------------


CLIENT = textwrap.dedent(
    """
    import sys
    from jupyter_client import BlockingKernelClient
    kc = BlockingKernelClient()
    kc.load_connection_file(sys.argv[1])
    kc.start_channels()
    kc.wait_for_ready(timeout=20)
    out = []
    reply = kc.execute_interactive(sys.argv[2], timeout=20, output_hook=lambda m: out.append(m))
    print(reply["content"]["status"], [m["content"].get("text") for m in out if m["msg_type"] == "stream"])
    kc.stop_channels()
    """
)

SPY = textwrap.dedent(
    """
    import sys, time, zmq
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(sys.argv[1])
    print("listening", flush=True)
    got, deadline = 0, time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        if sub.poll(100):
            sub.recv_multipart()
            got += 1
    print("received", got, flush=True)
    """
)


def test_attach_across_network_namespaces_with_curve(namespaces, tmp_path):
    host_ns, client_ns, host_address = namespaces
    env = {**os.environ, "ZEMBED_IP": host_address, "PYTHONUNBUFFERED": "1"}  # encryption: auto -> Curve
    host = subprocess.Popen(
        ["ip", "netns", "exec", host_ns, sys.executable, str(ROOT / "tests/hosts/host.py"), "--name", "remote"],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert host.stdout is not None
        line = host.stdout.readline().decode()
        connection_file = json.loads(line)["connection_file"]
        info = json.loads(Path(connection_file).read_text())
        assert info["ip"] == host_address and "curve_publickey" in info

        spy = subprocess.Popen(
            ["ip", "netns", "exec", client_ns, sys.executable, "-c", SPY, address(info, "iopub"), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert spy.stdout is not None and spy.stdout.readline().strip() == "listening"
            attached = subprocess.run(
                ["ip", "netns", "exec", client_ns, sys.executable, "-c", CLIENT, connection_file, f"print({SECRET!r})"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert attached.returncode == 0, attached.stderr
            assert attached.stdout.strip() == f"ok [{SECRET + chr(10)!r}]"
            spied, _ = spy.communicate(timeout=30)
        finally:
            spy.kill()
        assert spied.strip().endswith("received 0"), spied

        # The client namespace cannot reach the host's loopback: the link really is the veth.
        unreachable = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                client_ns,
                sys.executable,
                "-c",
                "import socket; s = socket.socket(); s.settimeout(1); "
                f"print(s.connect_ex(('127.0.0.1', {info['shell_port']})))",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert unreachable.stdout.strip() != "0"
    finally:
        host.kill()
        host.wait(10)
