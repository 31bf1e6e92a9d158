"""execute_request against real host processes, with jupyter_client as the peer."""

from __future__ import annotations

import pytest


def test_result_and_shared_namespace(host_and_client):
    host, client = host_and_client
    out = client.run("def grow(n):\n    return base + n\nbase = 40")
    assert out.content["status"] == "ok"
    assert out.result is None
    out = client.run("grow(2)")
    assert out.result == "42"
    assert out.content["execution_count"] == 2
    # execute_input is broadcast with the code and the count
    assert out.of_type("execute_input") == [{"code": "grow(2)", "execution_count": 2}]
    # busy first, idle last
    assert out.outputs[0] == ("status", {"execution_state": "busy"})
    assert out.outputs[-1] == ("status", {"execution_state": "idle"})


def test_user_code_runs_on_host_thread(host_and_client):
    _, client = host_and_client
    assert client.value("__import__('threading').get_ident() == host.thread_id") is True


def test_host_sees_changes_made_by_cells(host_and_client):
    _, client = host_and_client
    client.run("host.frames = -1000")
    assert client.value("host.frames < 0") is True  # the host's own object was changed


def test_error_is_published_once_with_traceback(host_and_client):
    _, client = host_and_client
    out = client.run("def f():\n    return 1 / 0\nf()")
    assert out.content["status"] == "error"
    assert out.content["ename"] == "ZeroDivisionError"
    errors = out.of_type("error")
    assert len(errors) == 1
    tb = "\n".join(errors[0]["traceback"])
    assert "return 1 / 0" in tb  # the cell's source line is shown
    assert 'File "<In [1]>", line 3' in tb
    assert "zembed/_" not in tb and "zembed\\_" not in tb  # none of the kernel's own frames


def test_syntax_error(host_and_client):
    _, client = host_and_client
    out = client.run("x = = 1")
    assert out.content["ename"] == "SyntaxError"
    assert len(out.of_type("error")) == 1


def test_rich_result_mime_types(host_and_client):
    _, client = host_and_client
    client.run(
        "class Rich:\n"
        "    def __repr__(self): return 'Rich()'\n"
        "    def _repr_html_(self): return '<b>rich</b>'\n"
        "    def _repr_png_(self): return b'\\x89PNG'\n"
        "    def _repr_markdown_(self): raise RuntimeError('broken repr is skipped')\n"
    )
    data = client.run("Rich()").of_type("execute_result")[0]["data"]
    assert data["text/plain"] == "Rich()"
    assert data["text/html"] == "<b>rich</b>"
    assert data["image/png"] == "iVBORw=="  # base64
    assert "text/markdown" not in data


def test_silent_publishes_nothing_and_does_not_count(host_and_client):
    _, client = host_and_client
    client.run("1")
    out = client.run("2", silent=True)
    assert out.of_type("execute_input") == [] and out.result is None
    assert client.run("3").content["execution_count"] == 2


def test_store_history_false_does_not_count(host_and_client):
    _, client = host_and_client
    client.run("1")
    out = client.run("5", store_history=False)
    assert out.result == "5"
    assert client.run("3").content["execution_count"] == 2


def test_user_expressions(host_and_client):
    _, client = host_and_client
    out = client.run("a = 6", user_expressions={"double": "a * 2", "bad": "undefined_name"})
    expressions = out.content["user_expressions"]
    assert expressions["double"] == {"status": "ok", "data": {"text/plain": "12"}, "metadata": {}}
    assert expressions["bad"]["status"] == "error" and expressions["bad"]["ename"] == "NameError"


def test_stop_on_error_aborts_queued_executes(host_and_client):
    _, client = host_and_client
    kc = client.kc
    first = kc.execute("import time; time.sleep(0.3); 1/0")
    queued = [kc.execute(f"ran_{i} = True") for i in range(3)]
    assert client.shell_reply(first)["content"]["status"] == "error"
    statuses = [client.shell_reply(m)["content"]["status"] for m in queued]
    assert statuses == ["aborted"] * 3
    assert client.value("[n for n in globals() if n.startswith('ran_')]") == []
    # and the kernel keeps serving afterwards
    assert client.run("'still here'").result == "'still here'"


