"""The protocol floor: a tight pyzmq loop that answers execute_request with
the same messages a kernel sends (busy, execute_input, execute_result, reply,
idle), signed and JSON-encoded by jupyter_client's Session, and does nothing
else.  No host loop, no code execution: what is left is the protocol's cost.

Prints its connection file path, like a host.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable

import zmq
from jupyter_client.session import Session

# Codes answered with a computed text instead of "1" (trace_floor.py reads its stamps so).
ANSWERS: dict[str, Callable[[], str]] = {}


def main() -> None:
    key = os.urandom(32).hex()
    session = Session(key=key.encode())
    ctx = zmq.Context()
    shell = ctx.socket(zmq.ROUTER)
    iopub = ctx.socket(zmq.PUB)
    shell_port = shell.bind_to_random_port("tcp://127.0.0.1")
    iopub_port = iopub.bind_to_random_port("tcp://127.0.0.1")
    info = {
        "shell_port": shell_port,
        "iopub_port": iopub_port,
        "stdin_port": 0,
        "control_port": 0,
        "hb_port": 0,
        "ip": "127.0.0.1",
        "key": key,
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
    }
    path = os.path.join(tempfile.mkdtemp(), "floor.json")
    with open(path, "w") as f:
        json.dump(info, f)
    print(json.dumps({"connection_file": path, "pid": os.getpid()}), flush=True)
    big = "'" + "x" * 10_000_000 + "'"
    count = 0
    while True:
        idents, msg = session.recv(shell, mode=0)
        parent = msg["header"]
        code = msg["content"].get("code", "")
        count += 1
        session.send(iopub, "status", {"execution_state": "busy"}, parent=parent)
        if msg["header"]["msg_type"] == "execute_request":
            session.send(iopub, "execute_input", {"code": code, "execution_count": count}, parent=parent)
            text = ANSWERS[code]() if code in ANSWERS else big if "10_000_000" in code else "1"
            session.send(
                iopub,
                "execute_result",
                {"execution_count": count, "data": {"text/plain": text}, "metadata": {}},
                parent=parent,
            )
            reply = {"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []}
        elif msg["header"]["msg_type"] == "kernel_info_request":  # what jupyter_client's wait_for_ready reads
            reply = {"status": "ok", "protocol_version": "5.5", "language_info": {"name": "python"}, "banner": ""}
        else:
            reply = {"status": "ok", "matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}}
        session.send(shell, msg["header"]["msg_type"].replace("_request", "_reply"), reply, parent=parent, ident=idents)
        session.send(iopub, "status", {"execution_state": "idle"}, parent=parent)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
