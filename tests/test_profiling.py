"""Profiling magics on pyinstrument, against real hosts."""

from __future__ import annotations

import time


def busy_function_source():
    return "def crunch(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n"


def test_profile_a_statement(host_and_client):
    _, client = host_and_client
    client.run(busy_function_source())
    out = client.run("%profile crunch(300_000)")
    assert out.result == str(sum(i * i for i in range(300_000)))
    tree = out.stream()
    assert "pyinstrument" in tree.lower() or "Recorded" in tree
    assert "crunch" in tree  # the hot function is in the call tree
    html = out.of_type("display_data")[0]["data"]
    assert "<html" in html["text/html"].lower() and "pyinstrument" in html["text/plain"]


def test_profile_a_cell(host_and_client):
    _, client = host_and_client
    client.run(busy_function_source())
    out = client.run("%%profile\nfirst = crunch(100_000)\nsecond = crunch(100_000)")
    assert "crunch" in out.stream() and out.of_type("display_data")
    assert client.value("first == second") is True


def test_profile_host_samples_the_host_while_the_console_stays_usable(start_host, connect):
    host = start_host("asyncio", "--fps", "100", "--work", "20000")
    client = connect(host.connection_file)
    t0 = time.monotonic()
    started = client.run("%profile_host 1.5")
    assert time.monotonic() - t0 < 1.0, "profile_host must not block the console"
    assert "Profiling the host's thread for 1.5 s" in started.stream()
    parent = started.reply["parent_header"]["msg_id"]
    assert client.value("21 * 2") == 42  # usable meanwhile
    report, html = "", None
    deadline = time.monotonic() + 10
    while html is None and time.monotonic() < deadline:
        msg = client.kc.get_iopub_msg(timeout=5)
        if msg["parent_header"].get("msg_id") != parent:
            continue
        if msg["msg_type"] == "stream":
            report += msg["content"]["text"]
        elif msg["msg_type"] == "display_data":
            html = msg["content"]["data"]["text/html"]
    assert html is not None, "no report arrived"
    assert "simulate" in report  # the host's own per-frame work, run by its loop between cells
    assert client.value("host.interrupts_in_host_code") == 0


def test_profile_host_rejects_bad_input_and_overlap(host_and_client):
    _, client = host_and_client
    assert "usage: %profile_host SECONDS" in client.run("%profile_host soon").content["evalue"]
    assert "between 0 and 3600" in client.run("%profile_host -1").content["evalue"]
    client.run("%profile_host 2")
    assert "already" in client.run("%profile_host 2").content["evalue"]
    assert "usage: %profile STATEMENT" in client.run("%profile").content["evalue"]


def test_stopping_mid_profile_leaves_no_profiler_behind(connect):
    import sys

    from conftest import drive_poll_host

    import zembed

    with zembed.start_kernel({}, loop="poll") as kernel:
        drive_poll_host(kernel, connect, lambda client: client.run("%profile_host 60"), timeout=20)
        assert sys.getprofile() is not None  # profiling this (the host's) thread now
    # the with block stopped the kernel on this thread: the profiler is gone
    assert sys.getprofile() is None
