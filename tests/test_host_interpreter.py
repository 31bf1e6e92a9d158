"""The kernel leaves the host's interpreter as it found it, even under a
profiler, after cells and after interrupts."""

from __future__ import annotations

import cProfile
import time

import pytest
from conftest import drive_poll_host

import zembed

# The failure mode is a spin in C that a SIGALRM handler never gets to run
# in: the thread method dumps stacks and ends the run instead.
pytestmark = pytest.mark.timeout(60, method="thread")


def test_cells_run_under_a_host_profiler(connect):
    # Regression: clearing a pending interrupt with SetAsyncExc(id, NULL) left
    # CPython's eval breaker signalled; under a profile hook the host then spun.
    profiler = cProfile.Profile()
    with zembed.start_kernel({}, loop="poll") as kernel:
        profiler.enable()
        try:
            value = drive_poll_host(kernel, connect, lambda c: [c.value(f"{i} * 2") for i in range(5)])
        finally:
            profiler.disable()
    assert value == [0, 2, 4, 6, 8]


def test_interrupted_cells_under_a_host_profiler(connect):
    def work(client):
        outcomes = []
        for _ in range(3):
            msg_id = client.kc.execute("while True: pass")
            deadline = time.monotonic() + 10
            while not client.control("kernel_info_request")["zembed"]["executing"]:
                assert time.monotonic() < deadline
            client.interrupt()
            outcomes.append(client.shell_reply(msg_id)["content"].get("ename"))
        outcomes.append(client.value("'after'"))
        return outcomes

    profiler = cProfile.Profile()
    with zembed.start_kernel({}, loop="poll") as kernel:
        profiler.enable()
        try:
            assert drive_poll_host(kernel, connect, work) == ["KeyboardInterrupt"] * 3 + ["after"]
        finally:
            profiler.disable()


def test_late_interrupts_are_spent_inside_the_kernel(connect):
    """Interrupts racing the end of short cells never reach host code."""

    def work(client):
        for _ in range(40):
            msg_id = client.kc.execute("sum(range(2000))")
            client.interrupt()
            client.shell_reply(msg_id)
        return client.value("'ok'")

    reached_host = 0
    with zembed.start_kernel({}, loop="poll") as kernel:

        def frame() -> None:
            nonlocal reached_host
            try:
                kernel.poll()
                sum(range(100))  # host code between cells
            except KeyboardInterrupt:
                reached_host += 1

        value = drive_poll_host(kernel, connect, work, frame)
    assert value == "ok"
    assert reached_host == 0
