"""The engine's `notify_test` command: a test message through the running engine's own notifier, so an
operator sees the exact path alerts take (`trading notify test`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hftops.engine.commands import Command, CommandRefused
from hftops.notify.dispatcher import Notifier
from hftops.notify.messages import coerce_severity

# Commands run one at a time: a test must not hold a `halt` or `rearm` queued behind it for long.
HANDLER_WAIT_S = 3.0


def test_text(operator: str, severity: str, via: str) -> str:
    who = operator or "an operator"
    return (
        f"Test notification ({severity}) requested by {who} via {via}.\n"
        "If you read this, alerts from hftops reach this channel."
    )


def notify_test_handler(notifier: Notifier) -> Callable[[Command], Awaitable[dict[str, Any]]]:
    async def handle(command: Command) -> dict[str, Any]:
        severity = coerce_severity(command.args.get("severity", "info"))
        if severity is None:
            raise CommandRefused(f"severity {command.args.get('severity')!r}: use info, warning or critical")
        if not notifier.enabled:
            raise CommandRefused(
                "no notification channel is enabled in the engine: set HFT_TELEGRAM_ENABLED=1 "
                "(with HFT_TELEGRAM_BOT_TOKEN and HFT_TELEGRAM_CHAT_ID) or HFT_WEBHOOK_ENABLED=1, "
                "then restart the engine"
            )
        text = str(command.args.get("text") or test_text(command.operator, severity.value, "the engine"))
        wait_s = min(float(command.args.get("timeout_s", HANDLER_WAIT_S)), HANDLER_WAIT_S)
        results = await notifier.send_test(severity, text, timeout_s=wait_s)
        return {"via": "engine", "severity": severity.value, "channels": results, "targets": notifier.describe()}

    return handle
