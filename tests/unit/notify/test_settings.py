"""Bad notification config: a clear error naming the variable or key, never the secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hftops.config.loader import load_config
from hftops.notify import NotifyConfigError, build_notifier, notify_problems

TOKEN = "987654321:AAF-secret_token_value_xyz"
REPO = Path(__file__).resolve().parents[3]


def _clock() -> int:
    return 0


def test_nothing_enabled_builds_a_notifier_without_channels() -> None:
    notifier = build_notifier(load_config(environ={}), {}, _clock)
    assert not notifier.enabled and notifier.stats()["channels"] == ""
    notifier.notify("critical", "only logged")  # still never raises


def test_telegram_enabled_without_token_names_the_variable() -> None:
    config = load_config(environ={"HFT_TELEGRAM_ENABLED": "1"})
    with pytest.raises(NotifyConfigError) as caught:
        build_notifier(config, {"HFT_TELEGRAM_CHAT_ID": "42"}, _clock)
    assert len(caught.value.problems) == 1
    assert "HFT_TELEGRAM_BOT_TOKEN is unset" in str(caught.value) and "HFT_TELEGRAM_ENABLED=0" in str(caught.value)
    assert isinstance(caught.value, ValueError)  # the engine's entry point reports ValueError as bad config


def test_missing_chat_id_and_malformed_token_are_both_reported_without_the_value() -> None:
    config = load_config(environ={"HFT_TELEGRAM_ENABLED": "1"})
    bad = "not a token but a secret"
    errors, _ = notify_problems(config, {"HFT_TELEGRAM_BOT_TOKEN": bad})
    assert len(errors) == 2
    assert any("does not look like a bot token" in e for e in errors)
    assert any("HFT_TELEGRAM_CHAT_ID is unset" in e for e in errors)
    assert all(bad not in e for e in errors)


def test_token_file_outside_the_repository_is_used(tmp_path: Path) -> None:
    token_file = tmp_path / "telegram.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = load_config(environ={"HFT_TELEGRAM_ENABLED": "1", "HFT_NOTIFY__TELEGRAM__TOKEN_FILE": str(token_file)})
    errors, warnings = notify_problems(config, {"HFT_TELEGRAM_CHAT_ID": "-100123"})
    assert errors == [] and warnings == []
    token_file.chmod(0o644)
    _, warnings = notify_problems(config, {"HFT_TELEGRAM_CHAT_ID": "-100123"})
    assert warnings == [f"notify.telegram.token_file: {token_file} is readable by other users; chmod 600 {token_file}"]


def test_token_file_inside_the_repository_is_refused() -> None:
    inside = REPO / "src" / "telegram.token"  # never created: the location alone is refused
    config = load_config(environ={"HFT_TELEGRAM_ENABLED": "1", "HFT_NOTIFY__TELEGRAM__TOKEN_FILE": str(inside)})
    errors, _ = notify_problems(config, {"HFT_TELEGRAM_CHAT_ID": "1"})
    assert errors and "inside the git work tree" in errors[0] and "outside the repository" in errors[0]


def test_webhook_enabled_without_url() -> None:
    config = load_config(environ={"HFT_WEBHOOK_ENABLED": "1"})
    errors, _ = notify_problems(config, {})
    assert errors == [
        "notify.webhook.enabled is on (HFT_WEBHOOK_ENABLED) but HFT_NOTIFY_WEBHOOK_URL is unset: "
        "export it with the webhook URL or set HFT_WEBHOOK_ENABLED=0"
    ]


def test_trading_check_names_the_missing_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_")}
    env.update(HFT_DATA_DIR=str(tmp_path / "data"), HFT_TELEGRAM_ENABLED="1", HFT_TELEGRAM_CHAT_ID="42")
    result = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "config INVALID" in result.stdout
    assert (
        "error: notify.telegram.enabled is on (HFT_TELEGRAM_ENABLED) but HFT_TELEGRAM_BOT_TOKEN is unset"
        in result.stdout
    )


def test_trading_check_passes_with_token_and_never_prints_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_")}
    env.update(
        HFT_DATA_DIR=str(tmp_path / "data"),
        HFT_TELEGRAM_ENABLED="1",
        HFT_TELEGRAM_CHAT_ID="42",
        HFT_TELEGRAM_BOT_TOKEN=TOKEN,
    )
    result = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "notify.telegram" not in result.stdout  # no notify error
    assert "notify      telegram via api.telegram.org" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
