"""`trading stop` finds the supervisor through locate_data_dir without validating the config: it must name
the same data dir as load_config in every case it answers, and give up (None) on anything unusual."""

from __future__ import annotations

from pathlib import Path

import pytest

from hftops.config.loader import load_config
from hftops.config.locate import locate_data_dir


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("data_dir: rel/var\n", {}),  # relative to the file's directory
        ("data_dir: /abs/var\n", {}),
        ("venue: {symbols: [BTCUSDT]}\n", {}),  # the default, relative to the working directory
        ("data_dir: rel/var\n", {"HFT_DATA_DIR": "/from/env"}),
        ("", {"HFT_DATA_DIR": "env-rel"}),
    ],
)
def test_locate_agrees_with_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "conf" / "hft.yaml"
    config_file.parent.mkdir()
    config_file.write_text(text)
    environ = {"HFT_CONFIG": str(config_file), **env}
    assert locate_data_dir(environ) == load_config(environ=environ).data_dir


@pytest.mark.parametrize("text", ["data_dir: [not, a, path]\n", "- a list\n", "key: [unclosed\n", "data_dir: ''\n"])
def test_locate_gives_up_on_anything_unusual(tmp_path: Path, text: str) -> None:
    config_file = tmp_path / "hft.yaml"
    config_file.write_text(text)
    assert locate_data_dir({"HFT_CONFIG": str(config_file)}) is None
    assert locate_data_dir({"HFT_CONFIG": str(tmp_path / "missing.yaml")}) is None


def test_stop_with_a_broken_config_names_the_problem(tmp_path: Path) -> None:
    import subprocess
    import sys

    config_file = tmp_path / "hft.yaml"
    config_file.write_text("key: [unclosed\n")
    out = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "stop", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 78, out
    assert "config INVALID" in out.stderr and "not valid YAML" in out.stderr
