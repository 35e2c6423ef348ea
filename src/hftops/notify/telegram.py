"""Telegram channel: Bot API `sendMessage` over HTTP (httpx). The bot token is part of the URL path,
so every text that could carry the URL goes through the redactor and httpx's own request log is filtered.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from hftops.notify.channel import ChannelError, Redactor, retry_after_from
from hftops.notify.messages import Notification
from hftops.notify.splitting import TELEGRAM_MAX_CHARS

_HTTPX_LOGGER = "httpx"
_HINTS = {
    401: "the bot token was refused; check HFT_TELEGRAM_BOT_TOKEN (or notify.telegram.token_file)",
    404: "the bot token was refused; check HFT_TELEGRAM_BOT_TOKEN (or notify.telegram.token_file)",
    403: "the bot may not write to this chat; add it to the chat or check HFT_TELEGRAM_CHAT_ID",
    400: "check HFT_TELEGRAM_CHAT_ID (the chat must exist and the bot must have been started in it)",
}


class TelegramChannel:
    name = "telegram"
    max_chars: int | None = TELEGRAM_MAX_CHARS

    def __init__(
        self,
        base_url: str,
        token: str,
        chat_id: str,
        *,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._chat_id = chat_id
        self._timeout_s = timeout_s
        self._redact = Redactor([token])
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        logging.getLogger(_HTTPX_LOGGER).addFilter(self._redact)

    def __repr__(self) -> str:
        return f"TelegramChannel({self.describe()})"

    def describe(self) -> str:
        return f"telegram chat {self._chat_id} via {self._base}"

    async def send(self, message: Notification, text: str, part: int, parts: int) -> str:
        url = f"{self._base}/bot{self._token}/sendMessage"
        try:
            response = await self._client.post(url, json={"chat_id": self._chat_id, "text": text})
        except httpx.TimeoutException:
            raise ChannelError(
                f"telegram: no answer from {self._base} within {self._timeout_s:g} s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise ChannelError(
                f"telegram: {type(exc).__name__} talking to {self._base}: {self._redact(str(exc)) or 'no detail'}",
                retryable=True,
            ) from None
        return self._result(response)

    def _result(self, response: httpx.Response) -> str:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        status = response.status_code
        if status == 200 and body.get("ok") is True:
            result = body.get("result")
            return str(result.get("message_id", "")) if isinstance(result, dict) else ""
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
        description = self._redact(str(body.get("description") or response.reason_phrase or "no description"))
        if code == 429 or status == 429:
            wait = retry_after_from(body, response.headers.get("retry-after"))
            raise ChannelError(
                f"telegram: rate limited by {self._base} ({description})",
                retryable=True,
                retry_after_s=1.0 if wait is None else wait,
            )
        if status >= 500 or status == 200:
            raise ChannelError(f"telegram: {self._base} answered HTTP {status}: {description}", retryable=True)
        hint = _HINTS.get(code, "the request was refused")
        raise ChannelError(f"telegram: HTTP {status} error {code}: {description}; {hint}", retryable=False)

    async def aclose(self) -> None:
        logging.getLogger(_HTTPX_LOGGER).removeFilter(self._redact)
        if self._owns_client:
            await self._client.aclose()
