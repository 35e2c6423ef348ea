"""The AutonomyMonitor: every cycle (100 ms - 1 s) it compares one HealthSample with the thresholds of
the `autonomy:` config section and tells the controller what it found. It keeps only what a single sample
cannot show: since when a figure has been bad (staleness, feed gaps, broker silence), consecutive
drawdown breaches, and per-strategy bursts within a window. Pure over (sample, clock): tests feed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from hftops.config.autonomy import AutonomyConfig
from hftops.ops.autonomy_probes import HealthSample
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.reasons import Reason

S = 1_000_000_000


def _s(ns: int) -> str:
    return f"{ns / S:.3f}"


class _Burst:
    """Events per key within a sliding window, from cumulative counters."""

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._last: dict[str, int] = {}
        self._events: dict[str, deque[tuple[int, int]]] = {}

    def update(self, now: int, totals: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for key, total in totals.items():
            delta = total - self._last.get(key, total)  # the first sight of a counter is its baseline
            self._last[key] = total
            events = self._events.setdefault(key, deque())
            if delta > 0:
                events.append((now, delta))
            while events and now - events[0][0] > self.window_ns:
                events.popleft()
            out[key] = sum(n for _, n in events)
        return out


class AutonomyMonitor:
    def __init__(
        self,
        controller: AutonomyController,
        config: AutonomyConfig,
        clock: Callable[[], int],
        symbols: Iterable[str],
        is_open: Callable[[str], bool] | None = None,
        log: Any = None,
    ) -> None:
        self.autonomy = controller
        self.cfg = config
        self.clock = clock
        self.symbols = tuple(symbols)
        self.is_open = is_open or (lambda _symbol: True)
        self.log = log or structlog.get_logger("ops.autonomy")
        now = clock()
        self.evaluations = 0
        self.figures: dict[str, str] = {}  # the last cycle's health figures (for evidence and status)
        self._redis_ok_ns = self._db_ok_ns = self._broker_ok_ns = now
        self._recorder_key: Any = None
        self._recorder_changed_ns = now
        self._recorder_seen = False
        self._recon = (0, 0)
        self._last_trade: dict[str, int] = {}
        self._last_seen_ns: dict[str, int] = {}
        self._traded: set[str] = set()  # symbols that traded in their current session
        self._was_open: dict[str, bool] = {}
        self._breaches = 0
        self._dropped: int | None = None
        window = int(config.strategy_burst_window_s * S)
        self._errors, self._rejects = _Burst(window), _Burst(window)

    async def run(self, sample: Callable[[], Awaitable[HealthSample]], stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                self.evaluate(await sample())
            except Exception:  # the monitor must outlive any bug in one probe
                self.log.exception("autonomy_monitor_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.cfg.eval_interval_s)

    def evaluate(self, sample: HealthSample) -> None:
        now = self.clock()
        self.figures = {}
        self.take_latch(sample.emergency_latch)
        self._redis(sample, now)
        self._database(sample, now)
        self._recorder_side(sample)
        self._queues(sample)
        self._memory(sample)
        self._broker(sample, now)
        self._drift(sample)
        self._drawdown(sample)
        self._feed(sample, now)
        self._strategies(sample, now)
        self._losses(sample)
        self.autonomy.set_condition(
            Reason.PERSISTENCE_FAILURE, sample.persist_error is not None, values={"error": sample.persist_error or ""}
        )
        self.autonomy.poll()
        self.evaluations += 1

    # --- one probe each ---
    def take_latch(self, latch: dict[str, Any] | None) -> None:
        """The emergency-stop latch file means HALT manual_operator until a rearm removes it."""
        if latch is not None and self.autonomy.active(Reason.MANUAL_OPERATOR) is None:
            self.autonomy.trip(
                Reason.MANUAL_OPERATOR,
                operator=str(latch.get("by", "emergency-stop")),
                detail=f"emergency-stop latch: {latch.get('reason', '?')}",
                values={k: str(v) for k, v in latch.items()},
            )

    def _redis(self, sample: HealthSample, now: int) -> None:
        if sample.redis_ok:
            self._redis_ok_ns = now
        silent = now - self._redis_ok_ns
        self.figures["redis_silent_s"] = _s(silent)
        self.autonomy.set_condition(
            Reason.REDIS_UNHEALTHY,
            silent > self.cfg.redis_unhealthy_s * S,
            values={"redis_silent_s": _s(silent), "error": sample.redis_error},
            thresholds={"redis_silent_s": self.cfg.redis_unhealthy_s},
        )

    def _database(self, sample: HealthSample, now: int) -> None:
        rec = sample.recorder
        if not sample.redis_ok:
            return  # unknown while Redis is away: that is redis_unhealthy's finding
        if rec is not None:
            key = rec.get("time")
            if key != self._recorder_key:
                self._recorder_key, self._recorder_changed_ns, self._recorder_seen = key, now, True
            fresh = now - self._recorder_changed_ns <= self.cfg.db_stale_s * S
            if fresh and (rec.get("db") or {}).get("healthy"):
                self._db_ok_ns = now
        age = now - self._db_ok_ns
        self.figures["db_write_age_s"] = _s(age) if self._recorder_seen else "n/a (no recorder stats yet)"
        self.autonomy.set_condition(
            Reason.CLICKHOUSE_UNHEALTHY,
            self._recorder_seen and age > self.cfg.db_stale_s * S,
            values={"db_write_age_s": _s(age), "db_error": str(((rec or {}).get("db") or {}).get("error") or "")},
            thresholds={"db_write_age_s": self.cfg.db_stale_s},
        )

    def _recorder_side(self, sample: HealthSample) -> None:
        rec = sample.recorder
        if rec is not None:
            wal = int((rec.get("wal") or {}).get("bytes") or 0)
            guard = bool((rec.get("disk_guard") or {}).get("active"))
            self.figures.update(wal_bytes=str(wal), disk_guard=str(guard))
            self.autonomy.set_condition(
                Reason.WAL_BACKLOG_UNHEALTHY,
                guard or wal > self.cfg.wal_backlog_max_bytes,
                values={"wal_bytes": wal, "disk_guard": guard},
                thresholds={"wal_bytes": self.cfg.wal_backlog_max_bytes},
            )
        col = sample.collector
        if col is not None:
            flapping = bool(col.get("flapping"))
            reconnects = (col.get("totals") or {}).get("reconnects", 0)
            self.figures.update(collector_flapping=str(flapping), collector_reconnects=str(reconnects))
            self.autonomy.set_condition(
                Reason.FEED_RECONNECT_FLAPPING, flapping, values={"flapping": flapping, "reconnects": reconnects}
            )

    def _queues(self, sample: HealthSample) -> None:
        limit = self.cfg.stream_backlog_fraction
        fullest, length = max(sample.stream_lengths.items(), key=lambda kv: kv[1], default=("", 0))
        stream_share = length / sample.stream_cap if sample.stream_cap else 0.0
        events_share = sample.events_pending / sample.events_max_pending if sample.events_max_pending else 0.0
        self.figures.update(
            stream_fullest=fullest, stream_fullest_len=str(length), events_pending=str(sample.events_pending)
        )
        self.autonomy.set_condition(
            Reason.QUEUE_DEPTH_EXCEEDED,
            stream_share > limit or events_share > limit,
            values={
                "stream": fullest,
                "stream_len": length,
                "stream_cap": sample.stream_cap,
                "events_pending": sample.events_pending,
                "events_max_pending": sample.events_max_pending,
            },
            thresholds={"share_of_cap": limit},
        )

    def _memory(self, sample: HealthSample) -> None:
        self.figures["rss_bytes"] = str(sample.rss_bytes)
        self.autonomy.set_condition(
            Reason.RSS_UNHEALTHY,
            sample.rss_bytes > self.cfg.rss_max_bytes,
            values={"rss_bytes": sample.rss_bytes},
            thresholds={"rss_bytes": self.cfg.rss_max_bytes},
        )
        available = sample.memory_available_bytes
        if available is not None:
            self.figures["memory_available_bytes"] = str(available)
            self.autonomy.set_condition(
                Reason.MEMORY_PRESSURE,
                available < self.cfg.memory_available_min_bytes,
                values={"memory_available_bytes": available},
                thresholds={"memory_available_bytes": self.cfg.memory_available_min_bytes},
            )

    def _broker(self, sample: HealthSample, now: int) -> None:
        checks, failures = sample.recon_checks, sample.recon_failures
        failing = failures > self._recon[1] and checks == self._recon[0]
        self._recon = (checks, failures)
        if sample.broker_connected and not failing:
            self._broker_ok_ns = now
        silent = now - self._broker_ok_ns
        self.figures["broker_silent_s"] = _s(silent)
        self.autonomy.set_condition(
            Reason.BROKER_UNAVAILABLE,
            silent > self.cfg.broker_unavailable_s * S,
            values={
                "broker_silent_s": _s(silent),
                "user_stream": sample.broker_connected,
                "position_query_failures": failures,
            },
            thresholds={"broker_silent_s": self.cfg.broker_unavailable_s},
        )

    def _drift(self, sample: HealthSample) -> None:
        self.figures["drifting"] = ",".join(sorted(sample.drifting))
        self.autonomy.set_condition(
            Reason.RECONCILIATION_DRIFT, bool(sample.drifting), values={"symbols": ",".join(sorted(sample.drifting))}
        )

    def _drawdown(self, sample: HealthSample) -> None:
        peak, equity = sample.peak_equity, sample.equity
        meaningful = equity is not None and sample.marks_complete and peak > 0 and peak >= self.cfg.drawdown_min_peak
        share = (peak - equity) / peak if meaningful and equity is not None else None
        breach = share is not None and share > self.cfg.drawdown_max_fraction
        self._breaches = self._breaches + 1 if breach else 0
        self.figures.update(equity=str(equity), peak_equity=str(peak), drawdown=str(share))
        self.autonomy.set_condition(
            Reason.PNL_PEAK_DRAWDOWN,
            self._breaches >= self.cfg.drawdown_consecutive,
            values={"equity": equity, "peak_equity": peak, "drawdown": share, "consecutive": self._breaches},
            thresholds={"drawdown": self.cfg.drawdown_max_fraction, "consecutive": self.cfg.drawdown_consecutive},
        )

    def _feed(self, sample: HealthSample, now: int) -> None:
        active: list[str] = []
        for symbol in self.symbols:
            is_open = self.is_open(symbol)
            if is_open and not self._was_open.get(symbol, False):
                self._traded.discard(symbol)  # a new session: active again once it trades
            self._was_open[symbol] = is_open
            trade = sample.last_trade_ids.get(symbol)
            if trade is not None and trade != self._last_trade.get(symbol):
                self._last_trade[symbol], self._last_seen_ns[symbol] = trade, now
                if is_open:
                    self._traded.add(symbol)
            if is_open and symbol in self._traded:
                active.append(symbol)
        gaps = {s: now - self._last_seen_ns[s] for s in active}
        share = self.cfg.feed_gap_majority_fraction
        for reason, limit_s in (
            (Reason.FEED_GAP_MAJORITY, self.cfg.feed_gap_s),
            (Reason.FEED_GAP_HALT, self.cfg.feed_gap_halt_s),
        ):
            gapped = sorted(s for s, gap in gaps.items() if gap > limit_s * S)
            self.autonomy.set_condition(
                reason,
                bool(active) and len(gapped) / len(active) > share,
                values={
                    "gapped": ",".join(gapped),
                    "active": len(active),
                    "longest_gap_s": _s(max(gaps.values(), default=0)),
                },
                thresholds={"gap_s": limit_s, "share_of_active": share},
            )
        self.figures.update(feed_active=str(len(active)), feed_longest_gap_s=_s(max(gaps.values(), default=0)))

    def _strategies(self, sample: HealthSample, now: int) -> None:
        for reason, burst, totals, limit in (
            (Reason.STRATEGY_EXCEPTION, self._errors, sample.strategy_errors, self.cfg.strategy_error_burst),
            (Reason.STRATEGY_REJECT_SPIKE, self._rejects, sample.strategy_rejects, self.cfg.strategy_reject_burst),
        ):
            for strategy, n in burst.update(now, totals).items():
                if n >= limit:
                    self.autonomy.trip(
                        reason,
                        strategy_id=strategy,
                        values={"in_window": n},
                        thresholds={"burst": limit, "window_s": self.cfg.strategy_burst_window_s},
                        detail=f"{n} in {self.cfg.strategy_burst_window_s:g} s",
                    )

    def _losses(self, sample: HealthSample) -> None:
        dropped = sample.events_dropped
        if self._dropped is not None and dropped > self._dropped:
            self.autonomy.trip(
                Reason.RECORDER_DATA_LOSS,
                values={"events_dropped": dropped - self._dropped},
                detail="engine events dropped before the recorder got them (Redis away too long)",
            )
        self._dropped = dropped
