"""Where an execute round trip's time goes: one execute `1`, traced across
processes, stage by stage, medians over many.

    python benchmarks/trace_execute.py [--executes 500] [--floor] [--gap 0.002] [--code CODE]

``--code "'x' * 10_000_000"`` traces the 10 MB execute_result instead (the
floor answers it with a 10 MB text it has ready).

The host is benchmarks/trace_host.py (bench_host.py's 60 Hz asyncio host
with zembed's request path stamped); the client is pyzmq with
jupyter_client's Session, stamping its send and its receipt of the reply
and of ``idle``.  ``--floor`` traces the floor server the same way
(benchmarks/trace_floor.py), for its budget beside zembed's.  All stamps
are ``time.monotonic_ns()``: one clock for every process on the machine.
Prints the budget (docs/benchmarks.md has it, with what each stage is).
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import zmq
from bench_kernel import HERE, Process, RawClient
from jupyter_client.session import Session


def traced_executes(client: RawClient, count: int, gap: float, code: str = "1") -> list[dict[str, int]]:
    """Client-side stamps of ``count`` executes of ``code``, ``gap`` seconds apart: send, reply, idle."""
    session: Session = client.session
    runs = []
    for _ in range(count):
        msg = session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                              "user_expressions": {}, "allow_stdin": False})  # fmt: skip
        msg_id = msg["header"]["msg_id"]
        stamps = {"client_send": time.monotonic_ns()}
        session.send(client.shell, msg)
        while "client_reply" not in stamps or "client_idle" not in stamps:
            for sock, _ in client.poller.poll(10_000):
                frames = sock.recv_multipart(zmq.NOBLOCK)
                now = time.monotonic_ns()
                _, parts = session.feed_identities(frames)
                received = session.deserialize(parts, content=True)
                if received["parent_header"].get("msg_id") != msg_id:
                    continue
                if sock is client.shell:
                    stamps["client_reply"] = now
                elif received["msg_type"] == "status" and received["content"]["execution_state"] == "idle":
                    stamps["client_idle"] = now
        runs.append(stamps)
        if gap:
            time.sleep(gap)  # between requests: the host's loop goes back to its frames, as between a user's cells
    return runs


Stamp = tuple[int, str, str, str]  # (ns, stage, "begin"/"end", thread)


def window(
    run: dict[str, int], stamps: list[Stamp]
) -> tuple[list[Stamp], dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """The stamps inside one execute's window, and the first and last time of each (stage, edge)."""
    inside = [s for s in stamps if run["client_send"] <= s[0] <= run["client_idle"]]
    first: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {}
    for ns, stage, edge, _thread in inside:
        first.setdefault((stage, edge), ns)
        last[(stage, edge)] = ns
    return inside, first, last


def stages(run: dict[str, int], stamps: list[tuple[int, str, str, str]]) -> dict[str, float] | None:
    """One execute's stages in µs, from the host's stamps inside its window."""
    inside, first, last = window(run, stamps)
    need = [("receive", "begin"), ("parse", "end"), ("call_soon", "begin"), ("run_pending", "begin"),
            ("cell", "begin"), ("cell", "end"), ("flush", "begin"), ("flush", "end")]  # fmt: skip
    if any(key not in first for key in need):
        return None
    # The host's thread queues the request's messages and sends them in
    # one burst from that thread (Outbox.flush; zembed._sockets): busy,
    # execute_input, execute_result, the reply, idle.  A cell that runs
    # for longer than the socket thread's tick has the first ones sent by
    # the tick: the reply is always the burst's last but one.
    cell_begin, cell_end = first[("cell", "begin")], first[("cell", "end")]
    flush_begin, flush_end = first[("flush", "begin")], first[("flush", "end")]
    burst = pairs(inside, "zmq_send", flush_begin, flush_end)
    if len(burst) < 2:
        return None
    reply_sent = burst[-2][1]
    t = {
        "client send -> socket thread reads": first[("receive", "begin")] - run["client_send"],
        "read + verify + parse": first[("parse", "end")] - first[("receive", "begin")],
        "route + queue": first[("call_soon", "begin")] - first[("parse", "end")],
        "hand-off: call_soon to the host running it": first[("run_pending", "begin")] - first[("call_soon", "begin")],
        "busy, execute_input serialized; the cell set up": cell_begin - first[("run_pending", "begin")],
        "the cell (compile, run, capture, the value formatted)": cell_end - cell_begin,
        "  of which the value formatted (repr)": sum(
            end - begin for begin, end in pairs(inside, "format", cell_begin, cell_end)
        ),
        "execute_result, reply and idle serialized": flush_begin - cell_end,
        "  of which execute_result": sum(
            end - begin for begin, end in pairs(inside, "send:execute_result", cell_end, flush_begin)
        ),
        "the burst: the messages not yet sent, sent (five for `1`)": flush_end - flush_begin,
        "  of which zmq sends": sum(end - begin for begin, end in burst),
        "libzmq + client reads the reply (from its send)": run["client_reply"] - reply_sent,
        "total: reply": run["client_reply"] - run["client_send"],
        "total: idle": run["client_idle"] - run["client_send"],
    }
    return {name: ns / 1000 for name, ns in t.items()}


