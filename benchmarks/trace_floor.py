"""floor_server.py with its request path stamped, as trace_host.py stamps
zembed's: ``python benchmarks/trace_execute.py --floor`` runs it, so the
floor's budget can be read beside zembed's, stage by stage.  Executing the
code ``__stamps__`` returns the stamps."""

from __future__ import annotations

import sys

import floor_server
import zmq
from jupyter_client.session import Session
from stamps import STAMPS, stamped

stamped(zmq.Socket, "recv_multipart", "receive")
stamped(Session, "deserialize", "parse")
stamped(Session, "send", "send", lambda self, stream, msg_type, *a, **k: msg_type)
stamped(zmq.Socket, "send_multipart", "zmq_send")
floor_server.ANSWERS["__stamps__"] = lambda: repr(STAMPS)

if __name__ == "__main__":
    try:
        floor_server.main()
    except KeyboardInterrupt:
        sys.exit(0)
