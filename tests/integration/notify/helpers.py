"""Build a notifier against the local stand-in servers with a hand-moved clock, and run it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from hftops.config.schema import Config
from hftops.notify import Notifier, build_notifier
from tests.support.manual_clock import ManualClock
from tests.support.telegram_stub import TelegramStub, WebhookReceiver


def config_for(**notify: Any) -> Config:
    section: dict[str, Any] = {"heartbeat_interval_s": 0, **notify}
    return Config.model_validate({"notify": section})


def make_notifier(
    clock: ManualClock,
    telegram: TelegramStub | None = None,
    webhook: WebhookReceiver | None = None,
    log: Any = None,
    telegram_options: dict[str, Any] | None = None,
    **notify: Any,
) -> Notifier:
    env: dict[str, str] = {}
    sections: dict[str, Any] = dict(notify)
    if telegram is not None:
        env.update(HFT_TELEGRAM_BOT_TOKEN=telegram.token, HFT_TELEGRAM_CHAT_ID=telegram.chat_id)
        sections["telegram"] = {
            "enabled": True,
            "base_url": telegram.base_url,
            "timeout_s": 5,
            **(telegram_options or {}),
        }
    if webhook is not None:
        env["HFT_NOTIFY_WEBHOOK_URL"] = webhook.url
        sections["webhook"] = {"enabled": True, "timeout_s": 5}
    return build_notifier(config_for(**sections), env, clock, sleep=clock.sleep, log=log, host="testhost")


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[asyncio.Task[None]]:
    stopping = asyncio.Event()
    task = asyncio.create_task(notifier.run(stopping))
    try:
        yield task
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)


async def until(condition: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    """Poll a condition on the real clock (the stand-in servers run in threads) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = None
    while loop.time() < deadline:
        last = condition()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition!r}; last value: {last!r}")


async def parked(clock: ManualClock, seconds: float, what: str = "") -> None:
    """Until some worker sleeps on the manual clock for about `seconds` (it cannot move on by itself)."""
    await until(
        lambda: any(abs(s - seconds) < 0.5 for s in clock.sleeping_for()),
        what=what or f"a worker waiting {seconds} s on the clock (sleeping: {clock.sleeping_for()})",
    )
