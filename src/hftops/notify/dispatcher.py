"""The notifier: one dispatcher in front of the enabled channels (Telegram, webhook), a heartbeat that
proves it is alive, and the figures of every channel.

`notify()` is what every other part calls (autonomy, flattener, margin monitor): it never blocks and never
raises, from the engine's event loop thread. `run(stopping)` drives the channels until `stopping` is set,
then flushes what it can (critical first, each channel on its own) within `flush_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from hftops.notify.digest import Envelope
from hftops.notify.lanes import COUNTERS, ChannelWorker, Clock, Sleep, wait_event
from hftops.notify.messages import Kind, Notification, Severity, coerce_severity

_LOG_TEXT = 1000  # characters of an alert's text kept in the log line


class Notifier:
    def __init__(
        self,
        workers: list[ChannelWorker],
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        heartbeat_s: float = 3600.0,
        flush_s: float = 2.0,
        source: str = "hftops",
        host: str = "",
        log: Any = None,
    ) -> None:
        self.workers = workers
        self.heartbeat_s = heartbeat_s
        self.flush_s = flush_s
        self.source = source
        self.host = host
        # The engine binds a one-line platform summary (mode, open positions) for the heartbeat.
        self.status_line: Callable[[], str] | None = None
        self._clock = clock
        self._sleep = sleep
        self._log = log or structlog.get_logger("notify")
        self._started_ns = clock()
        self.heartbeats = 0
        self.last_heartbeat_ns: int | None = None
        self.intake_errors = 0
        self.after_stop = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    @property
    def enabled(self) -> bool:
        return bool(self.workers)

    def channels(self) -> list[str]:
        return [w.name for w in self.workers]

    def describe(self) -> list[str]:
        return [w.channel.describe() for w in self.workers]

    # --- intake -------------------------------------------------------------------------------------------

    def notify(self, severity: Severity | str, text: str, *, key: str = "") -> None:
        """Queue `text` on every channel. Never blocks, never raises (a bad argument is logged and sent as a
        warning rather than lost). From another thread it is handed to the notifier's loop."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            try:
                loop.call_soon_threadsafe(self._offer, severity, text, key, Kind.MESSAGE)
                return
            except RuntimeError:  # the loop is closed: nothing will send it; _offer logs it below
                pass
        self._offer(severity, text, key, Kind.MESSAGE)

    def _offer(
        self,
        severity: Severity | str,
        text: str,
        key: str,
        kind: Kind,
        done: Callable[[str], asyncio.Future[dict[str, str]] | None] | None = None,
    ) -> None:
        try:
            level = coerce_severity(severity)
            if level is None:
                self.intake_errors += 1
                self._log.warning(
                    "notify_bad_severity",
                    severity=str(severity),
                    key=key,
                    hint="use Severity.INFO, WARNING or CRITICAL; sent as a warning",
                )
                level = Severity.WARNING
            message = Notification(
                severity=level,
                text=str(text),
                key=str(key),
                kind=kind,
                time_ns=self._clock(),
                source=self.source,
                host=self.host,
            )
            if self._closed and self.workers:  # nobody drains the queues any more: say so rather than hold it
                self.after_stop += 1
                self._log.warning("notify_after_stop", severity=level.value, key=key, text=message.text[:200])
                return
            if kind is not Kind.HEARTBEAT:  # the log keeps every alert, also when no channel is enabled
                log_at = self._log.error if level is Severity.CRITICAL else self._log.info
                log_at(
                    "notification",
                    severity=level.value,
                    key=key,
                    kind=kind.value,
                    text=message.text[:_LOG_TEXT],
                    channels=len(self.workers),
                )
            for worker in self.workers:
                worker.offer(Envelope(message, done(worker.name) if done else None))
        except Exception:  # the callers are safety paths: a notification problem must never reach them
            self.intake_errors += 1
            with contextlib.suppress(Exception):
                self._log.exception("notify_intake_failed", key=key)

    async def send_test(
        self, severity: Severity | str, text: str, timeout_s: float = 30.0
    ) -> dict[str, dict[str, str]]:
        """Send a test message through every channel and wait (at most `timeout_s`) for each outcome:
        delivered / failed / dropped, or pending (still queued behind the rate limit or retries)."""
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[dict[str, str]]] = {}

        def make(name: str) -> asyncio.Future[dict[str, str]]:
            futures[name] = loop.create_future()
            return futures[name]

        self._offer(severity, text, "notify_test", Kind.TEST, done=make)
        if futures:
            await asyncio.wait(list(futures.values()), timeout=timeout_s)
        return {
            name: future.result()
            if future.done()
            else {
                "outcome": "pending",
                "detail": f"not settled within {timeout_s:g} s (rate-limit window or retries); it stays queued",
            }
            for name, future in futures.items()
        }

    # --- running ------------------------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        closing = asyncio.Event()
        tasks = [asyncio.create_task(w.run(closing), name=f"notify-{w.name}") for w in self.workers]
        beat = asyncio.create_task(self._heartbeat(closing)) if self.workers and self.heartbeat_s > 0 else None
        if self.workers:
            self._log.info("notify_started", channels=self.describe(), heartbeat_s=self.heartbeat_s)
        try:
            await stopping.wait()
        finally:
            closing.set()
            await self._flush(tasks, beat)

    async def _flush(self, tasks: list[asyncio.Task[None]], beat: asyncio.Task[None] | None) -> None:
        if beat is not None:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
        started = time.monotonic()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.flush_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._closed = True
        for worker in self.workers:
            worker.drop_unsent(f"stop flush budget of {self.flush_s:g} s used up")
            with contextlib.suppress(Exception):
                await worker.channel.aclose()
        if self.workers:
            self._log.info("notify_stopped", flush_s=round(time.monotonic() - started, 3), **self.totals())

    async def _heartbeat(self, closing: asyncio.Event) -> None:
        while not closing.is_set():
            await wait_event(closing, self.heartbeat_s, self._sleep)
            if closing.is_set():
                return
            self.heartbeats += 1
            self.last_heartbeat_ns = self._clock()
            self._offer(Severity.INFO, self._heartbeat_text(), "heartbeat", Kind.HEARTBEAT)

    def _heartbeat_text(self) -> str:
        up_s = max(0, self._clock() - self._started_ns) / 1e9
        totals = self.totals()
        lines = [
            f"Heartbeat: notifier alive, up {_duration(up_s)}; next in {_duration(self.heartbeat_s)}",
            f"Sent {totals['sent_total']}, failed {totals['failed_total']}, "
            f"held by rate limit {totals['rate_limited_total']}, dropped {totals['dropped_total']}",
        ]
        if self.status_line is not None:
            try:
                lines.append(self.status_line())
            except Exception as exc:  # a summary bug must not silence the heartbeat
                lines.append(f"(platform summary unavailable: {type(exc).__name__})")
        return "\n".join(lines)

    # --- figures ------------------------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        return {f"{name}_total": sum(w.counters[name] for w in self.workers) for name in COUNTERS}

    def stats(self) -> dict[str, Any]:
        """Flat enough for ops:stats -> `hftops_component_stat` (depth <= 3), names in Prometheus style."""
        doc: dict[str, Any] = {
            "enabled": self.enabled,
            "channels": ",".join(self.channels()),
            "heartbeat_interval_s": self.heartbeat_s,
            "heartbeats_total": self.heartbeats,
            "last_heartbeat_ns": self.last_heartbeat_ns,
            "intake_errors_total": self.intake_errors,
            "after_stop_total": self.after_stop,
            **self.totals(),
        }
        for worker in self.workers:
            doc[worker.name] = worker.stats()
        return doc


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
