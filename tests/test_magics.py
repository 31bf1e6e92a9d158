"""Magics, as a console user types them, against real hosts."""

from __future__ import annotations

import re


def test_time_prints_and_returns_the_value(host_and_client):
    _, client = host_and_client
    out = client.run("%time sum(range(1000))")
    assert out.result == "499500"
    assert re.search(r"CPU time: .+, wall time: .+", out.stream())
    client.run("%time answer = 42")
    assert client.value("answer") == 42


def test_timeit_line_and_cell(host_and_client):
    _, client = host_and_client
    out = client.run("%timeit -n 50 -r 3 sum(range(100))")
    assert re.search(r"per loop \(mean ± std\. dev\. of 3 runs, 50 loops each\)", out.stream()), out.stream()
    out = client.run("%%timeit -n 10 -r 2 values = list(range(100))\nsorted(values)")
    assert "of 2 runs, 10 loops each" in out.stream()


def test_who_and_whos_list_the_hosts_namespace(host_and_client):
    _, client = host_and_client
    client.run("counter = 3")
    assert set(client.run("%who").stream().split()) >= {"counter", "host", "kernel"}
    assert client.run("%who int").stream().split() == ["counter"]
    table = client.run("%whos").stream()
    assert re.search(r"counter\s+int\s+3", table) and "Variable" in table


def test_zembed_status(host_and_client):
    _, client = host_and_client
    text = client.run("%zembed").stream()
    assert re.search(r"app\s+testhost", text)
    assert re.search(r"clients attached\s+[1-9]", text)
    assert re.search(r"messages handled\s+\d+", text) and "host thread time" in text


def test_magics_inside_blocks_and_strings_left_alone(host_and_client):
    _, client = host_and_client
    out = client.run("total = 0\nfor i in range(3):\n    %time total += i\ntotal")
    assert out.result == "3" and out.stream().count("wall time") == 3
    out = client.run('text = """\n%not_a_magic\n"""\npercent = "100%"\n(text, percent)')
    assert out.result == "('\\n%not_a_magic\\n', '100%')"


def test_unknown_magic_lists_what_exists_and_points_at_the_line(host_and_client):
    _, client = host_and_client
    out = client.run("x = 1\n%nosuch arg")
    assert out.content["ename"] == "MagicError"
    assert "unknown magic %nosuch" in out.content["evalue"] and "%timeit" in out.content["evalue"]
    assert 'File "<In [1]>", line 2' in "\n".join(out.content["traceback"])
    assert "%nosuch arg" in "\n".join(out.content["traceback"])  # the line as typed
    out = client.run("%reverse x")
    assert "%%reverse exists as a cell magic" in out.content["evalue"]


def test_host_registered_magics(host_and_client):
    _, client = host_and_client
    assert int(client.run("%frames").result) > 0
    assert client.run("%%reverse\nfirst\nsecond").result == "'second\\nfirst'"
    listing = client.run("%magic").stream()
    assert "%frames" in listing and "how many frames the host has drawn" in listing and "%%reverse" in listing


def test_console_helpers_understand_magics(host_and_client):
    _, client = host_and_client
    kc = client.kc
    assert client.shell_reply(kc.is_complete("%time x = 1"))["content"]["status"] == "complete"
    assert client.shell_reply(kc.is_complete("%%timeit\nx = 1"))["content"]["status"] == "incomplete"
    reply = kc.complete("%ti", 3, reply=True, timeout=5)["content"]
    assert reply["matches"] == ["%time", "%timeit"] and reply["cursor_start"] == 0
    assert kc.complete("%%rev", 5, reply=True, timeout=5)["content"]["matches"] == ["%%reverse"]
    reply = kc.inspect("%timeit", 7, reply=True, timeout=5)["content"]
    assert reply["found"] and "time a statement over many loops" in reply["data"]["text/plain"]
