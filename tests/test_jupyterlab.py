"""The real JupyterLab (and Notebook 7) started by ``zembed lab``, driven in
Debian's chromium by playwright: a live host is in the launcher, a cell
changes a live object, the host's death shows on the page, and the
notebook carries on when the host is back.  Screenshots of each step go to
artefacts/jupyterlab/ (look at them)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, wait_until

pytestmark = pytest.mark.timeout(180)

ARTEFACTS = ROOT / "artefacts" / "jupyterlab"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHROMIUM = "/usr/bin/chromium"
# What the machine's closed network needs (no background calls home, no QUIC); as root, no sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, token: str, log: Path) -> None:
        self.process, self.url, self.token, self.log = process, url, token, log

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def ready(self) -> bool:
        try:
            self.get("/api/status")
            return True
        except OSError:
            return False


@pytest.fixture
def jupyter_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``zembed lab`` or ``zembed notebook`` on a free port, with settings and
    workspaces of the test's own; authentication on (a token)."""
    for name, folder in [
        ("JUPYTER_CONFIG_DIR", "jconfig"), ("JUPYTER_DATA_DIR", "jdata"),
        ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
    ]:  # fmt: skip
        monkeypatch.setenv(name, str(tmp_path / folder))
    news = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get notified about news?" toast over the page
    started: list[Server] = []

    def start(which: str = "lab") -> Server:
        port, token = free_port(), secrets.token_hex(16)
        log = tmp_path / f"{which}-server.log"
        command = [sys.executable, "-m", "zembed", which, "--no-browser", f"--port={port}",
                   f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}"]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        server = Server(process, f"http://127.0.0.1:{port}", token, log)
        started.append(server)
        wait_until(lambda: server.ready() or process.poll() is not None, timeout=60, what="the Jupyter server")
        assert process.poll() is None, log.read_text()[-3000:]
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("these tests need Debian's chromium: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"))


def kernel_idle(page: Any) -> None:
    """The notebook's kernel indicator says idle: typing now is not lost to a kernel still starting."""
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=30000)


def open_notebook(browser: Any, server: Server, app: str, width: int, height: int) -> Any:
    """A page with a new notebook on the running host ``app``, from the launcher, its kernel idle."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server.url}/lab?token={server.token}")
    card = page.locator(f'.jp-LauncherCard[data-category="Notebook"][title="{app} (zembed, running)"]')
    card.wait_for(timeout=60000)
    card.click()
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for(timeout=30000)
    kernel_idle(page)
    return page


def run_cell(page: Any, code: str) -> Any:
    """Type ``code`` into the notebook's last cell and run it; that cell."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 1)  # fixed now: running it appends a new last cell
    cell.locator(".cm-content").click()
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    deadline = time.monotonic() + 5
    while not started(cell):
        if time.monotonic() > deadline:
            # JupyterLab 4.6 now and then drops a run asked for just after its kernel connected (seen with
            # ipykernel as much as with a host): the cell never left "[ ]" and nothing reached the server.
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+Enter")
            break
        time.sleep(0.1)  # the page renders what the kernel sent: nothing to wait on but the DOM
    return cell


def started(cell: Any) -> bool:
    """Has the cell run, or begun to (a number or ``*`` in its prompt, or output)?"""
    prompt = str(cell.locator(".jp-InputPrompt").inner_text())
    output = cell.locator(".jp-OutputArea-output")
    return any(ch.isdigit() or ch == "*" for ch in prompt) or output.count() > 0


def done(cell: Any, timeout: float = 30) -> Any:
    """Wait until ``cell`` has run (its prompt has a number); the cell."""
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout
    while not any(ch.isdigit() for ch in prompt.inner_text()):
        assert time.monotonic() < deadline, f"the cell did not run: its prompt is {prompt.inner_text()!r}"
        time.sleep(0.1)  # the page renders what the kernel sent: nothing to wait on but the DOM
    return cell


