"""The notifier against the stand-in Telegram Bot API and webhook receiver, with a hand-moved clock:
rate limit and digest, critical bypass, 429 retry-after, splitting, heartbeat, flush at stop."""

from __future__ import annotations

import asyncio

from hftops.notify import Severity
from hftops.notify.splitting import units
from tests.integration.notify.helpers import make_notifier, parked, running, until
from tests.support.manual_clock import ManualClock
from tests.support.telegram_stub import TelegramStub, WebhookReceiver


async def test_rate_limit_folds_excess_into_one_digest(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.INFO, "first", key="a")
        await until(lambda: len(telegram.texts()) == 1, what="the first message")
        for i in range(5):
            notifier.notify(Severity.WARNING, f"margin usage 0.8{i}", key="margin_warning")
        notifier.notify(Severity.INFO, "session stock OPEN -> CLOSE_ONLY", key="session")
        await parked(clock, 10.0, "the normal lane waiting for its window")
        assert len(telegram.texts()) == 1  # nothing more inside the 10 s window
        stats = notifier.stats()["telegram"]
        assert stats["rate_limited_total"] == 6 and stats["digest_pending"] == 6

        clock.advance(10.0)
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 2, what="the digest")
        digest = telegram.texts()[1]
        assert "Digest: 6 messages held back by the rate limit (one per 10 s)" in digest
        assert "5x warning margin_warning: margin usage 0.84" in digest  # grouped by key, latest line
        assert "1x info session: session stock OPEN -> CLOSE_ONLY" in digest
        assert digest.startswith("⚠️ WARNING")  # the digest carries its highest severity
        stats = notifier.stats()["telegram"]
        assert (stats["sent_total"], stats["digests_total"], stats["digested_total"]) == (2, 1, 6)
        assert stats["digest_pending"] == 0


async def test_window_reopens_for_a_single_message(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.INFO, "one")
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 1)
        clock.advance(10.0)
        notifier.notify(Severity.INFO, "two")
        await until(lambda: len(telegram.texts()) == 2)
        assert telegram.texts()[1].endswith("\ntwo")
        assert notifier.stats()["telegram"]["rate_limited_total"] == 0


async def test_critical_bypasses_a_full_non_critical_lane(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram, critical_queue_max=10, digest_lines=5)
    slow = telegram.hold(lambda text: "routine" in text)  # the non-critical send hangs in flight
    async with running(notifier):
        notifier.notify(Severity.INFO, "routine 0")
        await until(slow.arrived.is_set, what="the non-critical request in flight")
        for i in range(1, 500):
            notifier.notify(Severity.WARNING, f"routine {i}", key=f"k{i}")
        notifier.notify(Severity.CRITICAL, "HALT: flatten failed")
        await until(lambda: any("HALT: flatten failed" in t for t in telegram.texts()), what="the critical")
        assert telegram.texts()[0].startswith("🚨 CRITICAL")
        assert notifier.stats()["telegram"]["digest_pending"] == 499
        slow.release.set()
        await until(lambda: len(telegram.texts()) == 2, what="the held non-critical")
    assert notifier.stats()["telegram"]["critical_queue"] == 0


async def test_critical_goes_out_while_the_channel_waits_out_a_429(telegram: TelegramStub, clock: ManualClock) -> None:
    telegram.respond(429, match=lambda text: "routine" in text, retry_after=30)
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.INFO, "routine report")
        await parked(clock, 30.0, "the normal lane in its 429 backoff")
        stats = notifier.stats()["telegram"]
        assert stats["throttled_total"] == 1 and stats["backoff_s"] == 30.0

        notifier.notify(Severity.CRITICAL, "margin critical: ratio 0.93")
        await until(lambda: len(telegram.texts()) == 1, what="the critical during the backoff")
        assert "margin critical" in telegram.texts()[0]

        clock.advance(30.0)  # retry_after passed: the held message is retried once and delivered
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 2, what="the retried message")
        assert "routine report" in telegram.texts()[1]
        stats = notifier.stats()["telegram"]
        assert (stats["retried_total"], stats["sent_total"], stats["failed_total"]) == (1, 2, 0)


