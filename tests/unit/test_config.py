from pathlib import Path

import pytest

from hftops.config import ConfigError, load_config


def test_defaults_load_and_data_dir_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.data_dir == tmp_path / "var"
    assert config.venue.kind == "simulated"
    assert config.redis_url.startswith("redis://127.0.0.1:")


def test_env_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("simulator: {rate: 100}\nvenue: {symbols: [BTCUSDT]}\n")
    config = load_config(path, environ={"HFT_SIMULATOR__RATE": "7000", "HFT_SYMBOLS": "ETHUSDT,SOLUSDT"})
    assert config.simulator.rate == 7000
    assert config.venue.symbols == ("ETHUSDT", "SOLUSDT")


def test_every_bad_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("simulator: {rate: -1, bogus: 2}\nredis: {port: 70000}\nvenue: {symbols: [btc]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    text = "\n".join(err.value.problems)
    assert "simulator.rate" in text
    assert "simulator.bogus: unknown key" in text
    assert "redis.port" in text
    assert "venue.symbols" in text


def test_unknown_env_key_is_named() -> None:
    with pytest.raises(ConfigError, match="HFT_RECORDER__NOPE"):
        load_config(environ={"HFT_RECORDER__NOPE": "1"})


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path, environ={})
    path.write_text("a: [\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path, environ={})


def test_component_section_rejects_unknown_component() -> None:
    with pytest.raises(ConfigError, match="unknown component"):
        load_config(environ={"HFT_SUPERVISOR__COMPONENTS": "{nope: {enabled: false}}"})


def test_the_recorder_yields_by_default_but_not_behind_a_realtime_collector() -> None:
    from hftops.config.schema import Config

    plain = Config.model_validate({})
    assert [plain.component(n).nice for n in ("recorder", "venue", "collector")] == [5, 10, 0]
    realtime = Config.model_validate({"supervisor": {"components": {"collector": {"realtime_priority": 10}}}})
    assert [realtime.component(n).nice for n in ("recorder", "venue", "collector")] == [0, 10, 0]
    chosen = {"collector": {"realtime_priority": 10}, "recorder": {"nice": 7}}
    assert Config.model_validate({"supervisor": {"components": chosen}}).component("recorder").nice == 7
    with pytest.raises(ValueError, match="realtime_priority"):
        Config.model_validate({"supervisor": {"components": {"collector": {"realtime_priority": 120}}}})
