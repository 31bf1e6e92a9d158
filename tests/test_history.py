"""Persistent history: per app, across restarts and crashes, bounded, and
a corrupt database moved aside."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from conftest import wait_until

from zembed import _kernel_history
from zembed._kernel_history import History


def tail(client, n: int = 100) -> list[list]:
    return client.kc.history(hist_access_type="tail", n=n, reply=True, timeout=10)["content"]["history"]


def test_history_outlives_the_host_and_serves_every_access_type(start_host, connect):
    first = start_host("asyncio", "--name", "keeper")
    client = connect(first.connection_file)
    for code in ("alpha = 1", "beta = 2", "alpha + beta"):
        client.run(code)
    client.run("host.quit = True")
    assert first.process.wait(10) == 0
    client.close()

    second = start_host("asyncio", "--name", "keeper")
    client = connect(second.connection_file)
    client.run("gamma = 3")
    entries = tail(client)
    assert [e[2] for e in entries] == ["alpha = 1", "beta = 2", "alpha + beta", "host.quit = True", "gamma = 3"]
    old_session, new_session = entries[0][0], entries[-1][0]
    assert new_session == old_session + 1
    previous = client.kc.history(hist_access_type="range", session=-1, start=1, stop=3, reply=True, timeout=10)
    assert [e[1:] for e in previous["content"]["history"]] == [[1, "alpha = 1"], [2, "beta = 2"]]
    found = client.kc.history(hist_access_type="search", pattern="*a = *", unique=True, reply=True, timeout=10)
    assert [e[2] for e in found["content"]["history"]] == ["alpha = 1", "beta = 2", "gamma = 3"]
    with_output = client.kc.history(
        hist_access_type="range", session=old_session, start=3, stop=4, output=True, reply=True, timeout=10
    )
    assert with_output["content"]["history"] == [[old_session, 3, ["alpha + beta", "3"]]]


def test_nothing_acknowledged_is_lost_when_the_host_is_killed(start_host, connect):
    host = start_host("asyncio", "--name", "sudden")
    client = connect(host.connection_file)
    sent = [f"x{i} = {i}" for i in range(200)]
    for code in sent:
        client.run(code)
    os.kill(host.pid, 9)  # right after the last reply: every acknowledged cell must be on disk
    host.process.wait(10)
    client.close()
    again = start_host("asyncio", "--name", "sudden")
    assert [e[2] for e in tail(connect(again.connection_file), 1000)] == sent


def test_history_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(_kernel_history, "COMMIT_DELAY", 0)  # commit_due commits at once
    history = History(tmp_path / "h.sqlite", limit=100)
    for i in range(2500):
        history.append(i + 1, f"cell {i}")
        if i % 7 == 0:
            history.commit_due()  # as the socket thread does after sending
    assert history.query({"hist_access_type": "tail", "n": 1})[0][1:] == [2500, "cell 2499"]
    history.close()
    reopened = History(tmp_path / "h.sqlite", limit=100)
    assert len(reopened) <= 110  # pruned every tenth of the limit
    reopened.close()
    assert os.path.getsize(tmp_path / "h.sqlite") < 1_000_000
    assert not list(tmp_path.glob("h.sqlite-pending-*")), "a clean close leaves no journal"


@pytest.mark.parametrize("damage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 8000])
def test_a_corrupt_database_is_moved_aside_with_a_warning(tmp_path, caplog, damage):
    path = tmp_path / "history.sqlite"
    path.write_bytes(damage)
    history = History(path)
    history.append(1, "after the damage")
    assert history.query({"hist_access_type": "tail", "n": 5}) == [[history.wait_for_session(), 1, "after the damage"]]
    history.close()
    aside = list(tmp_path.glob("history.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damage, "the damaged file is kept for the curious"
    assert "moved to" in caplog.text and history.problem and str(aside[0]) in history.problem
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA quick_check").fetchone() == ("ok",)


def test_the_banner_tells_of_a_history_moved_aside(start_host, connect, tmp_path):
    app_dir = Path(os.environ["ZEMBED_DATA_DIR"]) / "apps" / "damaged"
    app_dir.mkdir(parents=True)
    (app_dir / "history.sqlite").write_bytes(b"garbage" * 1000)
    host = start_host("asyncio", "--name", "damaged")
    client = connect(host.connection_file)
    assert client.value("1 + 1") == 2
    info = client.kc.kernel_info(reply=True, timeout=10)["content"]
    assert "moved to" in info["zembed"]["history"]["problem"]
    assert "moved to" in info["banner"]
    assert [e[2] for e in tail(client)] == ["1 + 1"]


def test_an_unwritable_data_dir_keeps_history_in_memory(tmp_path, caplog):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    history = History(blocked / "history.sqlite")
    history.append(1, "still kept")
    assert history.query({"hist_access_type": "tail", "n": 1})[0][2] == "still kept"
    assert history.problem and "in memory" in history.problem
    history.close()


def test_the_socket_thread_commits_the_journal_soon_after_the_replies(start_host, connect):
    """Replies go out once their entries are journaled; the socket thread
    commits them within ``COMMIT_DELAY`` even when nothing else arrives,
    and empties the journal: another process reads them from SQLite."""
    host = start_host("asyncio", "--name", "committer")
    client = connect(host.connection_file)
    for i in range(3):
        client.run(f"c{i} = {i}")
    database = Path(os.environ["ZEMBED_DATA_DIR"]) / "apps" / "committer" / "history.sqlite"

    def in_database() -> list[str]:
        with sqlite3.connect(database) as reader:
            return [row[0] for row in reader.execute("SELECT source FROM history ORDER BY id")]

    wait_until(lambda: in_database()[-3:] == ["c0 = 0", "c1 = 1", "c2 = 2"], what="the commit")
    (journal,) = database.parent.glob("history.sqlite-pending-*")
    wait_until(lambda: journal.read_bytes().count(b"\n") == 1, what="the journal emptied but for its owner line")


def test_a_locked_database_holds_no_reply_and_loses_nothing_at_a_kill(start_host, connect):
    """Another process holds the history database locked: replies still come
    (each change is in the kernel's journal first), and when the host is
    killed before it could commit, its next start replays the journal."""
    host = start_host("asyncio", "--name", "lockeddisk")
    client = connect(host.connection_file)
    assert client.value("1 + 1") == 2  # the database is open and this entry committed
    database = Path(os.environ["ZEMBED_DATA_DIR"]) / "apps" / "lockeddisk" / "history.sqlite"
    blocker = sqlite3.connect(database, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        sent = [f"locked_{i} = {i}" for i in range(5)]
        for code in sent:
            client.run(code)
        assert client.value("locked_4 * 10") == 40
        journals = list(database.parent.glob("history.sqlite-pending-*"))
        assert len(journals) == 1 and b"locked_4 = 4" in journals[0].read_bytes()
        os.kill(host.pid, 9)
        host.process.wait(10)
        client.close()
    finally:
        blocker.close()  # rolls back: nothing of the killed host reached the database
    again = start_host("asyncio", "--name", "lockeddisk")
    entries = [e[2] for e in tail(connect(again.connection_file), 100)]
    assert entries[-7:] == ["1 + 1", *sent, "locked_4 * 10"]
    assert not [p for p in database.parent.glob("history.sqlite-pending-*") if str(host.pid) in p.name]


def test_history_stays_bounded_when_the_socket_thread_commits(tmp_path, monkeypatch):
    """Commits made by the socket thread (``commit_due``) leave pruning
    to the history's worker thread, which must still happen."""
    monkeypatch.setattr(_kernel_history, "COMMIT_DELAY", 0)
    history = History(tmp_path / "h.sqlite", limit=50)
    history.wait_for_session()  # open
    for i in range(400):
        assert history.reached(history.append(i + 1, f"cell {i}")), "journaled: the reply may go at once"
        history.commit_due()  # as the socket thread does once it has sent the reply
    history.close()  # the worker, or the last commit, prunes what is due
    reopened = History(tmp_path / "h.sqlite", limit=50)
    assert len(reopened) <= 55
    assert reopened.query({"hist_access_type": "tail", "n": 1})[0][1:] == [400, "cell 399"]
    reopened.close()


def test_a_huge_result_keeps_a_bounded_text_in_the_history():
    """The reply carries the whole result; the history keeps its first
    OUTPUT_KEPT characters and says how long it was."""
    from memory import MemoryKernel

    from zembed._kernel_history import OUTPUT_KEPT

    kernel = MemoryKernel()
    try:
        exchange = kernel.ask("execute_request", {"code": "'x' * 2_000_000"})
        assert len(exchange.of_type("execute_result")[0]["data"]["text/plain"]) == 2_000_002  # the repr's quotes
        small = kernel.ask("execute_request", {"code": "40 + 2"})
        assert small.content["status"] == "ok"
        rows = kernel.ask("history_request", {"hist_access_type": "tail", "n": 2, "output": True, "raw": True}).content[
            "history"
        ]
        (_, _, (_, big)), (_, _, (_, answer)) = rows
        assert big.startswith("'" + "x" * (OUTPUT_KEPT - 1)) and big.endswith(
            f"... [2,000,002 characters; the history keeps the first {OUTPUT_KEPT:,}]"
        )
        assert len(big) < OUTPUT_KEPT + 100 and answer == "42"
    finally:
        kernel.close()


def test_changes_wait_out_a_locked_database_and_are_committed_after(tmp_path, monkeypatch):
    """The socket thread's commit finds the database locked by another
    process: the worker waits the lock out and commits; nothing is dropped."""
    monkeypatch.setattr(_kernel_history, "COMMIT_DELAY", 0)
    history = History(tmp_path / "h.sqlite")
    history.wait_for_session()
    blocker = sqlite3.connect(tmp_path / "h.sqlite", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        seqs = [history.append(i + 1, f"while locked {i}") for i in range(3)]
        assert all(history.reached(seq) for seq in seqs), "journaled: the replies may go"
        history.commit_due()  # cannot commit now: the worker takes over
        assert history.committed < seqs[-1]
    finally:
        blocker.close()  # the lock goes; the worker's wait ends
    wait_until(lambda: history.committed >= seqs[-1], what="the worker's commit")
    history.close()
    with sqlite3.connect(tmp_path / "h.sqlite") as reader:
        assert [r[0] for r in reader.execute("SELECT source FROM history")] == [f"while locked {i}" for i in range(3)]
    assert not list(tmp_path.glob("h.sqlite-pending-*"))