def output_of(cell: Any, containing: str, timeout: float = 20) -> str:
    output = cell.locator(".jp-OutputArea")
    deadline = time.monotonic() + timeout
    while True:
        text = output.inner_text() if output.count() else ""
        if containing in text:
            return str(text)
        assert time.monotonic() < deadline, f"no {containing!r} in the output: {text!r}"
        time.sleep(0.1)  # the page renders what the kernel sent: nothing to wait on but the DOM


def test_a_notebook_on_a_running_host_survives_its_death(start_host, connect, jupyter_server, browser):
    host = start_host("asyncio", "--name", "scene")
    server = jupyter_server("lab")
    specs = server.get("/api/kernelspecs")["kernelspecs"]
    assert specs["zembed-scene"]["spec"]["display_name"] == "scene (zembed, running)"

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server.url}/lab?token={server.token}")
    card = page.locator('.jp-LauncherCard[data-category="Notebook"][title="scene (zembed, running)"]')
    card.wait_for(timeout=60000)
    shot(page, "1-launcher")

    card.click()
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for(timeout=30000)
    kernel_idle(page)
    cell = run_cell(page, "host.marker = 'set from JupyterLab'; print('frames running:', host.frames > 0)")
    assert "frames running: True" in output_of(cell, "frames running")
    shot(page, "2-cell-on-the-host")
    assert connect(host.connection_file).value("host.marker") == "set from JupyterLab"

    host.kill()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=5000)  # JupyterLab's own notice of a kernel that died and comes back
    assert "appears to have died" in dialog.inner_text()
    shot(page, "3-host-died")
    dialog.locator("button.jp-mod-accept").click()

    cell = run_cell(page, "1 + 1")
    text = output_of(cell, "HostNotRunning")
    assert f"scene (pid {host.pid}) died" in text and "waits for it" in text
    shot(page, "4-a-cell-while-the-host-is-gone")

    back = start_host("asyncio", "--name", "scene")
    cell = run_cell(page, "print('back:', host.frames > 0, 'marker' in vars(host))")
    deadline = time.monotonic() + 20
    while "back: True" not in (text := output_of(cell, "", timeout=1)):  # before the relay re-attached: retry
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
        cell = run_cell(page, "print('back:', host.frames > 0, 'marker' in vars(host))")
    assert "back: True False" in text  # the new host's namespace: the old marker went with the old host
    assert f"re-attached to scene (pid {back.pid})" in output_of(cell, "re-attached")
    shot(page, "5-the-host-is-back")


def test_notebook_7_offers_the_host_too(start_host, jupyter_server, browser):
    start_host("asyncio", "--name", "scene")
    server = jupyter_server("notebook")
    assert "zembed-scene" in server.get("/api/kernelspecs")["kernelspecs"]
    created = urllib.request.Request(
        f"{server.url}/api/contents/host.ipynb",
        data=json.dumps({"type": "notebook"}).encode(),
        method="PUT",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(created, timeout=5).close()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server.url}/notebooks/host.ipynb?token={server.token}")
    page.locator(".jp-Dialog").wait_for(timeout=60000)  # no kernel yet: Notebook asks which
    page.locator(".jp-Dialog select").select_option(label="scene (zembed, running)")
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    kernel_idle(page)
    cell = run_cell(page, "print('notebook 7 on', type(host).__name__)")
    try:
        assert "notebook 7 on Host" in output_of(cell, "notebook 7 on")
    finally:
        shot(page, "6-notebook-7")


def test_zembed_lab_without_jupyterlab_says_what_to_install():
    hide = (
        "import importlib.util, sys; real = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda name, *a: None if name == 'jupyterlab' else real(name, *a); "
        "from zembed.__main__ import main; sys.exit(main(['lab']))"
    )
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "pip install 'zembed[lab]'" in done.stderr


def readout(page: Any) -> str:
    return str(page.locator(".jp-Notebook .widget-readout").first.inner_text()).strip()


