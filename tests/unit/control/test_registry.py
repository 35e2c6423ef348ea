import json
from pathlib import Path

from hftops.config.schema import Config
from hftops.control.registry import TEST_ARGV_ENV_PREFIX, Readiness, build_registry


def _config(tmp_path: Path, **tree: object) -> Config:
    return Config.model_validate({"data_dir": str(tmp_path), **tree})


def test_default_order_and_kinds(tmp_path: Path) -> None:
    registry = build_registry(_config(tmp_path), environ={})
    assert registry.names() == ("redis", "venue", "collector", "recorder", "engine", "api")
    assert registry.get("redis").readiness is Readiness.REDIS_PING
    assert registry.get("collector").argv[1:] == ("-m", "hftops.pipeline.collector")
    assert registry.get("api").readiness is Readiness.IN_PROCESS
    assert registry.get("engine").argv[1:] == ("-m", "hftops.engine")
    assert [s.name for s in registry.stop_order()] == ["api", "engine", "recorder", "collector", "venue", "redis"]


def test_external_redis_and_real_venue_are_skipped(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        redis={"url": "redis://10.0.0.1:6379/0"},
        venue={"kind": "binance_futures", "ws_url": "wss://x", "rest_url": "https://x"},
    )
    registry = build_registry(config, environ={})
    assert registry.names() == ("collector", "recorder", "engine", "api")
    assert "redis.url" in registry.skipped["redis"]
    assert "binance_futures" in registry.skipped["venue"]


def test_disabled_component(tmp_path: Path) -> None:
    config = _config(tmp_path, supervisor={"components": {"venue": {"enabled": False}}})
    registry = build_registry(config, environ={})
    assert "venue" not in registry.names()
    assert "enabled is false" in registry.skipped["venue"]


def test_engine_can_be_disabled(tmp_path: Path) -> None:
    registry = build_registry(_config(tmp_path, supervisor={"components": {"engine": {"enabled": False}}}), environ={})
    assert "engine" not in registry.names()
    assert "enabled is false" in registry.skipped["engine"]


def test_test_only_argv_override_also_enables_the_engine(tmp_path: Path) -> None:
    env = {
        TEST_ARGV_ENV_PREFIX + "ENGINE": json.dumps(["/bin/true"]),
        TEST_ARGV_ENV_PREFIX + "COLLECTOR": json.dumps(["/bin/echo", "c"]),
    }
    registry = build_registry(_config(tmp_path), environ=env)
    assert registry.names() == ("redis", "venue", "collector", "recorder", "engine", "api")
    assert registry.get("engine").argv == ("/bin/true",)
    assert registry.get("collector").argv == ("/bin/echo", "c")
