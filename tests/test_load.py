"""Load: 20 clients executing 500 cells each at once, 10 iopub-only
subscribers, a subscriber that never reads; every reply matched and right,
every output delivered, host memory flat across rounds.

The stalled subscriber shows what a subscriber that stops reading costs:
nothing to the host (iopub never blocks); it loses what exceeds the
kernel's send queue for it (IOPUB_HWM messages) plus its own receive queue.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq
from jupyter_client.session import Session

from zembed._connection import address
from zembed._protocol import DELIMITER

CLIENTS, CELLS, SUBSCRIBERS = 20, 500, 10


def split(frames: list[bytes]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """header, parent header, content: the test trusts its own kernel's signatures."""
    at = frames.index(DELIMITER)
    return json.loads(frames[at + 2]), json.loads(frames[at + 3]), json.loads(frames[at + 5])


class Subscriber(threading.Thread):
    """Reads iopub until told to stop; counts the stream text of each parent."""

    def __init__(self, context: zmq.Context, info: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.socket = context.socket(zmq.SUB)
        self.socket.linger = 0
        self.socket.rcvhwm = 0  # no limit on our side: what is lost must be lost by the kernel
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(address(info, "iopub"))
        self.texts: dict[str, str] = {}
        self.idle: set[str] = set()
        self.ready = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while True:  # until told to stop and nothing more came for 0.1 s
            if not self.socket.poll(100):
                if self.done.is_set():
                    break
                continue
            header, parent, content = split(self.socket.recv_multipart())
            kind = header["msg_type"]
            if kind == "iopub_welcome":
                self.ready.set()
            elif kind == "stream":
                self.texts[parent["msg_id"]] = self.texts.get(parent["msg_id"], "") + content["text"]
            elif kind == "status" and content["execution_state"] == "idle" and parent:
                self.idle.add(parent["msg_id"])
        self.socket.close()


def run_client(context: zmq.Context, info: dict[str, Any], number: int, results: dict[int, Any]) -> None:
    session = Session(key=info["key"].encode())
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address(info, "shell"))
    sent: dict[str, int] = {}
    wrong: list[str] = []
    try:
        for i in range(CELLS):
            message = session.msg(
                "execute_request",
                {"code": f"print('c{number}-{i}')", "user_expressions": {"v": f"{number} * 1000 + {i}"}},
            )
            sent[message["header"]["msg_id"]] = i
            sock.send_multipart(session.serialize(message))
            assert sock.poll(60_000), f"client {number}: no reply to cell {i}"
            reply = session.deserialize(session.feed_identities(sock.recv_multipart())[1])
            value = reply["content"]["user_expressions"]["v"]["data"]["text/plain"]
            if reply["parent_header"]["msg_id"] != message["header"]["msg_id"] or value != str(number * 1000 + i):
                wrong.append(f"cell {i}: {reply['parent_header'].get('msg_id')} {value}")
        results[number] = (sent, wrong)
    except BaseException as exc:  # reported by the test
        results[number] = exc
    finally:
        sock.close()


