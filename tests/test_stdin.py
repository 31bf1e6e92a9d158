"""input() and getpass in host code are answered by the client."""

from __future__ import annotations


def answer_input(client, code, answer, **kwargs):
    msg_id = client.kc.execute(code, allow_stdin=True, **kwargs)
    request = client.kc.get_stdin_msg(timeout=10)
    assert request["msg_type"] == "input_request"
    client.kc.input(answer)
    return request["content"], client.shell_reply(msg_id)


def test_input_prompts_in_the_client(host_and_client):
    _, client = host_and_client
    request, reply = answer_input(client, "name = input('Your name: ')\nprint('hello', name)", "Ada")
    assert request == {"prompt": "Your name: ", "password": False}
    assert reply["content"]["status"] == "ok"
    assert client.value("name") == "Ada"


def test_getpass_is_a_password_prompt(host_and_client):
    _, client = host_and_client
    request, reply = answer_input(client, "import getpass\nsecret = getpass.getpass()", "hunter2")
    assert request["password"] is True
    assert client.value("secret") == "hunter2"


def test_prompt_comes_after_earlier_output(host_and_client):
    _, client = host_and_client
    msg_id = client.kc.execute("print('before')\nx = input('? ')", allow_stdin=True)
    client.kc.get_stdin_msg(timeout=10)
    texts = []
    while not texts:  # the print was flushed before the prompt was sent
        msg = client.kc.get_iopub_msg(timeout=5)
        if msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == msg_id:
            texts.append(msg["content"]["text"])
    assert texts == ["before\n"]
    client.kc.input("x")
    client.shell_reply(msg_id)


def test_input_without_allow_stdin_is_a_clear_error(host_and_client):
    _, client = host_and_client
    out = client.run("input('? ')", allow_stdin=False)
    assert out.content["ename"] == "StdinNotAvailable"
    assert "allow_stdin" in out.content["evalue"]


def test_builtins_restored_after_the_cell(host_and_client):
    _, client = host_and_client
    answer_input(client, "x = input()", "1")
    client.run("import time; time.sleep(0.05)")  # let a host frame look between cells
    assert client.value("host.input_was_builtin_between_cells") is True
