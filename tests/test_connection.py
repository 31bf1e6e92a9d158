"""Connection files: location, name, permissions, atomic writes, errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from jupyter_client import find_connection_file

import zembed
from zembed._connection import read_connection_file, runtime_dir, safe_app_name


def test_runtime_dir_honours_jupyter_env(runtime_dir: Path):
    from zembed._connection import runtime_dir as zembed_runtime_dir

    assert zembed_runtime_dir() == runtime_dir


def test_runtime_dir_default_matches_jupyter_core(monkeypatch):
    from jupyter_core.paths import jupyter_runtime_dir

    monkeypatch.delenv("JUPYTER_RUNTIME_DIR")
    assert runtime_dir() == Path(jupyter_runtime_dir())


def test_file_is_private_named_and_found_by_jupyter(runtime_dir: Path):
    with zembed.start_kernel({}, name="My App!", loop="poll") as kernel:
        path = kernel.connection_file
        assert path.parent == runtime_dir
        assert path.name == f"kernel-zembed-{safe_app_name('My App!')}-{os.getpid()}.json"
        assert path.name.startswith("kernel-zembed-My_App-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(runtime_dir.stat().st_mode) == 0o700
        info = json.loads(path.read_text())
        assert info["signature_scheme"] == "hmac-sha256" and info["transport"] == "tcp"
        assert info["ip"] == "127.0.0.1" and len(info["key"]) == 64
        assert info["zembed"]["app"] == "My App!" and info["zembed"]["pid"] == os.getpid()
        # jupyter's own lookup: no argument (newest kernel-*.json), and a substring
        assert find_connection_file() == str(path)
        assert find_connection_file("My_App") == str(path)
        # no temporary files left behind by the atomic write
        assert [p.name for p in runtime_dir.iterdir()] == [path.name]
    assert not path.exists()


def test_explicit_connection_file(tmp_path: Path):
    target = tmp_path / "sub" / "k.json"
    with zembed.start_kernel({}, connection_file=str(target), loop="poll") as kernel:
        assert kernel.connection_file == target and target.exists()
    assert not target.exists()


def test_ipc_transport(tmp_path: Path, connect):
    with zembed.start_kernel({}, transport="ipc", loop="poll") as kernel:
        info = json.loads(kernel.connection_file.read_text())
        assert info["transport"] == "ipc"
        assert Path(f"{info['ip']}-{info['shell_port']}").exists()
        # a jupyter client connects over ipc (kernel_info is served without polling)
        client = connect(str(kernel.connection_file))
        assert client.kc.kernel_info(reply=True, timeout=5)["content"]["implementation"] == "zembed"
        sockets = [Path(f"{info['ip']}-{info[f'{c}_port']}") for c in ("shell", "iopub", "stdin", "control", "hb")]
    assert not any(s.exists() for s in sockets)


@pytest.mark.parametrize(
    "content,message",
    [(None, "not found"), ("{", "not JSON"), ("[]", "JSON object"), ('{"ip": "x"}', "lacks")],
)
def test_read_errors_are_clear(tmp_path: Path, content, message):
    path = tmp_path / "k.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(zembed.ConnectionFileError, match=message):
        read_connection_file(path)


def test_app_names_are_made_safe():
    assert safe_app_name("../../etc/passwd").startswith("etc_passwd-")  # changed, so a hash keeps it apart
    assert safe_app_name("etc_passwd") == "etc_passwd"  # a name that was safe stays as it is
    assert safe_app_name("a/b") != safe_app_name("a_b")
    assert safe_app_name("???").startswith("app-")
    assert safe_app_name("Blender-4.2_scene") == "Blender-4.2_scene"
