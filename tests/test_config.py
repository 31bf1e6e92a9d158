"""Options from Python, a config file and the environment, each with help."""

from __future__ import annotations

import pytest

import zembed
from zembed._config import KernelConfig, load_config, option_names


def test_every_option_has_help():
    for name in option_names():
        trait = KernelConfig.class_traits()[name]
        assert trait.help and len(trait.help) > 15, name


def test_precedence_python_over_env_over_file(tmp_path, monkeypatch):
    config_file = tmp_path / "config" / "zembed" / "zembed_config.py"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(
        "c.KernelConfig.name = 'from-file'\nc.KernelConfig.stream_flush_interval = 0.2\n"
        "c.KernelConfig.poll_budget = 0.02\n"
    )
    monkeypatch.setenv("ZEMBED_STREAM_FLUSH_INTERVAL", "0.3")
    assert load_config({}).name == "from-file"
    assert load_config({}).poll_budget == 0.02
    assert load_config({}).stream_flush_interval == 0.3  # env beats file
    assert load_config({"stream_flush_interval": 0.4}).stream_flush_interval == 0.4  # Python beats env


def test_json_config_file_named_by_env(tmp_path, monkeypatch):
    path = tmp_path / "custom.json"
    path.write_text('{"KernelConfig": {"name": "json-app"}}')
    monkeypatch.setenv("ZEMBED_CONFIG", str(path))
    assert load_config({}).name == "json-app"


def test_start_kernel_uses_env(monkeypatch):
    monkeypatch.setenv("ZEMBED_NAME", "envapp")
    with zembed.start_kernel({}, loop="poll") as kernel:
        assert kernel.name == "envapp" and "envapp" in kernel.connection_file.name


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"colour": "red"}, "unknown option"),
        ({"stream_flush_interval": -1}, "positive"),
        ({"shell_port": 70000}, "65535"),
        ({"transport": "udp"}, "transport"),
        ({"name": " "}, "blank"),
    ],
)
def test_bad_values_are_usage_errors(overrides, message):
    with pytest.raises(zembed.UsageError, match=message):
        load_config(overrides)


def test_bad_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("ZEMBED_POLL_BUDGET", "soon")
    with pytest.raises(zembed.UsageError, match="ZEMBED_POLL_BUDGET"):
        load_config({})


@pytest.mark.parametrize(
    ("file_name", "text", "named"),
    [
        ("broken.py", "c.KernelConfig.name = (\n", "broken.py"),  # a syntax error: the file is named
        ("typo.py", "c.KernelConfig.stream_flush_intervall = 0.1\n", "stream_flush_intervall"),  # the option
        ("bad.json", '{"KernelConfig": {"poll_budget": -1}}', "bad.json"),  # a bad value: the file
    ],
)
def test_config_file_errors_say_where(tmp_path, monkeypatch, file_name, text, named):
    path = tmp_path / file_name
    path.write_text(text)
    monkeypatch.setenv("ZEMBED_CONFIG", str(path))
    with pytest.raises(zembed.UsageError, match=named):
        load_config({})


def test_missing_config_file_named_by_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEMBED_CONFIG", str(tmp_path / "nope.py"))
    with pytest.raises(zembed.UsageError, match="not a file"):
        load_config({})
