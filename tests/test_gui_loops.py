"""Qt and Tk hosts: the kernel joins the toolkit's own loop (tests/hosts/host.py
--loop qt|tk), before or after exec()/mainloop() starts, and serves there."""

from __future__ import annotations

import threading
import time

import pytest

from zembed._errors import UsageError

TOOLKIT_HOSTS = [
    pytest.param("qt", (), id="qt-before-exec"),
    pytest.param("qt", ("--start-in-loop", "--auto"), id="qt-in-loop-auto"),
    pytest.param("tk", (), id="tk-before-mainloop"),
    pytest.param("tk", ("--start-in-loop", "--auto"), id="tk-in-loop-auto"),
]


@pytest.fixture
def toolkit_host(request, start_host, display, monkeypatch):
    def start(loop: str, *args: str):
        monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
        monkeypatch.setenv("DISPLAY", display)
        return start_host(loop, "--fps", "100", *args)

    return start


@pytest.mark.parametrize(("loop", "args"), TOOLKIT_HOSTS)
def test_cells_run_on_the_toolkit_thread_while_it_keeps_drawing(toolkit_host, connect, loop, args):
    host = toolkit_host(loop, *args)
    client = connect(host.connection_file)
    info = client.control("kernel_info_request")
    assert info["zembed"]["loop"] == loop  # auto said which it picked
    client.run("import threading")
    assert client.value("threading.get_ident() == host.thread_id") is True
    first = client.value("host.frames")
    deadline = time.monotonic() + 5
    while client.value("host.frames") <= first + 5:  # the toolkit's timer keeps firing between cells
        assert time.monotonic() < deadline
    outcome = client.run("print('from', type(kernel).__name__); 6 * 7")
    assert outcome.stream() == "from Kernel\n" and outcome.result == "42"


@pytest.mark.parametrize(("loop", "args"), TOOLKIT_HOSTS[::2])
def test_interrupt_input_and_busy_in_a_toolkit_host(toolkit_host, connect, loop, args, tmp_path):
    host = toolkit_host(loop, *args)
    client = connect(host.connection_file)
    msg_id = client.kc.execute("import time\nwhile True: time.sleep(0.01)")
    deadline = time.monotonic() + 5
    while not client.control("kernel_info_request")["zembed"]["executing"]:
        assert time.monotonic() < deadline
    client.interrupt()
    assert client.shell_reply(msg_id)["content"]["ename"] == "KeyboardInterrupt"
    assert client.value("host.interrupts_in_host_code") == 0
    # Block the toolkit's thread in host code (a slow frame): busy, but alive.
    started = tmp_path / "blocking"
    client.run(f"import threading, pathlib; blocker = threading.Event(); started = pathlib.Path({str(started)!r})")
    block = "lambda: (started.touch(), blocker.wait(3))"
    if loop == "qt":
        client.run(f"from PySide6.QtCore import QTimer; QTimer.singleShot(0, {block})")
    else:
        client.run(f"import tkinter; tkinter._default_root.after(0, {block})")
    deadline = time.monotonic() + 5
    while not started.exists():  # the host's thread is in its own code now
        assert time.monotonic() < deadline
        time.sleep(0.01)
    waiting = client.kc.execute("'served after the block'")  # kernel work the host does not come back for
    deadline = time.monotonic() + 5
    while client.control("kernel_info_request")["zembed"]["host_busy_seconds"] < 1.0:  # control still answers
        assert time.monotonic() < deadline
    assert client.kc.is_alive()  # the heartbeat too: busy, not dead
    assert client.collect(waiting) and client.shell_reply(waiting)["content"]["status"] == "ok"


def test_auto_and_named_loops_explain_what_is_missing():
    import tkinter

    from PySide6 import QtCore

    from zembed.loops import resolve_loop
    from zembed.loops.qt_loop import QtLoop

    assert QtCore.QCoreApplication.instance() is None  # this test process has no Qt application
    with pytest.raises(UsageError, match="QApplication .* to exist"):
        QtLoop(QtCore)
    assert getattr(tkinter, "_default_root", None) is None  # ... and no Tk root
    with pytest.raises(UsageError, match="tkinter.Tk\\(\\) root"):
        resolve_loop("tk")
    with pytest.raises(UsageError, match="'qt', 'tk'"):
        resolve_loop("wx")


def test_tk_adapter_hands_work_to_the_tk_thread_before_and_after_mainloop(display, monkeypatch):
    """The contract on the adapter alone: call_soon from another thread,
    callbacks run on Tk's thread once its loop turns (update or mainloop)."""
    monkeypatch.setenv("DISPLAY", display)
    import tkinter

    from zembed.loops.tk_loop import TkLoop

    root = tkinter.Tk()
    try:
        adapter = TkLoop(root)
        ran: list[int] = []
        worker = threading.Thread(target=adapter.call_soon, args=(lambda: ran.append(threading.get_ident()),))
        worker.start()
        worker.join()
        assert ran == []  # nothing runs until Tk's loop turns
        root.update()
        assert ran == [threading.get_ident()]
        root.after(2000, root.quit)  # a safety net: the callback below quits first
        threading.Thread(target=adapter.call_soon, args=(root.quit,)).start()
        started = time.monotonic()
        root.mainloop()
        assert time.monotonic() - started < 1.5
        adapter.close()
        adapter.call_soon(lambda: ran.append(0))  # dropped after close
        root.update()
        assert ran == [threading.get_ident()]
    finally:
        root.destroy()


@pytest.mark.parametrize("loop", ["qt", "tk"])
def test_a_cell_that_pumps_the_toolkit_does_not_run_requests_inside_itself(toolkit_host, connect, loop):
    """Regression: processEvents()/update() in a cell re-entered the kernel,
    which ran the next queued request nested inside the running cell."""
    host = toolkit_host(loop)
    client = connect(host.connection_file)
    pump = "QCoreApplication.processEvents()" if loop == "qt" else "tkinter._default_root.update()"
    setup = "from PySide6.QtCore import QCoreApplication" if loop == "qt" else "import tkinter"
    client.run(f"{setup}\nimport time")
    first = client.kc.execute(f"for _ in range(40):\n    {pump}\n    time.sleep(0.01)\nprint('first done')")
    second = client.kc.execute("print('second ran'); kernel.executing")
    replies = [client.kc.get_shell_msg(timeout=10) for _ in range(2)]
    assert [r["parent_header"]["msg_id"] for r in replies] == [first, second]  # in order, not nested
    assert client.collect(first) and client.collect(second)
    assert replies[1]["content"]["execution_count"] == replies[0]["content"]["execution_count"] + 1


def test_qt_host_survives_thousands_of_requests(toolkit_host):
    """Regression: waking Qt by emitting a signal from the socket thread made
    PySide6 drop a reference to True per emit; the host died ("deallocating
    True or False") within about a thousand requests."""
    import zembed

    host = toolkit_host("qt")
    with zembed.connect(host.connection_file) as client:
        for _ in range(3000):
            client.eval("1")
        assert client.eval("host.frames > 0") is True
    assert host.alive()
