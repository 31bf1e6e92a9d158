"""Every snippet in docs/ that claims to be a complete program runs.

A fenced ``python`` block right after one of these comments is extracted
and run as it stands:

- ``<!-- program: host; check: EXPR -->``: a host; it must start serving
  (a connection file appears), a client attaches and ``EXPR`` is True in
  its namespace; then it is stopped.
- ``<!-- program: client; hosts: NAME ... -->``: a script driving hosts of
  those names (``tests/hosts/docs_host.py`` serves them); it must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import HOSTS, ROOT, launch_host

import zembed

DOCS = ROOT / "docs"
MARKER = re.compile(r"<!-- program: (host|client); (check|hosts): (.+?) -->\n```python\n(.*?)\n```", re.DOTALL)


def snippets() -> list[Any]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for match in MARKER.finditer(page.read_text(encoding="utf-8")):
            kind, _, argument, code = match.groups()
            line = page.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
            found.append(pytest.param(kind, argument, code, id=f"{page.name}:{line}"))
    return found


SNIPPETS = snippets()


def test_the_docs_mark_their_complete_programs():
    """The marker is what makes a snippet tested: this suite must find them."""
    assert len([s for s in SNIPPETS if s.values[0] == "host"]) >= 7
    assert len([s for s in SNIPPETS if s.values[0] == "client"]) >= 2


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("kind", "argument", "code"), SNIPPETS)
def test_snippet_runs(kind, argument, code, tmp_path, runtime_dir, display):
    program = tmp_path / "snippet.py"
    program.write_text(code + "\n", encoding="utf-8")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DISPLAY": display, "PYTHONUNBUFFERED": "1"}
    if kind == "host":
        run_host(program, argument, env, runtime_dir)
    else:
        run_client(program, argument.split(), env)


def run_host(program: Path, check: str, env: dict[str, str], runtime_dir: Path) -> None:
    process = subprocess.Popen([sys.executable, str(program)], env=env, cwd=program.parent, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not list(runtime_dir.glob("*.json")):
            if process.poll() is not None:
                raise AssertionError(f"the program ended ({process.returncode}): {process.stderr.read().decode()}")
            assert time.monotonic() < deadline, "the program did not start serving"
            time.sleep(0.05)
        with zembed.connect(timeout=20) as client:
            assert client.eval(f"bool({check})") is True, check
    finally:
        process.kill()
        process.wait(10)


def run_client(program: Path, names: list[str], env: dict[str, str]) -> None:
    hosts = [launch_host(HOSTS / "docs_host.py", name) for name in names]
    try:
        done = subprocess.run([sys.executable, str(program)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        for host in hosts:
            host.kill()
