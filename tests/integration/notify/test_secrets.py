"""The bot token is part of every Telegram URL: it must never reach logs (ours or httpx's), stats,
errors or reprs, whatever happens to the request."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from hftops.notify import Severity
from tests.integration.notify.helpers import make_notifier, parked, running, until
from tests.support.manual_clock import ManualClock
from tests.support.ports import free_port
from tests.support.telegram_stub import TelegramStub, WebhookReceiver


def _everything(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], *extra: object) -> str:
    out = capsys.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    return "\n".join([out.out, out.err, caplog.text, records, *(json.dumps(e, default=str) for e in extra)])


async def test_token_never_in_logs_errors_or_stats(
    telegram: TelegramStub, clock: ManualClock, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs each request URL at INFO, httpcore traces at DEBUG
    telegram.respond(500, match=lambda t: "five hundred" in t)
    telegram.respond(429, match=lambda t: "flood" in t, retry_after=2)
    notifier = make_notifier(clock, telegram, max_attempts=2, telegram_options={"timeout_s": 0.5})
    slow = telegram.hold(lambda t: "too slow" in t)
    results = []
    async with running(notifier):
        results.append(await notifier.send_test(Severity.CRITICAL, "delivered fine", timeout_s=5))
        notifier.notify(Severity.CRITICAL, "five hundred then fine")
        await parked(clock, 1.0)
        clock.advance(1.0)
        notifier.notify(Severity.CRITICAL, "flood then fine")
        await parked(clock, 2.0)
        clock.advance(2.0)
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 3)
        too_slow = asyncio.create_task(notifier.send_test(Severity.CRITICAL, "too slow", timeout_s=5))
        await parked(clock, 1.0, "the retry after a timeout")
        clock.advance(1.0)
        results.append(await too_slow)
        slow.release.set()
        stats = notifier.stats()
        described = [repr(w.channel) for w in notifier.workers] + notifier.describe()
    assert results[0]["telegram"]["outcome"] == "delivered"
    assert results[1]["telegram"]["outcome"] == "failed" and "no answer" in results[1]["telegram"]["detail"]
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)  # httpx did log the URL...
    text = _everything(caplog, capsys, results, stats, described)
    assert telegram.token not in text  # ...redacted
    assert "<redacted>" in text


async def test_refused_and_unreachable_errors_do_not_leak_the_token(
    clock: ManualClock, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    real = TelegramStub(token="555000111:the-real-token_ABCDEFGHIJ").start()
    wrong = TelegramStub(token="555000111:a-wrong-token_ZYXWVUTSRQ")  # the notifier's token; real refuses it
    wrong.port = real.port
    closed = TelegramStub(token="555000222:unreachable-token_KLMNOP")  # nothing listens on its port
    closed.port = free_port()
    try:
        for stub in (wrong, closed):
            notifier = make_notifier(clock, stub, max_attempts=1)
            async with running(notifier):
                result = await notifier.send_test(Severity.CRITICAL, "x", timeout_s=5)
            assert result["telegram"]["outcome"] == "failed"
            if stub is wrong:
                assert "Unauthorized" in result["telegram"]["detail"]
                assert "check HFT_TELEGRAM_BOT_TOKEN" in result["telegram"]["detail"]
            else:
                assert "ConnectError" in result["telegram"]["detail"]
            text = _everything(caplog, capsys, result, notifier.stats())
            assert stub.token not in text and stub.token.split(":")[1] not in text
    finally:
        real.stop()


async def test_webhook_url_path_is_never_shown(
    clock: ManualClock, webhook: WebhookReceiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook.respond(404, times=None)
    notifier = make_notifier(clock, webhook=webhook, max_attempts=1)
    async with running(notifier):
        result = await notifier.send_test(Severity.CRITICAL, "x", timeout_s=5)
    assert result["webhook"]["outcome"] == "failed" and "HTTP 404" in result["webhook"]["detail"]
    text = _everything(caplog, capsys, result, notifier.stats(), notifier.describe())
    assert webhook.path not in text and f"127.0.0.1:{webhook.port}" in text
