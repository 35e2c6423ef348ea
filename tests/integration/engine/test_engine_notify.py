"""The engine's notifier, wired: built from config and environment, its figures in ops:stats, a test
message through the engine's command channel (`trading notify test`), directly when the engine is down,
and a clear refusal to start when Telegram is enabled without a token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, Child, World
from tests.support.cli import trading
from tests.support.platform import TestPlatform
from tests.support.telegram_stub import TelegramStub
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramStub]:
    stub = TelegramStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("engine-notify")
    valkey = ValkeyHandle(root / "valkey")
    platform = TestPlatform(root, {**ENGINE_OVERRIDES, "redis": {"url": valkey.url}})
    built = World(platform)
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


def test_notify_test_goes_through_the_running_engine_then_directly(world: World, telegram: TelegramStub) -> None:
    world.start_engine(**telegram.env())
    stats = world.wait_ready()
    assert stats["notify"]["enabled"] is True and stats["notify"]["channels"] == "telegram"
    assert telegram.token not in json.dumps(stats)

    result = trading(
        world.platform,
        "notify",
        "test",
        "--severity",
        "critical",
        "--operator",
        "alice",
        "--json",
        env=world.platform.env(**telegram.env()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["via"] == "engine" and answer["delivered"] is True
    assert answer["channels"]["telegram"]["outcome"] == "delivered"
    text = telegram.texts()[-1]
    assert text.startswith("🚨 CRITICAL") and "requested by alice via the engine" in text
    wait_for(
        lambda: (world.stats() or {}).get("notify", {}).get("telegram", {}).get("sent_total") == 1,
        5,
        what="the engine's notify figures in ops:stats",
    )

    assert world.stop_engine() == 0
    result = trading(world.platform, "notify", "test", "--operator", "bob", env=world.platform.env(**telegram.env()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "notify test (info) via direct: delivered" in result.stdout
    assert "requested by bob via the CLI" in telegram.texts()[-1]
    assert telegram.token not in result.stdout + result.stderr


def test_engine_refuses_to_start_with_telegram_enabled_and_no_token(world: World) -> None:
    child = Child(
        world.platform, "hftops.engine", "engine-no-token", HFT_TELEGRAM_ENABLED="1", HFT_TELEGRAM_CHAT_ID="42"
    )
    assert child.process.wait(timeout=60) == 2
    out = child.out.read_text()
    assert "HFT_TELEGRAM_BOT_TOKEN is unset" in out and "HFT_TELEGRAM_ENABLED=0" in out
