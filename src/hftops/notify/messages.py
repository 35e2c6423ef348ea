"""The vocabulary of notifications: severities and the typed message every channel receives."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Kind(StrEnum):
    MESSAGE = "message"  # what a caller of Notifier.notify sent
    DIGEST = "digest"  # rate-limited messages folded into one
    HEARTBEAT = "heartbeat"  # the notifier proving it is alive
    TEST = "test"  # `trading notify test`


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One message as a channel receives it (the webhook posts it as JSON, plus part/parts)."""

    severity: Severity
    text: str
    key: str = ""
    kind: Kind = Kind.MESSAGE
    time_ns: int = 0
    source: str = "hftops"
    host: str = ""


_LABEL = {Severity.INFO: "\u2139\ufe0f INFO", Severity.WARNING: "⚠️ WARNING", Severity.CRITICAL: "🚨 CRITICAL"}


def render(message: Notification) -> str:
    """Chat text: a severity headline a phone's lock screen shows, then the text unchanged."""
    origin = f"{message.source}@{message.host}" if message.host else message.source
    return f"{_LABEL[message.severity]} · {origin}\n{message.text}"


def coerce_severity(value: object) -> Severity | None:
    """A Severity from an enum member or its name/value in any case; None when it is neither."""
    if isinstance(value, Severity):
        return value
    text = str(value).strip().lower()
    try:
        return Severity(text)
    except ValueError:
        return None