def test_stop_on_error_false_runs_the_rest(host_and_client):
    _, client = host_and_client
    kc = client.kc
    first = kc.execute("import time; time.sleep(0.2); 1/0", stop_on_error=False)
    after = kc.execute("ran_after = True")
    assert client.shell_reply(first)["content"]["status"] == "error"
    assert client.shell_reply(after)["content"]["status"] == "ok"


def test_display_update_and_clear_output(host_and_client):
    _, client = host_and_client
    out = client.run(
        "import zembed\n"
        "print('before')\n"
        "h = zembed.display('first', display_id=True)\n"
        "h.update('second')\n"
        "zembed.clear_output(wait=True)\n"
        "print('after')"
    )
    kinds = [t for t, _ in out.outputs if t != "status"]
    assert kinds == ["execute_input", "stream", "display_data", "update_display_data", "clear_output", "stream"]
    shown = out.of_type("display_data")[0]
    updated = out.of_type("update_display_data")[0]
    assert shown["data"]["text/plain"] == "'first'" and updated["data"]["text/plain"] == "'second'"
    assert shown["transient"]["display_id"] == updated["transient"]["display_id"]
    assert out.of_type("clear_output") == [{"wait": True}]


def test_display_outside_a_cell_prints_in_host(start_host, connect):
    host = start_host("asyncio")
    client = connect(host.connection_file)
    # A host callback calling zembed.display between cells prints, and is not broadcast.
    client.run("import zembed, asyncio\nasyncio.get_running_loop().call_soon(zembed.display, 'from-host-code')")
    out = client.run("'next cell'")
    assert all("from-host-code" not in str(c) for _, c in out.outputs)
    client.run("host.quit = True")
    assert "'from-host-code'" in host.read_stdout()


def test_exit_in_a_cell_detaches_the_client_not_the_host(host_and_client):
    host, client = host_and_client
    out = client.run("exit()")
    assert out.content["status"] == "ok"
    assert out.content["payload"] == [{"source": "ask_exit", "keepkernel": True}]
    assert client.run("'host alive'").result == "'host alive'"
    assert host.alive()


def test_many_executes_in_order(host_and_client):
    _, client = host_and_client
    ids = [client.kc.execute(f"seq = globals().get('seq', []) + [{i}]") for i in range(50)]
    for msg_id in ids:
        assert client.shell_reply(msg_id)["content"]["status"] == "ok"
    assert client.value("seq") == list(range(50))


@pytest.mark.parametrize("loop", ["callable", "tornado"])
def test_other_loops_serve(loop, start_host, connect):
    host = start_host(loop, "--fps", "200")
    client = connect(host.connection_file)
    assert client.value("__import__('threading').get_ident() == host.thread_id") is True
    info = client.kc.kernel_info(reply=True, timeout=5)["content"]
    assert info["zembed"]["loop"] == ("asyncio" if loop == "tornado" else "callable")


def test_cells_do_not_inherit_the_kernels_future_imports(host_and_client):
    # Regression: cells were compiled with zembed's `from __future__ import annotations`.
    _, client = host_and_client
    client.run("def f(x: int): pass")
    assert client.value("f.__annotations__['x'] is int") is True


def test_display_from_a_thread_the_cell_started(host_and_client):
    _, client = host_and_client
    out = client.run(
        "import threading, zembed\n"
        "t = threading.Thread(target=zembed.display, args=('from a worker',))\n"
        "t.start(); t.join()"
    )
    assert [c["data"]["text/plain"] for c in out.of_type("display_data")] == ["'from a worker'"]


def test_top_level_await_says_what_to_do(host_and_client):
    _, client = host_and_client
    out = client.run("import asyncio\nawait asyncio.sleep(0)")
    assert out.content["ename"] == "SyntaxError"
    assert "ensure_future" in out.content["evalue"]
