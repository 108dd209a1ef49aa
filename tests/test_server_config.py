"""The daemon's configuration: file, environment and flags, with errors that say where."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runtime.server import ConfigError, load_config
from tests.server_process import TIERCEL


def test_defaults() -> None:
    config = load_config(None, {}, {})
    assert (config.host, config.port, config.auth) == ("127.0.0.1", 8080, True)
    assert config.cors_origins == []
    assert config.max_body_bytes == 1024 * 1024


def test_flags_override_the_environment_which_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "tiercel.yaml"
    file.write_text(
        "port: 9000\nhost: 0.0.0.0\nmissed_schedules: LAST\ncors_origins: [https://a.example]\n"
    )
    config = load_config(
        file, {"port": 9100}, {"TIERCEL_PORT": "9050", "TIERCEL_HOST": "127.0.0.2"}
    )
    assert config.port == 9100
    assert config.host == "127.0.0.2"
    assert config.missed_schedules == "LAST"
    assert config.cors_origins == ["https://a.example"]
    from_env = load_config(
        None,
        {},
        {
            "TIERCEL_CONFIG": str(file),
            "TIERCEL_CORS_ORIGINS": "https://b.example, https://c.example",
        },
    )
    assert from_env.port == 9000
    assert from_env.cors_origins == ["https://b.example", "https://c.example"]


def test_a_bad_file_value_names_the_file_line_and_key(tmp_path: Path) -> None:
    file = tmp_path / "tiercel.yaml"
    file.write_text("host: 127.0.0.1\nport: eighty\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, {}, {})
    problem = caught.value.problems[0]
    assert problem.file == str(file)
    assert problem.line == 2
    assert problem.path == "port"
    assert "Expected `int`" in problem.message


def test_an_unknown_setting_lists_the_known_ones(tmp_path: Path) -> None:
    file = tmp_path / "tiercel.yaml"
    file.write_text("prot: 80\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'; known settings: host, port"):
        load_config(file, {}, {})


def test_bad_environment_and_ranges_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {}, {"TIERCEL_PORT": "70000"})
    assert caught.value.problems[0].path == "port (environment variable TIERCEL_PORT)"
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_config(None, {}, {"TIERCEL_API_TOKEN": "short"})
    with pytest.raises(ConfigError, match="user:password"):
        load_config(None, {}, {"TIERCEL_BASIC_AUTH": "nopassword"})
    with pytest.raises(ConfigError, match="ALL"):
        load_config(None, {}, {"TIERCEL_MISSED_SCHEDULES": "SOME"})


def test_the_command_reports_configuration_errors_without_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("port: [1, 2]\n")
    result = subprocess.run(
        [*TIERCEL, "server", "--config", str(file)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"configuration: {file}:1: port:" in result.stderr
    assert "Traceback" not in result.stderr
