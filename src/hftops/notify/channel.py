"""What a notification channel is (a small handler behind the dispatcher) and how it reports failure.

A channel sends one text part and answers with a delivery id, or raises `ChannelError` saying whether
a retry can help and, for HTTP 429, after how long. Every message it produces is already redacted:
secrets (a bot token in a URL path, a webhook URL) never reach logs, stats or exceptions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Protocol

from hftops.notify.messages import Notification

REDACTED = "<redacted>"


class ChannelError(Exception):
    """A send that failed. `retryable`: a later attempt can succeed (5xx, timeout, connection);
    `retry_after_s`: the server's flood-control wait (HTTP 429); otherwise the request itself is wrong."""

    def __init__(self, message: str, *, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s

    @property
    def rate_limited(self) -> bool:
        return self.retry_after_s is not None


class Channel(Protocol):
    name: str
    max_chars: int | None  # parts longer than this are split; None: send whole

    def describe(self) -> str:
        """Where messages go, safe to print (no secret)."""
        ...

    async def send(self, message: Notification, text: str, part: int, parts: int) -> str:
        """Deliver one part; returns the channel's delivery id. Raises ChannelError."""
        ...

    async def aclose(self) -> None: ...


class Redactor:
    """Replaces every secret (and its URL-quoted form) in a text; also a logging filter for libraries
    that log request URLs (httpx logs `HTTP Request: POST <url>` at INFO)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        found = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in found)) if found else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the library's problem; never break logging over it
            return True
        if self._pattern.search(message):
            record.msg = self(message)
            record.args = None
        return True


def retry_after_from(body: object, header: str | None) -> float | None:
    """Telegram's `parameters.retry_after` (seconds), else an HTTP Retry-After header in seconds."""
    if isinstance(body, dict):
        params = body.get("parameters")
        if isinstance(params, dict):
            value = params.get("retry_after")
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    if header:
        try:
            return max(0.0, float(header.strip()))
        except ValueError:
            return None
    return None