def one_round(context: zmq.Context, info: dict[str, Any]) -> tuple[float, dict[str, str], list[Subscriber]]:
    subscribers = [Subscriber(context, info) for _ in range(SUBSCRIBERS)]
    for sub in subscribers:
        sub.start()
    for sub in subscribers:
        assert sub.ready.wait(10), "a subscriber got no welcome"
    results: dict[int, Any] = {}
    threads = [threading.Thread(target=run_client, args=(context, info, n, results)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    elapsed = time.monotonic() - began
    expected: dict[str, str] = {}
    for number in range(CLIENTS):
        outcome = results.get(number)
        assert not isinstance(outcome, BaseException) and outcome is not None, outcome
        sent, wrong = outcome
        assert not wrong, f"client {number}: replies not matching their requests: {wrong[:5]}"
        expected.update({msg_id: f"c{number}-{i}\n" for msg_id, i in sent.items()})
    all_idle = set(expected)
    deadline = time.monotonic() + 60
    while any(not all_idle <= sub.idle for sub in subscribers) and time.monotonic() < deadline:
        time.sleep(0.05)  # the last outputs are in flight: subscribers are threads we can only poll
    for sub in subscribers:
        sub.done.set()
    for sub in subscribers:
        sub.join(30)
    return elapsed, expected, subscribers


@pytest.mark.timeout(600)
def test_twenty_clients_ten_subscribers_and_a_stalled_one(start_host, connect):
    host = start_host("asyncio", "--name", "loaded")
    info = json.loads(Path(host.connection_file).read_text())
    context = zmq.Context()
    stalled = context.socket(zmq.SUB)  # subscribes and never reads
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.rcvhwm = 100
    stalled.connect(address(info, "iopub"))
    process = psutil.Process(host.pid)
    memory = []
    try:
        for round_number in (1, 2, 3):
            elapsed, expected, subscribers = one_round(context, info)
            for index, sub in enumerate(subscribers):
                missing = [m for m in expected if sub.texts.get(m) != expected[m]]
                assert not missing, f"subscriber {index} lacks {len(missing)} outputs"
            cells = CLIENTS * CELLS
            client = connect(host.connection_file)
            client.value("__import__('gc').collect()")
            memory.append(process.memory_info().rss)
            client.close()
            print(
                f"round {round_number}: {cells} cells from {CLIENTS} clients in {elapsed:.1f} s "
                f"({cells / elapsed:.0f} cells/s), {SUBSCRIBERS} subscribers each got all "
                f"{len(expected)} outputs; host RSS {memory[-1] / 2**20:.1f} MiB"
            )
        # Round 1 warms up (allocator arenas, the stalled subscriber's queue
        # filling to its HWM).  After that, what may still grow is the replay
        # window (a hash per message, ~0.5 MiB per round here, capped at
        # 65,536 entries): a leak of 200 bytes per cell would be 2 MiB.
        growth = memory[2] - memory[1]
        print(f"host RSS growth from round 2 to round 3: {growth / 2**20:+.1f} MiB")
        assert growth < 2 * 2**20, f"host memory grew by {growth / 2**20:.1f} MiB in the third round"
        assert host.alive()
        kept = 0
        while stalled.poll(500):
            stalled.recv_multipart()
            kept += 1
        published = 3 * CLIENTS * CELLS * 4  # busy, execute_input, stream, idle per cell
        print(f"the stalled subscriber kept {kept} of about {published} messages; the host never waited for it")
        assert kept < published / 2
    finally:
        stalled.close()
        context.destroy(linger=0)
        gc.collect()


def answer(session: Session, sock: zmq.Socket, within: float, what: str) -> dict[str, Any]:
    assert sock.poll(int(within * 1000)), f"no reply to {what} within {within:g} s: a wake-up was lost"
    return session.deserialize(session.feed_identities(sock.recv_multipart())[1])


@pytest.mark.timeout(120)
def test_requests_and_subscribers_are_served_while_another_thread_publishes_nonstop(start_host, connect):
    """A host thread publishing without pause (a comm streaming data) must
    not silence the kernel.  Its messages, queued while the host's thread
    handles a request, once kept whoever sent the queue sending for good
    (the queue grew as fast as it was sent: no subscriber welcomed, no
    request answered); and a send on a socket the socket thread also
    polls can take the wake-up a subscription or a request gave it.
    Every newcomer must get its welcome, and every request of a pipelined
    client its reply, at once."""
    host = start_host("asyncio", "--fps", "200")
    client = connect(host.connection_file)
    client.run(
        "import comm, threading\n"
        "streaming = comm.create_comm(target_name='ticks')\n"
        "sent = 0\n"
        "def stream():\n"
        "    global sent\n"
        "    while not host.quit and sent < 5_000_000:\n"
        "        streaming.send({'n': sent})\n"
        "        sent += 1\n"
        "threading.Thread(target=stream, daemon=True).start()"
    )
    client.close()  # what follows uses bare sockets: a jupyter_client client waits for a quiet iopub to be ready
    info = json.loads(Path(host.connection_file).read_text())
    session = Session(key=info["key"].encode())
    context = zmq.Context()
    shell = context.socket(zmq.DEALER)
    shell.linger = 0
    shell.connect(address(info, "shell"))
    waits: list[float] = []
    try:
        for number in range(3000):
            subscriber = context.socket(zmq.SUB)
            subscriber.linger = 0
            subscriber.setsockopt(zmq.SUBSCRIBE, b"")
            began = time.monotonic()
            subscriber.connect(address(info, "iopub"))
            while answer(session, subscriber, 2.0, f"subscriber {number}")["msg_type"] != "iopub_welcome":
                pass  # the comm's stream, until the welcome
            waits.append(time.monotonic() - began)
            subscriber.close()
        for batch in range(50):  # five at once: replies leave while the next requests arrive
            sent = [session.msg("execute_request", {"code": f"{batch} + {i}"}) for i in range(4)]
            sent.append(session.msg("kernel_info_request", {}))
            began = time.monotonic()
            for message in sent:
                shell.send_multipart(session.serialize(message))
            replies = [answer(session, shell, 2.0, f"batch {batch}") for _ in sent]
            waits.append(time.monotonic() - began)
            assert sorted(r["parent_header"]["msg_id"] for r in replies) == sorted(m["msg_id"] for m in sent)
            assert all(r["content"]["status"] == "ok" for r in replies)
        message = session.msg("execute_request", {"code": "", "user_expressions": {"sent": "sent"}})
        shell.send_multipart(session.serialize(message))
        published = int(
            answer(session, shell, 2.0, "the count")["content"]["user_expressions"]["sent"]["data"]["text/plain"]
        )
        waits.sort()
        late = [w for w in waits if w > 0.1]
        print(
            f"3000 subscribers welcomed and 250 requests answered: median {waits[len(waits) // 2] * 1000:.1f} ms, "
            f"slowest {waits[-1] * 1000:.1f} ms, {len(late)} over 100 ms; {published} comm messages sent meanwhile"
        )
        assert published > 1_000, "the publishing thread did not run alongside"
        # A lost wake-up leaves a newcomer waiting until some other event
        # wakes the socket thread: 100 to 850 ms here, 2 to 20 newcomers of
        # 3000 when a sender does not check; a loaded machine may stall a
        # newcomer or two as long.
        assert len(late) <= 2, f"{len(late)} newcomers waited over 100 ms (the longest {waits[-1]:.2f} s)"
    finally:
        shell.close()
        context.destroy(linger=0)
