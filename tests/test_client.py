"""The scripting API and the exec/run commands, against real host processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pexpect
import pytest

import zembed


@pytest.fixture
def host(start_host):
    return start_host("asyncio", "--name", "scripted")


def test_execute_returns_outputs_and_result(host):
    with zembed.connect("scripted") as client:
        result = client.execute("print('hello')\nimport sys; sys.stderr.write('warn\\n')\nhost.frames > 0")
        assert result.stdout == "hello\n" and result.stderr == "warn\n"
        assert result.value == "True" and result.execution_count == 1
        seen = []
        client.execute("print('streamed')", on_output=lambda kind, content: seen.append(kind))
        assert seen == ["stream"]


def test_remote_errors_carry_the_remote_traceback(host):
    with zembed.connect(host.connection_file) as client:
        with pytest.raises(zembed.RemoteError) as failure:
            client.execute("def broken():\n    return 1 / 0\nbroken()")
        assert failure.value.ename == "ZeroDivisionError"
        assert "return 1 / 0" in str(failure.value)
        assert client.execute("'still usable'").value == "'still usable'"


def test_eval_and_call_bring_back_python_values(host):
    with zembed.connect("scripted") as client:
        assert client.eval("{'a': [1, 2.5, None], 'b': 'x'}") == {"a": [1, 2.5, None], "b": "x"}
        assert client.eval("host").startswith("<__main__.Host object")  # not JSON-able: its repr
        client.execute("def scale(values, factor=1):\n    return [v * factor for v in values]")
        assert client.call("scale", [1, 2], factor=3) == [3, 6]
        assert client.call("host.signals_unchanged") is True
        with pytest.raises(zembed.RemoteError, match="NameError"):
            client.eval("no_such_name")
        with pytest.raises(ValueError, match="dotted name"):
            client.call("os.system('x')")
        # eval is silent: it does not count as a cell
        assert client.execute("1").execution_count == 2


def test_interrupt_from_another_thread(host):
    with zembed.connect("scripted") as client:
        timer = threading.Timer(0.5, client.interrupt)
        timer.start()
        with pytest.raises(zembed.RemoteError) as failure:
            client.execute("while True: pass")
        assert failure.value.ename == "KeyboardInterrupt"


def test_busy_host_times_out_and_a_dead_one_is_reported(host):
    client = zembed.connect("scripted", timeout=5)
    try:
        with pytest.raises(TimeoutError, match="busy"):
            client.execute(
                "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 3: pass",
                timeout=0.5,
                interrupt_on_timeout=False,
            )
        assert client.kernel_info()["zembed"]["executing"] is True  # control answers meanwhile
        host.kill()
        with pytest.raises(zembed.HostDied):
            client.execute("1", timeout=0.5)
    finally:
        client.close()


def test_several_hosts_from_one_script(start_host):
    start_host("asyncio", "--name", "first")
    start_host("poll", "--name", "second", "--fps", "200")
    with zembed.connect("first") as one, zembed.connect("second") as two:
        one.execute("host.label = 'one'")
        two.execute("host.label = 'two'")
        assert (one.eval("host.label"), two.eval("host.label")) == ("one", "two")


def test_connect_to_nothing_says_what_exists(runtime_dir):
    with pytest.raises(zembed.ConnectionFileError, match="no kernel connection files"):
        zembed.connect("absent")


def zembed_cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "zembed", *args], capture_output=True, text=True, timeout=timeout)


def test_exec_command_exit_codes(host):
    ok = zembed_cli("exec", "scripted", "-c", "print('out')\n6 * 7")
    assert ok.returncode == 0 and ok.stdout == "out\n42\n"
    failed = zembed_cli("exec", "scripted", "-c", "raise ValueError('bad input')")
    assert failed.returncode == 1 and "ValueError: bad input" in failed.stderr
    missing = zembed_cli("exec", "nobody", "-c", "1")
    assert missing.returncode == 2 and "no live kernel matches 'nobody'" in missing.stderr


def test_run_command_streams_a_script(host, tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import time\nfor i in range(3):\n    print('step', i, flush=True)\n    time.sleep(0.3)\n")
    child = pexpect.spawn(
        sys.executable, ["-m", "zembed", "run", "scripted", str(script)], encoding="utf-8", timeout=20
    )
    t0 = time.monotonic()
    child.expect("step 0")
    first = time.monotonic() - t0
    child.expect("step 2")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert first < (time.monotonic() - t0) - 0.4  # step 0 arrived before the script ended
    assert zembed_cli("run", "scripted", str(tmp_path / "missing.py")).returncode == 2


def test_ctrl_c_in_run_interrupts_the_remote_code(host, tmp_path):
    script = tmp_path / "forever.py"
    script.write_text("print('started', flush=True)\nwhile True:\n    pass\n")
    child = pexpect.spawn(
        sys.executable, ["-m", "zembed", "run", "scripted", str(script)], encoding="utf-8", timeout=20
    )
    child.expect("started")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert host.alive()
    with zembed.connect("scripted") as client:
        assert client.kernel_info()["zembed"]["executing"] is False  # the loop was stopped
        assert client.eval("host.interrupts_in_host_code") == 0


def test_async_client_drives_hosts_concurrently(start_host):
    import asyncio

    start_host("asyncio", "--name", "north")
    start_host("poll", "--name", "south", "--fps", "200")

    async def main():
        north, south = await asyncio.gather(zembed.connect_async("north"), zembed.connect_async("south"))
        async with north, south:
            slow = "import time\ntime.sleep(0.6)\nhost.frames >= 0"
            t0 = time.monotonic()
            results = await asyncio.gather(north.execute(slow), south.execute(slow))
            elapsed = time.monotonic() - t0
            values = await asyncio.gather(north.eval("1 + 1"), south.call("host.signals_unchanged"))
            with pytest.raises(zembed.RemoteError, match="ZeroDivisionError"):
                await north.execute("1/0")
            info = await south.kernel_info()
        return [r.value for r in results], elapsed, values, info

    values, elapsed, evaluated, info = asyncio.run(main())
    assert values == ["True", "True"]
    assert elapsed < 1.1  # the two 0.6 s cells ran at the same time
    assert evaluated == [2, True]
    assert info["implementation"] == "zembed"


def test_cancelling_an_async_execute_interrupts_the_host(host):
    import asyncio

    async def main():
        client = await zembed.connect_async("scripted")
        async with client:
            task = asyncio.ensure_future(client.execute("while True: pass"))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            deadline = time.monotonic() + 5
            while (await client.kernel_info())["zembed"]["executing"]:
                assert time.monotonic() < deadline, "the remote loop kept running"
            return await client.eval("'free again'")

    assert asyncio.run(main()) == "free again"