def floor_stages(run: dict[str, int], stamps: list[tuple[int, str, str, str]]) -> dict[str, float] | None:
    """The floor server's stages of one execute, named as zembed's are."""
    inside, first, last = window(run, stamps)
    need = [("parse", "begin"), ("parse", "end"), ("send:execute_reply", "end"), ("send:status", "begin")]
    if any(key not in first for key in need):
        return None
    reply_sent = last[("send:execute_reply", "end")]
    t = {
        "client send -> server reads (libzmq, wake-up, read)": first[("parse", "begin")] - run["client_send"],
        "verify + parse": first[("parse", "end")] - first[("parse", "begin")],
        "busy, execute_input, execute_result, reply: serialized and sent": reply_sent - first[("parse", "end")],
        "  of which execute_result serialized and sent": sum(
            end - begin for begin, end in pairs(inside, "send:execute_result", 0, reply_sent)
        ),
        "  of which zmq sends": sum(end - begin for begin, end in pairs(inside, "zmq_send", 0, reply_sent)),
        "libzmq + client reads the reply": run["client_reply"] - reply_sent,
        "total: reply": run["client_reply"] - run["client_send"],
        "total: idle": run["client_idle"] - run["client_send"],
    }
    return {name: ns / 1000 for name, ns in t.items()}


def pairs(stamps: list[tuple[int, str, str, str]], stage: str, start: int, stop: int) -> list[tuple[int, int]]:
    """(begin, end) of each ``stage`` between ``start`` and ``stop``."""
    begins = [ns for ns, name, edge, _ in stamps if name == stage and edge == "begin" and start <= ns <= stop]
    ends = [ns for ns, name, edge, _ in stamps if name == stage and edge == "end" and start <= ns <= stop]
    return list(zip(begins, ends, strict=False))  # a stage cut by the window's end has no end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executes", type=int, default=500)
    parser.add_argument("--floor", action="store_true", help="trace the floor server (trace_floor.py) instead")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.002,
        help="seconds between requests (0: back to back, as bench_kernel sends them)",
    )
    parser.add_argument("--code", default="1", help="what each traced execute runs (default: 1)")
    args = parser.parse_args()
    host = Process(str(HERE / ("trace_floor.py" if args.floor else "trace_host.py")))
    try:
        client = RawClient(host.info["connection_file"])
        client.wait_ready()
        client.drain()
        for _ in range(50):
            client.execute("1")
        runs = traced_executes(client, args.executes, args.gap, args.code)
        stamps: list[Any] = []
        _, outputs = client.execute("__stamps__" if args.floor else "__import__('__main__').STAMPS")
        for out in outputs:
            if out["msg_type"] == "execute_result":
                stamps = ast.literal_eval(out["content"]["data"]["text/plain"])
        client.close()
    finally:
        host.stop()
    per_stage: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        found = floor_stages(run, stamps) if args.floor else stages(run, stamps)
        if found:
            for name, value in found.items():
                per_stage[name].append(value)
    counted = len(per_stage["total: reply"])
    who = "the floor server" if args.floor else "zembed"
    print(f"{who}: execute `{args.code}`, {counted} of {len(runs)} traced")
    print("(medians, µs; each stage's median, so they need not add up)")
    for name, values in per_stage.items():
        print(f"  {name:64} {statistics.median(values):8.1f}   p90 {statistics.quantiles(values, n=10)[-1]:8.1f}")
    if not counted:
        sys.exit("no execute could be traced")


if __name__ == "__main__":
    main()
