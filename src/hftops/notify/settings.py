"""From configuration to a running notifier: resolves the channels' secrets (environment or a token file
outside the repository), validates them without ever echoing them, and builds the dispatcher.

`build_notifier(config, environ, clock)` is the composition entry; `notify_problems` is what
`trading check` reports. Both name the key or variable that is wrong and how to fix it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from hftops.config.schema import Config, NotifyConfig, TelegramConfig, WebhookConfig
from hftops.notify.channel import Channel
from hftops.notify.dispatcher import Notifier
from hftops.notify.lanes import ChannelWorker, Clock, LaneSettings, Sleep
from hftops.notify.telegram import TelegramChannel
from hftops.notify.webhook import WebhookChannel

_TOKEN = re.compile(r"^[0-9]{3,}:[A-Za-z0-9_-]{10,}$")
_CHAT_ID = re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,})$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class NotifyConfigError(ValueError):
    """A channel is enabled but cannot work as configured; `problems` says what to set."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("notifications: " + "; ".join(problems))


@dataclass
class _Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _git_work_tree(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None


def _token_from_file(path: Path, found: _Findings) -> str | None:
    key = "notify.telegram.token_file"
    repo = _git_work_tree(path)
    if repo is not None:
        found.errors.append(
            f"{key}: {path} is inside the git work tree {repo}; move the token file outside the "
            "repository (secrets are never committed)"
        )
        return None
    try:
        info = path.stat()
        text = path.read_text().strip()
    except OSError as exc:
        found.errors.append(f"{key}: cannot read {path} ({exc.strerror}); create it with the bot token or unset it")
        return None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        found.warnings.append(f"{key}: {path} is readable by other users; chmod 600 {path}")
    return text


def _telegram_secrets(cfg: TelegramConfig, environ: Mapping[str, str], found: _Findings) -> tuple[str, str] | None:
    token = _token_from_file(cfg.token_file, found) if cfg.token_file else environ.get(cfg.token_env, "").strip()
    chat_id = environ.get(cfg.chat_id_env, "").strip()
    fine = True
    if not token:
        if cfg.token_file is None:
            found.errors.append(
                f"notify.telegram.enabled is on (HFT_TELEGRAM_ENABLED) but {cfg.token_env} is unset: "
                f"export {cfg.token_env} with the bot token from @BotFather, set "
                "notify.telegram.token_file, or set HFT_TELEGRAM_ENABLED=0"
            )
        fine = False
    elif not _TOKEN.match(token):
        where = str(cfg.token_file) if cfg.token_file else cfg.token_env
        found.errors.append(
            f"{where}: does not look like a bot token (<digits>:<letters, digits, _ or ->, as "
            "@BotFather gives it); the value is not shown"
        )
        fine = False
    if not chat_id:
        found.errors.append(
            f"notify.telegram.enabled is on but {cfg.chat_id_env} is unset: export it with the chat "
            "id (a number such as -1001234567890, or @channelname)"
        )
        fine = False
    elif not _CHAT_ID.match(chat_id):
        found.errors.append(f"{cfg.chat_id_env}: {chat_id!r} is not a chat id (a number or @channelname)")
        fine = False
    _check_url("notify.telegram.base_url", cfg.base_url, found, secret_in_path=True)
    return (token, chat_id) if fine and token else None


def _check_url(key: str, url: str, found: _Findings, *, secret_in_path: bool) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname}" if secret_in_path and parts.hostname else "the value"
        found.errors.append(f"{key}: {shown} is not an http(s) URL; use e.g. https://api.telegram.org")
        return False
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK and secret_in_path:
        found.warnings.append(f"{key}: plain http to {parts.hostname} sends the secret unencrypted; use https")
    return True


def _webhook_url(cfg: WebhookConfig, environ: Mapping[str, str], found: _Findings) -> str | None:
    url = environ.get(cfg.url_env, "").strip()
    if not url:
        found.errors.append(
            f"notify.webhook.enabled is on (HFT_WEBHOOK_ENABLED) but {cfg.url_env} is unset: export "
            f"it with the webhook URL or set HFT_WEBHOOK_ENABLED=0"
        )
        return None
    return url if _check_url(cfg.url_env, url, found, secret_in_path=True) else None


def notify_problems(config: Config, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the enabled channels, for `trading check`; never contains a secret."""
    found = _Findings()
    if config.notify.telegram.enabled:
        _telegram_secrets(config.notify.telegram, environ, found)
    if config.notify.webhook.enabled:
        _webhook_url(config.notify.webhook, environ, found)
    return found.errors, found.warnings


def notify_summary(config: Config) -> str:
    """One line for `trading check`: which channels are on, where they send (no secret)."""
    notify = config.notify
    on = []
    if notify.telegram.enabled:
        on.append(
            f"telegram via {urlsplit(notify.telegram.base_url).hostname} (token from "
            f"{notify.telegram.token_file or '$' + notify.telegram.token_env})"
        )
    if notify.webhook.enabled:
        on.append(f"webhook (URL from ${notify.webhook.url_env})")
    if not on:
        return "off (HFT_TELEGRAM_ENABLED=0, HFT_WEBHOOK_ENABLED=0): alerts only in the logs"
    beat = f"heartbeat every {notify.heartbeat_interval_s:g} s" if notify.heartbeat_interval_s else "no heartbeat"
    return ", ".join(on) + f"; {beat}"


def _lane_settings(notify: NotifyConfig, min_interval_s: float) -> LaneSettings:
    return LaneSettings(
        min_interval_s=min_interval_s,
        critical_queue_max=notify.critical_queue_max,
        digest_lines=notify.digest_lines,
        max_attempts=notify.max_attempts,
        max_rate_limit_waits=notify.max_rate_limit_waits,
        max_parts=notify.max_parts,
    )


def build_notifier(
    config: Config,
    environ: Mapping[str, str],
    clock: Clock,
    *,
    sleep: Sleep = asyncio.sleep,
    log: Any = None,
    host: str | None = None,
) -> Notifier:
    """The notifier of the enabled channels (none enabled: a notifier that only logs). Raises
    NotifyConfigError when an enabled channel lacks its token, chat id or URL."""
    notify = config.notify
    log = log or structlog.get_logger("notify")
    found = _Findings()
    telegram = _telegram_secrets(notify.telegram, environ, found) if notify.telegram.enabled else None
    webhook = _webhook_url(notify.webhook, environ, found) if notify.webhook.enabled else None
    if found.errors:  # before any channel exists: nothing to close on the way out
        raise NotifyConfigError(found.errors)
    for warning in found.warnings:
        log.warning("notify_config_warning", warning=warning)
    channels: list[tuple[Channel, float]] = []
    if telegram is not None:
        channels.append(
            (
                TelegramChannel(notify.telegram.base_url, *telegram, timeout_s=notify.telegram.timeout_s),
                notify.telegram.min_interval_s,
            )
        )
    if webhook is not None:
        channels.append((WebhookChannel(webhook, timeout_s=notify.webhook.timeout_s), notify.webhook.min_interval_s))
    host = socket.gethostname() if host is None else host
    workers = [
        ChannelWorker(channel, _lane_settings(notify, interval), clock, sleep, log, host=host)
        for channel, interval in channels
    ]
    return Notifier(
        workers,
        clock=clock,
        sleep=sleep,
        heartbeat_s=notify.heartbeat_interval_s,
        flush_s=notify.stop_flush_s,
        host=host,
        log=log,
    )
