"""Generic JSON webhook channel: POSTs each notification as a JSON object. The URL may embed a secret
(many chat webhooks do), so only its scheme and host are ever shown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from hftops.notify.channel import ChannelError, Redactor, retry_after_from
from hftops.notify.messages import Notification

_HTTPX_LOGGER = "httpx"


def url_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class WebhookChannel:
    name = "webhook"
    max_chars: int | None = None

    def __init__(self, url: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self._url = url
        self._origin = url_origin(url)
        self._timeout_s = timeout_s
        parts = urlsplit(url)
        # the path and query are what carries a webhook's secret; the origin alone is shown
        self._redact = Redactor([url, parts.path if len(parts.path) > 1 else "", parts.query, parts.password or ""])
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        logging.getLogger(_HTTPX_LOGGER).addFilter(self._redact)

    def __repr__(self) -> str:
        return f"WebhookChannel({self.describe()})"

    def describe(self) -> str:
        return f"webhook {self._origin}"

    async def send(self, message: Notification, text: str, part: int, parts: int) -> str:
        payload: dict[str, Any] = msgspec.to_builtins(message)
        payload.update(
            text=text, part=part, parts=parts, time=datetime.fromtimestamp(message.time_ns / 1e9, UTC).isoformat()
        )
        try:
            response = await self._client.post(self._url, json=payload)
        except httpx.TimeoutException:
            raise ChannelError(
                f"webhook: no answer from {self._origin} within {self._timeout_s:g} s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise ChannelError(
                f"webhook: {type(exc).__name__} talking to {self._origin}: {self._redact(str(exc)) or 'no detail'}",
                retryable=True,
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response.headers.get("x-request-id", str(status))
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 429:
            wait = retry_after_from(body, response.headers.get("retry-after"))
            raise ChannelError(
                f"webhook: rate limited by {self._origin}", retryable=True, retry_after_s=1.0 if wait is None else wait
            )
        detail = self._redact(response.text[:200]) if response.text else response.reason_phrase
        raise ChannelError(
            f"webhook: {self._origin} answered HTTP {status}: {detail}", retryable=status >= 500 or status == 408
        )

    async def aclose(self) -> None:
        logging.getLogger(_HTTPX_LOGGER).removeFilter(self._redact)
        if self._owns_client:
            await self._client.aclose()
