"""A host engine's nanny: tells the controller at once that the host died.

Heartbeats alone take the controller about 35 s to drop an engine whose
process is gone; ipengine starts a "nanny" process for that.  ipyparallel's
own nanny also relays control messages and turns ``signal_request`` into a
signal to the engine's process, which a host must never receive, so zembed
starts this smaller one instead: it reads the controller's registration
address and key from its stdin (never argv or the environment), then waits
on that pipe.  The pipe closes when the host's process ends, however it
ends (kill -9 included): the nanny sends ``unregistration_request`` for
the host's engine id, signed with the controller's key, and exits.  A host
that leaves the cluster itself writes ``q`` first: the nanny exits without
a word.

It runs in a session of its own, so a terminal's Ctrl-C aimed at the host
does not reach it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


def start(registration_url: str, key: str, engine_id: int, curve_serverkey: str | None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "zembed._nanny"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    assert process.stdin is not None
    process.stdin.write(
        json.dumps(
            {"registration": registration_url, "key": key, "id": engine_id, "curve_serverkey": curve_serverkey}
        ).encode()
        + b"\n"
    )
    process.stdin.flush()
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """The host leaves on purpose: the nanny goes quietly."""
    try:
        if process.stdin is not None:
            process.stdin.write(b"q")
            process.stdin.close()
    except OSError:  # it is gone already
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def main() -> None:
    stdin = sys.stdin.buffer
    settings: dict[str, Any] = json.loads(stdin.readline())
    if stdin.read(1) == b"q":  # blocks until the host writes, or its process ends
        return
    import zmq

    from zembed._protocol import cluster_session

    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 3000  # the message must get out before this process ends
    if settings.get("curve_serverkey"):
        sock.curve_serverkey = settings["curve_serverkey"].encode("ascii")
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    sock.connect(settings["registration"])
    session = cluster_session({"key": settings["key"]}, f"zembed-nanny-{os.getpid()}")
    sock.send_multipart(session.serialize("unregistration_request", {"id": settings["id"]}))
    sock.close()
    context.term()


if __name__ == "__main__":
    main()
