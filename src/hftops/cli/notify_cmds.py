"""`trading notify test`: send a test message through the configured channels, so an operator can check
that alerts arrive. Through the running engine's notifier when the engine runs (the path real alerts
take), else from this process with the same configuration."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import redis
import typer

from hftops.config.loader import ConfigError, load_config
from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.logs import configure_logging
from hftops.model.streams import STATS_HASH

app = typer.Typer(no_args_is_help=True, help="Operator notifications (Telegram, webhook).")

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
EXIT_CONFIG = 78  # EX_CONFIG
ENGINE_FRESH_S = 5.0  # the engine publishes its stats every second; older means it is not running


def _load(config_path: Path | None) -> Config:
    try:
        config = load_config(config_path) if config_path else load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc.source}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    # the direct path's own logs go to <data>/log/cli.log, not over the command's answer
    configure_logging("cli", DataPaths(config.data_dir).log, config.log.level, config.log.max_bytes, config.log.backups)
    return config


def engine_running(redis_url: str, now_ns: int) -> bool:
    """The engine's ops:stats is fresh (it is written every second while the engine runs)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        raw = client.hget(STATS_HASH, "engine")
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    if raw is None:
        return False
    try:
        stats = json.loads(raw)
        return (now_ns - int(stats.get("time_ns") or 0)) / 1e9 < ENGINE_FRESH_S and stats.get("state") != "stopping"
    except (ValueError, TypeError, AttributeError):
        return False


def _through_engine(config: Config, severity: str, text: str | None, operator: str) -> dict[str, Any] | None:
    """The engine's answer, or None when this engine has no notify_test command (an older engine)."""
    from hftops.control.engine_link import EngineCommandError, engine_command
    from hftops.notify.engine_command import HANDLER_WAIT_S

    args: dict[str, Any] = {"severity": severity}
    if text:
        args["text"] = text
    try:
        return engine_command(
            config.redis_url,
            "notify_test",
            args,
            operator=operator,
            reason="notify test",
            timeout_s=HANDLER_WAIT_S + 5.0,
        )
    except EngineCommandError as exc:
        if "unknown engine command" in str(exc):
            return None
        typer.echo(f"notify test: the engine {'refused' if exc.refused else 'did not complete'} it: {exc}", err=True)
        raise typer.Exit(1) from exc


async def _direct(config: Config, severity: str, text: str | None, operator: str, timeout_s: float) -> dict[str, Any]:
    from hftops.notify import NotifyConfigError, build_notifier
    from hftops.notify.engine_command import test_text

    try:
        notifier = build_notifier(config, os.environ, time.time_ns)
    except NotifyConfigError as exc:
        typer.echo("notify test: the notification config is incomplete:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    if not notifier.enabled:
        typer.echo(
            "notify test: no notification channel is enabled; set HFT_TELEGRAM_ENABLED=1 (with "
            "HFT_TELEGRAM_BOT_TOKEN and HFT_TELEGRAM_CHAT_ID) or HFT_WEBHOOK_ENABLED=1 (with "
            "HFT_NOTIFY_WEBHOOK_URL)",
            err=True,
        )
        raise typer.Exit(1)
    stopping = asyncio.Event()
    runner = asyncio.create_task(notifier.run(stopping))
    try:
        results = await notifier.send_test(severity, text or test_text(operator, severity, "the CLI"), timeout_s)
    finally:
        stopping.set()
        await runner
    return {"via": "direct", "severity": severity, "channels": results, "targets": notifier.describe()}


@app.command("test")
def test(
    severity: str = typer.Option(
        "info", "--severity", "-s", help="info | warning | critical (critical bypasses the rate limit)"
    ),
    text: str | None = typer.Option(None, "--text", help="message text (default: a test message naming you)"),
    direct: bool = typer.Option(False, "--direct", help="send from this process even when the engine runs"),
    timeout: float = typer.Option(30.0, "--timeout", min=1, help="direct: wait this long for delivery"),
    operator: str | None = typer.Option(None, "--operator", help="who asks (shown in the message)"),
    json_out: bool = typer.Option(False, "--json", help="print the outcome per channel as JSON"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Send a test notification through every enabled channel and report, per channel, whether it arrived."""
    from hftops.control.audit import default_actor
    from hftops.notify.messages import coerce_severity

    level = coerce_severity(severity)
    if level is None:
        typer.echo(f"--severity {severity!r}: use info, warning or critical", err=True)
        raise typer.Exit(2)
    config = _load(config_path)
    who = operator or default_actor()
    result = None
    if not direct and engine_running(config.redis_url, time.time_ns()):
        result = _through_engine(config, level.value, text, who)
        if result is None:
            typer.echo("notify test: the running engine has no notify_test command; sending directly", err=True)
    if result is None:
        result = asyncio.run(_direct(config, level.value, text, who, timeout))
    _report(result, json_out)


def _report(result: dict[str, Any], json_out: bool) -> None:
    channels: dict[str, dict[str, str]] = result.get("channels") or {}
    delivered = bool(channels) and all(c.get("outcome") == "delivered" for c in channels.values())
    if json_out:
        typer.echo(json.dumps({**result, "delivered": delivered}, indent=1))
    else:
        typer.echo(
            f"notify test ({result.get('severity')}) via {result.get('via')}: "
            f"{'delivered' if delivered else 'NOT confirmed'}"
        )
        targets = dict(zip(channels, result.get("targets") or [], strict=False))
        for name, outcome in channels.items():
            typer.echo(
                f"  {name:<9} {outcome.get('outcome'):<10} {outcome.get('detail', '')}"
                f"{'  -> ' + targets[name] if name in targets else ''}"
            )
        if any(c.get("outcome") == "pending" for c in channels.values()):
            typer.echo(
                "  pending: held by the rate limit (one non-critical message per window) or retrying; "
                "--severity critical bypasses the rate limit",
                err=True,
            )
    raise typer.Exit(0 if delivered else 1)
