"""Finding kernels: live, busy and dead hosts; cleaning; resolving a name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import zembed
from zembed._discovery import clean, find_kernels, list_kernels, resolve


def by_file(records):
    return {str(r.connection_file): r for r in records}


def wait_until_executing(client, seconds=10):
    deadline = time.monotonic() + seconds
    while not client.control("kernel_info_request")["zembed"]["executing"]:
        assert time.monotonic() < deadline, "cell never started"


def test_live_busy_and_dead(start_host, connect):
    live = start_host("asyncio", "--name", "alive")
    busy = start_host("asyncio", "--name", "spinning")
    dead = start_host("asyncio", "--name", "killed")
    client = connect(busy.connection_file)
    client.kc.execute("while True: pass")
    wait_until_executing(client)
    dead.kill()  # SIGKILL: its connection file stays behind
    time.sleep(1.1)  # the spinning host must be away longer than BUSY_AFTER
    records = by_file(list_kernels())
    assert records[live.connection_file].state == "live"
    assert records[live.connection_file].app == "alive" and records[live.connection_file].pid == live.pid
    assert records[busy.connection_file].state == "busy"
    assert records[busy.connection_file].busy_seconds >= 1.0
    assert records[dead.connection_file].state == "dead"
    client.interrupt()


def test_clean_removes_only_dead_files(start_host):
    live = start_host("asyncio", "--name", "keeper")
    dead = start_host("asyncio", "--name", "goner")
    dead.kill()
    removed = clean()
    assert [str(r.connection_file) for r in removed] == [dead.connection_file]
    assert os.path.exists(live.connection_file) and not os.path.exists(dead.connection_file)


def test_dead_by_heartbeat_when_no_pid_is_known(runtime_dir):
    # A foreign kernel's file (no zembed pid) whose ports answer nothing.
    runtime_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "ip": "127.0.0.1",
        "key": "k",
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
    }
    (runtime_dir / "kernel-foreign.json").write_text(json.dumps(info))
    (runtime_dir / "kernel-garbage.json").write_text("{not json")
    records = list_kernels(timeout=0.2)
    assert [(r.connection_file.name, r.state) for r in records] == [("kernel-foreign.json", "dead")]


def test_resolve_by_name_path_and_newest(start_host):
    older = start_host("asyncio", "--name", "app-one")
    newer = start_host("asyncio", "--name", "app-two")
    assert str(resolve("app-one").connection_file) == older.connection_file
    assert str(resolve(older.connection_file).connection_file) == older.connection_file
    assert str(resolve().connection_file) == newer.connection_file  # newest live
    assert str(resolve("two").connection_file) == newer.connection_file  # file-name part


def test_resolve_skips_dead_kernels_of_the_same_name(start_host):
    survivor = start_host("asyncio", "--name", "phoenix")
    crashed = start_host("asyncio", "--name", "phoenix")  # newer, then killed
    crashed.kill()
    assert str(resolve("phoenix").connection_file) == survivor.connection_file


def test_resolve_failure_lists_what_exists(start_host):
    dead = start_host("asyncio", "--name", "lonely")
    dead.kill()
    with pytest.raises(zembed.ConnectionFileError) as failure:
        resolve("nobody")
    message = str(failure.value)
    assert "no live kernel matches 'nobody'" in message and "lonely" in message and "dead" in message


def test_resolve_in_an_empty_directory(runtime_dir):
    with pytest.raises(zembed.ConnectionFileError, match="no kernel connection files"):
        resolve()


def test_zembed_list_command(start_host):
    live = start_host("asyncio", "--name", "listed")
    dead = start_host("asyncio", "--name", "stale")
    dead.kill()
    run = [sys.executable, "-m", "zembed", "list"]
    table = subprocess.run(run, capture_output=True, text=True, timeout=30, check=True).stdout
    assert "listed" in table and "live" in table and "stale" in table and "dead" in table
    cleaned = subprocess.run([*run, "--clean", "--json"], capture_output=True, text=True, timeout=30, check=True)
    assert "removed" in cleaned.stdout.splitlines()[0]
    listing = json.loads(cleaned.stdout.split("\n", 1)[1])
    assert [(k["app"], k["pid"], k["state"]) for k in listing] == [("listed", live.pid, "live")]


def test_probing_leaves_no_threads_behind(start_host):
    import threading

    start_host("asyncio", "--name", "probed")
    before = threading.active_count()
    for _ in range(3):
        assert find_kernels() and list_kernels()[0].state == "live"
    assert threading.active_count() == before
