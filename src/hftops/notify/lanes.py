"""One channel's two lanes. Critical messages have their own queue and worker: they never wait behind
non-critical ones, never count against the rate limit, and a 429 backoff of the non-critical lane does
not hold them. Non-critical messages get at most one send per `min_interval_s`; the excess is counted and
folded into a digest sent when the window opens again.

Time comes from the injected clock (ns) and every wait goes through the injected `sleep`, so tests drive
rate windows and 429 backoffs with a controlled clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hftops.notify.channel import Channel, ChannelError
from hftops.notify.digest import Digest, Envelope
from hftops.notify.messages import Notification, Severity, render
from hftops.notify.splitting import split_text

Clock = Callable[[], int]
Sleep = Callable[[float], Awaitable[None]]
COUNTERS = ("sent", "failed", "rate_limited", "digested", "digests", "retried", "throttled", "dropped", "parts")
_PART_MARK_RESERVE = 10  # room for "(12/50) " in front of each part


@dataclass(frozen=True)
class LaneSettings:
    min_interval_s: float = 10.0
    critical_queue_max: int = 1000
    digest_lines: int = 20
    max_attempts: int = 5
    max_rate_limit_waits: int = 10
    max_parts: int = 10
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0


async def wait_event(event: asyncio.Event, timeout_s: float | None, sleep: Sleep) -> None:
    """Until `event` is set or `timeout_s` has passed on the injected clock's sleep."""
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    timer = asyncio.ensure_future(sleep(timeout_s)) if timeout_s is not None else None
    try:
        await asyncio.wait([t for t in (waiter, timer) if t is not None], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, timer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class ChannelWorker:
    def __init__(
        self,
        channel: Channel,
        settings: LaneSettings,
        clock: Clock,
        sleep: Sleep,
        log: Any,
        *,
        source: str = "hftops",
        host: str = "",
    ) -> None:
        self.channel = channel
        self.name = channel.name
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self._source = source
        self._host = host
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.last_error: str | None = None
        self.last_sent_ns: int | None = None
        self.backoff_until_ns = 0  # the non-critical lane waits out a 429 until then
        self._critical: deque[Envelope] = deque()
        self._critical_wake = asyncio.Event()
        self._pending: Envelope | None = None  # the one non-critical message of the open window
        self._digest = Digest(settings.digest_lines)
        self._normal_wake = asyncio.Event()
        self._normal_busy = False
        self._next_normal_ns = 0
        self._last_attempt_ns = 0

    # --- intake (never blocks, never raises) -----------------------------------------------------------

    def offer(self, envelope: Envelope) -> None:
        if envelope.message.severity is Severity.CRITICAL:
            if len(self._critical) >= self.settings.critical_queue_max:
                self._drop(envelope, f"critical queue full ({self.settings.critical_queue_max})")
                return
            self._critical.append(envelope)
            self._critical_wake.set()
            return
        now = self._clock()
        if self._pending is None and self._digest.empty and not self._normal_busy and now >= self._next_normal_ns:
            self._pending = envelope
        else:
            self._digest.add(envelope)
            self.counters["rate_limited"] += 1
        self._normal_wake.set()

    def _drop(self, envelope: Envelope, why: str) -> None:
        self.counters["dropped"] += 1
        envelope.settle("dropped", why)
        self._log.error(
            "notify_dropped",
            channel=self.name,
            severity=envelope.message.severity.value,
            key=envelope.message.key,
            why=why,
        )

    # --- lanes --------------------------------------------------------------------------------------------

    async def run(self, closing: asyncio.Event) -> None:
        """Both lanes until `closing` is set and what may still go has gone (the caller bounds the time)."""
        lanes = [
            asyncio.create_task(self._critical_lane(closing), name=f"notify-{self.name}-critical"),
            asyncio.create_task(self._normal_lane(closing), name=f"notify-{self.name}-normal"),
        ]
        closing_wakes = asyncio.create_task(self._wake_on(closing))
        try:
            await asyncio.gather(*lanes)
        finally:
            closing_wakes.cancel()
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, closing_wakes, return_exceptions=True)

    async def _wake_on(self, closing: asyncio.Event) -> None:
        await closing.wait()
        self._critical_wake.set()
        self._normal_wake.set()

    async def _critical_lane(self, closing: asyncio.Event) -> None:
        while True:
            if not self._critical:
                if closing.is_set():
                    return
                self._critical_wake.clear()
                await self._critical_wake.wait()
                continue
            envelope = self._critical.popleft()
            await self._deliver(envelope, critical=True)

    async def _normal_lane(self, closing: asyncio.Event) -> None:
        interval_ns = int(self.settings.min_interval_s * 1e9)
        while True:
            if self._pending is None and self._digest.empty:
                if closing.is_set():
                    return
                self._normal_wake.clear()
                await self._normal_wake.wait()
                continue
            wait_s = (self._next_normal_ns - self._clock()) / 1e9
            if wait_s > 0:
                if closing.is_set():  # the window will not open before the stop budget: say what is lost
                    self.drop_unsent(f"rate-limit window still closed at stop ({wait_s:.1f} s left)", critical=False)
                    return
                await wait_event(closing, wait_s, self._sleep)
                continue
            self._normal_busy = True
            try:
                if self._pending is not None:
                    envelope, self._pending = self._pending, None
                    await self._deliver(envelope, critical=False)
                else:
                    await self._send_digest()
            finally:
                self._normal_busy = False
                self._next_normal_ns = self._last_attempt_ns + interval_ns

    async def _send_digest(self) -> None:
        envelope, held, folded = self._digest.take(
            now_ns=self._clock(), interval_s=self.settings.min_interval_s, source=self._source, host=self._host
        )
        try:
            delivered = await self._deliver(envelope, critical=False)
        except asyncio.CancelledError:
            self.counters["dropped"] += folded - 1  # _deliver counted the digest itself
            for item in held:
                item.settle("dropped", "stopped while sending the digest")
            raise
        if delivered:
            self.counters["digests"] += 1
            self.counters["digested"] += folded
        for item in held:
            item.settle("delivered" if delivered else "failed", f"in a digest of {folded} messages")

    def drop_unsent(self, why: str, *, critical: bool = True) -> None:
        """At stop: whatever is still queued will not be sent; count it and say so. `critical=False`: only
        the non-critical lane's (its window stays closed), the critical lane keeps draining."""
        lost: list[Envelope] = list(self._critical) if critical else []
        if critical:
            self._critical.clear()
        if self._pending is not None:
            lost.append(self._pending)
            self._pending = None
        held = self._digest.count
        if held:
            _, waiting, _ = self._digest.take(
                now_ns=self._clock(), interval_s=self.settings.min_interval_s, source=self._source, host=self._host
            )
            self.counters["dropped"] += held
            for item in waiting:
                item.settle("dropped", why)
        for envelope in lost:
            self.counters["dropped"] += 1
            envelope.settle("dropped", why)
        if lost or held:
            self._log.error(
                "notify_unsent_at_stop",
                channel=self.name,
                why=why,
                queued=len(lost),
                in_digest=held,
                critical=sum(1 for e in lost if e.message.severity is Severity.CRITICAL),
            )

    # --- delivery with retries ------------------------------------------------------------------------

    def _parts(self, message: Notification) -> list[str]:
        text = render(message)
        limit = self.channel.max_chars
        if limit is None:
            return [text]
        parts = split_text(text, limit - _PART_MARK_RESERVE)
        cap = self.settings.max_parts
        if len(parts) > cap:
            omitted = len(parts) - cap + 1
            parts = [*parts[: cap - 1], f"… {omitted} more part(s) not sent: the message is too long for {self.name}"]
        if len(parts) == 1:
            return parts
        return [f"({i}/{len(parts)}) {part}" for i, part in enumerate(parts, 1)]

    async def _deliver(self, envelope: Envelope, *, critical: bool) -> bool:
        message = envelope.message
        try:
            parts = self._parts(message)
            ids = []
            for number, text in enumerate(parts, 1):
                ids.append(await self._send_part(message, text, number, len(parts), critical))
        except ChannelError as exc:
            self.counters["failed"] += 1
            self.last_error = str(exc)
            envelope.settle("failed", str(exc))
            self._log.error(
                "notify_failed",
                channel=self.name,
                severity=message.severity.value,
                key=message.key,
                kind=message.kind.value,
                error=str(exc),
            )
            return False
        except asyncio.CancelledError:
            self._drop(envelope, "stopped while sending")
            raise
        self.counters["sent"] += 1
        self.counters["parts"] += len(parts)
        self.last_sent_ns = self._clock()
        envelope.settle("delivered", f"{len(parts)} part(s), id {','.join(i for i in ids if i) or '-'}")
        return True

    async def _send_part(self, message: Notification, text: str, part: int, parts: int, critical: bool) -> str:
        failures = waits = 0
        while True:
            self._last_attempt_ns = self._clock()
            try:
                return await self.channel.send(message, text, part, parts)
            except ChannelError as exc:
                error = exc
            except Exception as exc:  # a bug in a channel must fail this message, never the lane
                error = ChannelError(f"{self.name}: {type(exc).__name__} in the channel", retryable=False)
                self._log.exception("notify_channel_bug", channel=self.name)
            if error.retry_after_s is not None:
                waits += 1
                self.counters["throttled"] += 1
                if waits > self.settings.max_rate_limit_waits:
                    raise error
                delay = error.retry_after_s
                if not critical:
                    self.backoff_until_ns = self._clock() + int(delay * 1e9)
            elif error.retryable:
                failures += 1
                if failures >= self.settings.max_attempts:
                    raise error
                delay = min(self.settings.backoff_initial_s * 2 ** (failures - 1), self.settings.backoff_max_s)
            else:
                raise error
            self.counters["retried"] += 1
            self._log.warning(
                "notify_retry",
                channel=self.name,
                lane="critical" if critical else "normal",
                wait_s=delay,
                error=str(error),
            )
            await self._sleep(delay)

    # --- figures ----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        figures: dict[str, Any] = {f"{name}_total": value for name, value in self.counters.items()}
        figures.update(
            critical_queue=len(self._critical),
            digest_pending=self._digest.count,
            backoff_s=round(max(0, self.backoff_until_ns - now) / 1e9, 3),
            last_sent_ns=self.last_sent_ns,
            last_error=self.last_error,
            target=self.channel.describe(),
        )
        return figures
