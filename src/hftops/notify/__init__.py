"""Operator notifications: Telegram and a JSON webhook behind one dispatcher (`Notifier`).

Use: `notifier.notify(Severity.CRITICAL, format_degradation(...), key="autonomy:halt")` - never blocks,
never raises. The engine builds it with `build_notifier(config, environ, clock)` and runs it as a task.
"""

from hftops.notify.channel import Channel, ChannelError
from hftops.notify.dispatcher import Notifier
from hftops.notify.formatting import (
    exposure_rows,
    format_degradation,
    format_exposure,
    format_flatten,
    format_halt,
    format_margin,
    format_rearm,
    format_recovery,
    format_session,
)
from hftops.notify.messages import Kind, Notification, Severity
from hftops.notify.settings import NotifyConfigError, build_notifier, notify_problems
from hftops.notify.splitting import TELEGRAM_MAX_CHARS, split_text

__all__ = [
    "TELEGRAM_MAX_CHARS",
    "Channel",
    "ChannelError",
    "Kind",
    "Notification",
    "Notifier",
    "NotifyConfigError",
    "Severity",
    "build_notifier",
    "exposure_rows",
    "format_degradation",
    "format_exposure",
    "format_flatten",
    "format_halt",
    "format_margin",
    "format_rearm",
    "format_recovery",
    "format_session",
    "notify_problems",
    "split_text",
]