async def test_429_waits_exactly_retry_after(telegram: TelegramStub, clock: ManualClock) -> None:
    telegram.respond(429, retry_after=5)
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, "critical one")
        await parked(clock, 5.0, "the critical lane waiting retry_after")
        clock.advance(4.9)
        await parked(clock, 0.1, "still waiting after 4.9 s")
        assert telegram.texts() == [] and telegram.requests == 1
        clock.advance(0.1)
        await until(lambda: len(telegram.texts()) == 1)
        assert telegram.requests == 2


async def test_429_on_one_channel_never_blocks_critical_on_another(
    telegram: TelegramStub, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    telegram.respond(429, retry_after=600, times=None)  # telegram floods forever
    notifier = make_notifier(clock, telegram, webhook, stop_flush_s=0.2)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, "HALT first")
        notifier.notify(Severity.CRITICAL, "HALT second")
        await until(lambda: len(webhook.texts()) == 2, what="both criticals on the webhook")
        assert ["HALT first" in webhook.texts()[0], "HALT second" in webhook.texts()[1]] == [True, True]
        assert webhook.bodies[0]["severity"] == "critical" and webhook.bodies[0]["host"] == "testhost"
        assert telegram.texts() == []
        assert notifier.stats()["telegram"]["critical_queue"] == 1  # the second waits behind the first


async def test_gives_up_after_the_configured_429_waits(telegram: TelegramStub, clock: ManualClock) -> None:
    telegram.respond(429, retry_after=1, times=None)
    notifier = make_notifier(clock, telegram, max_rate_limit_waits=2)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, "never lands")
        for _ in range(2):
            await parked(clock, 1.0)
            clock.advance(1.0)
        await until(lambda: notifier.stats()["telegram"]["failed_total"] == 1)
        stats = notifier.stats()["telegram"]
        assert stats["throttled_total"] == 3 and "rate limited" in stats["last_error"]


async def test_server_errors_retry_with_backoff_then_succeed(telegram: TelegramStub, clock: ManualClock) -> None:
    telegram.respond(500, times=2)
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.WARNING, "after two 500s")
        await parked(clock, 1.0)
        clock.advance(1.0)
        await parked(clock, 2.0)
        clock.advance(2.0)
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 1)
        assert notifier.stats()["telegram"]["retried_total"] == 2


async def test_long_message_is_split_at_line_breaks(telegram: TelegramStub, clock: ManualClock) -> None:
    lines = [f"{i:04d} " + "position BTCUSDT +0.050 avg 100.10 " * 2 for i in range(200)]
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, "\n".join(lines))
        await until(lambda: len(telegram.texts()) >= 4 and notifier.stats()["telegram"]["sent_total"] == 1)
    parts = telegram.texts()
    assert all(units(p) <= 4096 for p in parts)
    assert [p.split(" ", 1)[0] for p in parts] == [f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)]
    bodies = [p.split(" ", 1)[1] for p in parts]
    assert bodies[0].split("\n", 1)[1].split("\n") + [ln for b in bodies[1:] for ln in b.split("\n")] == lines
    assert notifier.stats()["telegram"]["parts_total"] == len(parts)


async def test_single_over_long_line_is_hard_split(telegram: TelegramStub, clock: ManualClock) -> None:
    line = "x" * 9000
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, line)
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 1)
    parts = telegram.texts()
    assert len(parts) == 3 and all(units(p) <= 4096 for p in parts)
    assert "".join(p.split(" ", 1)[1] for p in parts).count("x") == 9000


async def test_heartbeat_proves_the_notifier_is_alive(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram, heartbeat_interval_s=600)
    notifier.status_line = lambda: "Engine running; 2 open position(s)"
    async with running(notifier):
        await parked(clock, 600.0, "the heartbeat timer")
        assert telegram.texts() == []
        clock.advance(600.0)
        await until(lambda: len(telegram.texts()) == 1, what="the first heartbeat")
        beat = telegram.texts()[0]
        assert "Heartbeat: notifier alive, up 10 min" in beat and "Engine running; 2 open position(s)" in beat
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 1, what="the first heartbeat's answer")
        await parked(clock, 600.0, "the next heartbeat timer")
        clock.advance(600.0)
        await until(lambda: len(telegram.texts()) == 2, what="the second heartbeat")  # after the first's stats
        assert "Sent 1, failed 0" in telegram.texts()[1]
        assert notifier.stats()["heartbeats_total"] == 2