def wait_for_readout(page: Any, value: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (shown := readout(page) if page.locator(".widget-readout").count() else None) != value:
        assert time.monotonic() < deadline, f"the slider shows {shown!r}, not {value!r}"
        time.sleep(0.1)  # the page renders what the kernel sent: nothing to wait on but the DOM


def test_a_slider_on_the_page_drives_the_host_and_back(start_host, connect, jupyter_server, browser):
    host = start_host("asyncio", "--name", "scene")
    server = jupyter_server("lab")
    page = open_notebook(browser, server, "scene", width=1280, height=800)
    done(run_cell(page, "from ipywidgets import IntSlider; host.slider = IntSlider(value=3, max=100)"))
    run_cell(page, "host.slider")
    try:
        page.locator(".jp-Notebook .widget-slider").first.wait_for(timeout=30000)
    finally:
        shot(page, "7-a-slider-on-a-host-value")
    wait_for_readout(page, "3")
    shot(page, "7-a-slider-on-a-host-value")

    field = page.locator(".jp-Notebook .widget-readout").first  # type a value into the slider's readout
    field.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("42")
    page.keyboard.press("Enter")
    client = connect(host.connection_file)
    wait_until(lambda: client.value("host.slider.value") == 42, timeout=10, what="the host to get the page's value")

    client.run("host.per_frame.append(lambda: (setattr(host.slider, 'value', 77), host.per_frame.clear()))")
    wait_for_readout(page, "77")  # the host's frame loop moved the slider on the page
    shot(page, "8-the-host-moved-the-slider")

    page.locator(".jp-Notebook .jp-Cell").first.click()  # out of the slider's field, then save the notebook
    page.keyboard.press("Escape")
    page.keyboard.press("Control+S")
    rename = page.locator(".jp-Dialog")  # JupyterLab offers to rename an Untitled notebook on its first save
    rename.wait_for(timeout=10000)
    rename.locator("button.jp-mod-accept").click()

    def saved() -> bool:
        try:
            return WIDGET_VIEW in json.dumps(server.get("/api/contents/Untitled.ipynb")["content"])
        except OSError:  # 400 or 404 while the server writes it
            return False

    wait_until(saved, timeout=10, what="the notebook to be saved with its widget")
    # A second page opens the same notebook, on the same kernel.
    other = browser.new_page(viewport={"width": 1280, "height": 800})
    other.goto(f"{server.url}/lab/tree/Untitled.ipynb?token={server.token}")
    try:
        other.locator(".jp-Notebook .widget-slider").first.wait_for(timeout=60000)
    finally:
        shot(other, "9-a-second-page-in-sync")
    wait_for_readout(other, "77")  # its state came from the host, through the control comm
    client.run("host.slider.value = 12")
    wait_for_readout(other, "12")
    wait_for_readout(page, "12")
    shot(other, "9-a-second-page-in-sync")


def toggle_debugger(page: Any, on: bool) -> None:
    """Click the notebook's bug button until it shows the debugger ``on``
    (the button is live only once the page has read the kernel's info)."""
    bug = page.locator(".jp-DebuggerBugButton").first
    deadline = time.monotonic() + 30
    while bug.get_attribute("aria-pressed") != str(on).lower():
        assert time.monotonic() < deadline, f"the debugger did not turn {'on' if on else 'off'}"
        bug.click()
        try:
            page.wait_for_selector(
                f'.jp-DebuggerBugButton[aria-pressed="{str(on).lower()}"]', state="attached", timeout=3000
            )
        except Exception:  # playwright's TimeoutError: click again
            continue


def test_the_debugger_stops_a_cell_on_the_host(start_host, connect, jupyter_server, browser):
    """JupyterLab's own debugger: turn it on, a breakpoint in a cell, run it:
    the page shows the stopped line and its variables while the host's
    thread waits there; continue, and the cell finishes on the host."""
    pytest.importorskip("debugpy")
    host = start_host("asyncio", "--name", "scene")
    server = jupyter_server("lab")
    page = open_notebook(browser, server, "scene", width=1400, height=850)

    toggle_debugger(page, on=True)  # offered because kernel_info, from the host through the relay, says so
    variables = page.locator(".jp-DebuggerVariables").first
    wait_until(lambda: "host" in variables.inner_text(), timeout=20, what="the host's namespace in the panel")

    cell = page.locator(".jp-Notebook .jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.type("a = 20\nb = a + 1\nc = b * 2\nprint('c is', c)")
    cell.locator(".cm-breakpoint-gutter .cm-gutterElement").nth(2).click()  # line 2 (the first is a spacer)
    page.locator(".jp-DebuggerBreakpoint").first.wait_for(timeout=10000)
    page.keyboard.press("Shift+Enter")

    stopped = page.locator(".jp-DebuggerEditor-highlight").first
    stopped.wait_for(timeout=30000)
    assert stopped.inner_text() == "b = a + 1"
    wait_until(lambda: "20" in variables.inner_text(), timeout=10, what="a = 20 in the variables panel")
    callstack = page.locator(".jp-DebuggerCallstack").first.inner_text()
    assert "host.py" in callstack  # the host's own frames under the cell's
    assert not host.frames_on(timeout=1.5), "the host's frame loop ran on while its thread was stopped"
    shot(page, "debugger-1-stopped-in-a-cell")

    page.locator('jp-button[title="Continue (F9)"], button[title="Continue (F9)"]').first.click()
    assert "c is 42" in output_of(cell, "c is")
    assert host.frames_on(timeout=10)
    shot(page, "debugger-2-continued")
    toggle_debugger(page, on=False)  # the debugger off: the host is as it was
    client = connect(host.connection_file)
    wait_until(
        lambda: client.value("__import__('sys').gettrace() is None and c == 42"),
        timeout=10,
        what="no trace function left on the host's thread",
    )


def test_the_debugger_stops_the_hosts_own_frame_loop(start_host, jupyter_server, browser):
    """A breakpoint in the host's own file, set from JupyterLab: the file is
    found in "kernel sources", opened from the host, the gutter clicked;
    the host's frame loop (no cell) stops there; continue, and it runs on."""
    pytest.importorskip("debugpy")
    host = start_host("asyncio", "--name", "scene")
    server = jupyter_server("lab")
    page = open_notebook(browser, server, "scene", width=1400, height=850)
    toggle_debugger(page, on=True)

    page.locator('input[placeholder="Filter sources"]').first.fill("main")
    source = page.locator(".jp-DebuggerKernelSource-source", has_text="__main__").first
    source.wait_for(timeout=20000)
    assert source.get_attribute("title", timeout=5000).endswith("tests/hosts/host.py")
    source.click()
    editor = page.locator(".jp-MainAreaWidget:has-text('ORIGINAL_INPUT') .cm-editor").last
    editor.locator(".cm-content").click()
    line = next(n for n, text in enumerate((ROOT / "tests/hosts/host.py").read_text().splitlines(), 1)
                if text.strip() == "self.frames += 1")  # fmt: skip
    numbers = editor.locator(".cm-lineNumbers .cm-gutterElement")
    page.keyboard.press("Control+End")
    deadline = time.monotonic() + 20
    while str(line) not in numbers.all_inner_texts():  # the editor draws the lines in view only: page up to it
        assert time.monotonic() < deadline, f"line {line} never came into view"
        page.keyboard.press("PageUp")
    index = numbers.all_inner_texts().index(str(line))
    editor.locator(".cm-breakpoint-gutter .cm-gutterElement").nth(index).click()

    stopped = page.locator(".jp-DebuggerEditor-highlight").first
    stopped.wait_for(timeout=30000)  # no cell runs: the host's own loop reached the line
    assert stopped.inner_text().strip() == "self.frames += 1"
    callstack = page.locator(".jp-DebuggerCallstack").first.inner_text()
    assert "frame" in callstack and "host.py" in callstack
    assert not host.frames_on(timeout=1.5), "the host's frame loop ran on while stopped at its breakpoint"
    shot(page, "debugger-3-stopped-in-the-hosts-frame-loop")

    editor.locator(".cm-breakpoint-gutter .cm-gutterElement").nth(index).click()  # the breakpoint off again
    page.locator(".jp-DebuggerBreakpoint").first.wait_for(state="detached", timeout=10000)
    page.locator('jp-button[title="Continue (F9)"], button[title="Continue (F9)"]').first.click()
    assert host.frames_on(timeout=10), "the host's frame loop did not resume"
