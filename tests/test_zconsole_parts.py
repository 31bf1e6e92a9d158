"""zconsole's pure parts: the local completeness rule, rendering, history."""

from __future__ import annotations

import base64
import json

from zconsole._console_history import ConsoleHistory
from zconsole._editing import help_request, local_is_complete
from zconsole._render import Renderer


def test_local_rule_matches_python():
    assert local_is_complete("x = 1") == ("complete", "")
    assert local_is_complete("for i in range(3):") == ("incomplete", "    ")
    assert local_is_complete("if x:\n    if y:") == ("incomplete", "        ")
    assert local_is_complete("f(1,") == ("incomplete", "")
    assert local_is_complete("x = = 1")[0] == "invalid"
    assert local_is_complete("%timeit x") == ("complete", "")
    assert local_is_complete("%%timeit\nx") == ("incomplete", "")  # a cell magic ends at a blank line
    assert local_is_complete("%%timeit\nx\n") == ("complete", "")


def test_help_requests_are_told_from_code():
    assert help_request("app.world?") == ("app.world", 0)
    assert help_request("??app.world") == ("app.world", 1)
    assert help_request("%timeit?") == ("%timeit", 0)
    assert help_request("app.world") is None
    assert help_request("?x?") is None  # ambiguous: left to the kernel as code
    assert help_request("print('why?')") is None


def test_rich_outputs_become_files_and_plain_text_stays(tmp_path):
    render = Renderer(color=False, files=tmp_path)
    png = base64.b64encode(b"\x89PNG fake").decode()
    text = render.display({"data": {"text/plain": "<Figure>", "image/png": png, "text/html": "<b>hi</b>"}})
    lines = text.splitlines()
    assert lines[0] == "<Figure>"
    saved = {line.split(": ", 1)[0].strip("["): line.split(": ", 1)[1].rstrip("]") for line in lines[1:]}
    assert open(saved["image/png"], "rb").read() == b"\x89PNG fake"
    assert open(saved["text/html"]).read() == "<b>hi</b>"
    assert render.display({"data": {"application/x-thing": {}}}) == "[no text form: application/x-thing]\n"


def test_results_and_errors(tmp_path):
    plain = Renderer(color=False, files=tmp_path)
    assert plain.result({"execution_count": 3, "data": {"text/plain": "42"}}) == "Out[3]: 42\n"
    assert plain.result({"execution_count": 4, "data": {"text/plain": "a\nb"}}) == "Out[4]: \na\nb\n"
    lines = [
        "Traceback (most recent call last):",
        '  File "<In [1]>", line 1, in <module>',
        "    1/0",
        "ZeroDivisionError: x",
    ]
    error = {"ename": "ZeroDivisionError", "evalue": "x", "traceback": lines}
    assert plain.error(error) == "\n".join(lines) + "\n"
    colored = Renderer(color=True, files=tmp_path).error(error)
    assert "\x1b[" in colored and "ZeroDivisionError" in colored
    ansi = {"traceback": ["\x1b[31mAlready coloured\x1b[0m"]}  # ipykernel's tracebacks come coloured
    assert Renderer(color=True, files=tmp_path).error(ansi) == "\x1b[31mAlready coloured\x1b[0m\n"


def test_history_is_per_app_survives_torn_lines_and_merges(tmp_path):
    path = tmp_path / "history.jsonl"
    first = ConsoleHistory(path, "alpha")
    first.append_string("a = 1")
    first.append_string("a = 1")  # repeated: remembered once
    ConsoleHistory(path, "beta").append_string("b = 2")
    with path.open("a") as file:
        file.write('{"time": 1, "app": "alpha", "inp')  # a write cut short by a crash
    again = ConsoleHistory(path, "alpha")
    assert again.entries == ["a = 1"]
    assert again.merge(["old = 0", "a = 1", ""]) == 1
    assert again.entries == ["old = 0", "a = 1"]
    again.switch_app("beta")
    assert "b = 2" in again.entries
    assert [json.loads(line)["app"] for line in path.read_text().splitlines()[:2]] == ["alpha", "beta"]


def test_history_file_that_cannot_be_written_says_why(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    history = ConsoleHistory(blocker / "history.jsonl", "app")  # a folder under a file cannot exist
    history.append_string("x")
    assert history.entries == ["x"]  # kept in memory
    assert history.problem and "cannot write" in history.problem