async def test_stop_flushes_queued_critical_messages(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram)
    stopping = asyncio.Event()
    notifier.notify(Severity.INFO, "engine stopping")  # takes the window: the next non-critical must wait
    notifier.notify(Severity.INFO, "held for the digest")
    for i in range(3):
        notifier.notify(Severity.CRITICAL, f"stopping with positions {i}")
    stopping.set()  # stop at once: run() still delivers what is queued, critical first and all of it
    await asyncio.wait_for(notifier.run(stopping), 10)
    assert sorted(t.rsplit(" ", 1)[1] for t in telegram.texts() if "positions" in t) == ["0", "1", "2"]
    assert any(t.endswith("engine stopping") for t in telegram.texts())
    stats = notifier.stats()["telegram"]
    assert (stats["sent_total"], stats["dropped_total"]) == (4, 1)  # the digest could not wait 10 s at stop


async def test_stop_budget_bounds_the_flush_and_counts_what_is_lost(telegram: TelegramStub, clock: ManualClock) -> None:
    stuck = telegram.hold(lambda text: True)
    notifier = make_notifier(clock, telegram, stop_flush_s=0.3)
    async with running(notifier):
        notifier.notify(Severity.CRITICAL, "stuck one")
        notifier.notify(Severity.CRITICAL, "queued behind it")
        notifier.notify(Severity.INFO, "non-critical")
        await until(stuck.arrived.is_set)
    stats = notifier.stats()["telegram"]
    assert stats["dropped_total"] == 3 and stats["sent_total"] == 0
    stuck.release.set()
    notifier.notify(Severity.CRITICAL, "after stop")  # never raises; counted
    assert notifier.stats()["after_stop_total"] == 1


async def test_test_message_reports_each_channel(
    telegram: TelegramStub, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    telegram.respond(400, times=None)
    notifier = make_notifier(clock, telegram, webhook)
    async with running(notifier):
        result = await notifier.send_test(Severity.CRITICAL, "test", timeout_s=5)
    assert result["webhook"]["outcome"] == "delivered"
    assert result["telegram"]["outcome"] == "failed" and "HTTP 400" in result["telegram"]["detail"]


async def test_notify_never_raises_on_odd_input(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        notifier.notify("loud", 12345)  # type: ignore[arg-type]
        notifier.notify("CRITICAL", "upper-case severity works")
        await until(lambda: len(telegram.texts()) == 2)
    assert notifier.stats()["intake_errors_total"] == 1
    assert any(t.startswith("⚠️ WARNING") and t.endswith("12345") for t in telegram.texts())


async def test_notify_from_another_thread_is_handed_to_the_loop(telegram: TelegramStub, clock: ManualClock) -> None:
    notifier = make_notifier(clock, telegram)
    async with running(notifier):
        await until(lambda: notifier._loop is not None)
        await asyncio.to_thread(notifier.notify, Severity.CRITICAL, "from a worker thread")
        await until(lambda: notifier.stats()["telegram"]["sent_total"] == 1)
    assert telegram.texts()[0].endswith("from a worker thread")


async def test_webhook_429_honours_retry_after_header(webhook: WebhookReceiver, clock: ManualClock) -> None:
    webhook.respond(429, retry_after=3)
    notifier = make_notifier(clock, webhook=webhook)
    async with running(notifier):
        notifier.notify(Severity.WARNING, "after a 429")
        await parked(clock, 3.0, "the webhook lane waiting Retry-After")
        assert webhook.texts() == []
        clock.advance(3.0)
        await until(lambda: notifier.stats()["webhook"]["sent_total"] == 1)
    body = webhook.bodies[0]
    assert body["text"].endswith("after a 429") and body["severity"] == "warning" and body["kind"] == "message"
    assert (body["part"], body["parts"]) == (1, 1)
