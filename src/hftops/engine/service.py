"""Composition root of the engine process: `build_engine(config)` wires market data (Redis), the pure
trading core, the execution layer (broker), event publishing, checkpoints and reconciliation.

Startup order: Redis -> checkpoint -> broker (user-data stream) -> backfill of fills missed while down ->
startup reconciliation -> READY. A corrupt checkpoint or a refused reconciliation keeps the process up
(status, checkpoint evidence, drift events) but sends no order: `refusing_reason` says why and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import structlog

from hftops.bus.client import async_client
from hftops.config import Config
from hftops.config.autonomy import autonomy_settings
from hftops.config.paths import DataPaths
from hftops.engine.booked import BookedFills
from hftops.engine.checkpoint import CheckpointCorrupt, checkpoint_path, load_checkpoint, write_checkpoint
from hftops.engine.commands import CommandInbox
from hftops.engine.core import TradingCore
from hftops.engine.events import EventPublisher
from hftops.engine.feed import MarketFeed
from hftops.engine.gates import build_gate_chain
from hftops.engine.loader import limit_specs, load_strategies
from hftops.engine.orders import InvalidTransition
from hftops.engine.positions import PositionBook
from hftops.engine.reconcile import (
    BrokerPosition,
    DriftMonitor,
    apply_startup_reconciliation,
    reconcile_startup,
    startup_recon_settings,
)
from hftops.engine.snapshot import broker_reject_reason, engine_stats, pnl_snapshot, positions_snapshot
from hftops.engine.state import EngineState
from hftops.execution import BrokerError, ExecutionLayer, build_execution
from hftops.lifecycle import notify_ready, notify_stopping, notify_watchdog
from hftops.model.exec_events import ReconEvent
from hftops.model.market import DeadLetter
from hftops.model.orders import Bbo, Fill, GateResult, Intent, IntentKind, OrderStatus, OrderUpdate, Tick
from hftops.model.phases import Phase
from hftops.model.streams import ExecKind, OpsKind
from hftops.notify import build_notifier
from hftops.notify.engine_command import notify_test_handler
from hftops.ops.autonomy_wiring import AutonomyWiring, autonomy_gates, build_controller
from hftops.ops.flatten_command import flatten_handler
from hftops.ops.flatten_port import EngineFlattenPort
from hftops.ops.margin_monitor import MarginMonitor
from hftops.ops.position_flattener import PositionFlattener
from hftops.ops.session_wiring import build_session_governor, cancels_for, request_track_flatten, session_gates

ENV_CHECKPOINT_ENABLED = "HFT_CHECKPOINT_ENABLED"
TICK_S = 0.25  # housekeeping period: watchdog, latch, snapshots (well inside the 1 s heartbeat)
PRUNE_AFTER_NS = 600 * 1_000_000_000  # terminal orders stay in the router this long (late reports still match)
STOP_BUDGET_S = 4.0  # cancels + checkpoint must fit in the supervisor's stop timeout


def _flag(environ: Mapping[str, str], name: str, default: str = "1") -> bool:
    return environ.get(name, default).strip().lower() not in ("0", "false", "no", "off")


class Engine:
    def __init__(
        self, config: Config, *, environ: Mapping[str, str], clock: Callable[[], int] = time.time_ns, log: Any = None
    ) -> None:
        self.config = config
        self.paths = DataPaths(config.data_dir)
        self.log = log or structlog.get_logger("engine").bind(component="engine")
        self.clock = clock
        self.venue = config.venue.name
        self.symbols = tuple(config.venue.symbols)
        self.recon_enabled, self.recon_threshold = startup_recon_settings(environ)
        self.checkpoint_enabled = _flag(environ, ENV_CHECKPOINT_ENABLED)
        self.checkpoint_file: Path = checkpoint_path(self.paths.state)

        self.state = EngineState(clock, PositionBook(config.engine.initial_equity))
        # Autonomy (ops/): one controller decides the platform mode and quarantines; persisted, restored at boot.
        self.autonomy_settings = autonomy_settings(config, environ)
        self.autonomy = build_controller(config, self.autonomy_settings, clock, self.log)
        self.autonomy_gate, self.governor_gate = autonomy_gates(self.autonomy)
        # Flattening (ops/): closes positions until the broker confirms them flat; its gate keeps a scope
        # being flattened from reopening; a flatten still open at its deadline goes HALT (flatten_failed).
        self.flattener = PositionFlattener(
            EngineFlattenPort(self), config.flatten, clock=clock, autonomy=self.autonomy, log=self.log
        )
        # Sessions (ops/): phases from the wall clock; FORCE_FLAT hands the track to the flattener.
        self.sessions = build_session_governor(
            config, environ=environ, clock=clock, on_force_flat=self._on_force_flat, log=self.log
        )
        self.session_gate, self.flatten_gate = session_gates(self.sessions)
        self._force_flat_pending: set[str] = set()  # FORCE_FLAT tracks seen before startup finished
        overrides, default = limit_specs(config)
        self.chain = build_gate_chain(
            overrides,
            default,
            clock,
            safety_gates=(
                self.session_gate,
                self.flatten_gate,
                self.flattener.gate,
                self.autonomy_gate,
                self.governor_gate,
            ),
        )
        self.strategies = load_strategies(config, self.state)
        self.core = TradingCore(self.state, self.strategies, self.chain, on_strategy_error=self._strategy_error)
        self.redis = async_client(config.redis_url)
        self.publisher = EventPublisher(self.redis, self.venue)
        self.feed = MarketFeed(self.redis, self.venue, self.symbols, with_bbo=config.venue.bbo)
        self.drift = DriftMonitor(config.engine.recon_drift_checks, clock)
        self.execution: ExecutionLayer = build_execution(
            config, environ=environ, on_order=self._on_order, on_fill=self._on_fill, on_bad_event=self._on_bad_event
        )

        self.stopping = asyncio.Event()
        self.phase = "starting"
        self.started = False  # startup finished: positions are loaded and reconciled (checkpoints allowed)
        self.refusing_reason: str | None = None
        self.checkpoint_corrupt = False
        self.booked = BookedFills(floor_ns=clock())  # fills before it are in the broker's positions
        self.last_checkpoint_ns: int | None = None
        self.broker_rejects: dict[tuple[str, str], int] = {}  # (strategy, reason) -> count
        self.counters = {
            "refused_intents": 0,
            "backfill_skipped": 0,
            "send_errors": 0,
            "invalid_updates": 0,
            "bad_events": 0,
            "recon_query_failures": 0,
            "strategy_errors": 0,
            "duplicate_cancels": 0,
        }
        self._sends: set[asyncio.Task[None]] = set()
        self._canceling: set[str] = set()  # client order ids with a cancel (or amend) on its way
        self._dirty = True
        # Operator notifications (notify/): the safety layer calls self.notifier.notify(...). It runs until
        # after the shutdown sweep, so what the sweep reports still goes out (critical first).
        self.notifier = build_notifier(config, environ, clock, log=self.log)
        self.notifier.status_line = self._notify_summary
        self._notifier_stop = asyncio.Event()
        self.commands = CommandInbox(self.redis, self.log)
        self.commands.register("notify_test", notify_test_handler(self.notifier))
        self.commands.register("flatten", flatten_handler(self.flattener))
        self.flattener.notifier = self.notifier
        # Margin (ops/): polls the broker's account; margin_critical -> REDUCE_ONLY, alerts on the edges.
        self.margin = MarginMonitor(
            self.execution.rest,
            self.autonomy,
            self.notifier,
            clock,
            config=config.margin,
            publish=lambda e: self.publisher.publish_ops(OpsKind.MARGIN, e, e.level),
            log=self.log,
        )
        self.autonomy_wiring = AutonomyWiring(self, self.autonomy_settings)  # monitor, actions, halt/rearm

    # --- process lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> int:
        publisher = asyncio.create_task(self.publisher.run(self.stopping), name="events")
        housekeeping = asyncio.create_task(self._housekeeping(), name="housekeeping")
        notifier = asyncio.create_task(self.notifier.run(self._notifier_stop), name="notify")
        commands = asyncio.create_task(self.commands.run(self.stopping), name="commands")
        try:
            await self.autonomy_wiring.open()  # restores latches before anything can trade
            if await self._startup():
                feed = asyncio.create_task(self.feed.run(self.stopping, self._on_tick, self._on_bbo), name="feed")
                recon = asyncio.create_task(self._recon_loop(), name="recon")
                tasks = [feed, recon]
                if self.config.margin.enabled:
                    tasks.append(asyncio.create_task(self.margin.run(self.stopping), name="margin"))
                await self.stopping.wait()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.phase = "stopping"
            notify_stopping()
            await self._shutdown()
            commands.cancel()  # after the sweep: a command arriving now has nothing left to act on
            await asyncio.gather(commands, return_exceptions=True)
            self._notifier_stop.set()
            with contextlib.suppress(TimeoutError):  # run() bounds its own flush; this guards a stuck close
                await asyncio.wait_for(
                    asyncio.gather(notifier, return_exceptions=True), self.config.notify.stop_flush_s + 1.0
                )
            housekeeping.cancel()
            await asyncio.gather(housekeeping, return_exceptions=True)
            await self.autonomy_wiring.close()
            await asyncio.wait_for(asyncio.gather(publisher, return_exceptions=True), 2.0)
            await self.publisher.publish_stats(self.stats())
            await self.redis.aclose()
        return 0

    async def _startup(self) -> bool:
        if not await self._wait(self._redis_up, "Redis", self.config.redis_url):
            return False
        self._load_checkpoint()
        if not await self._wait(self._broker_up, "broker", self.config.broker_rest_url):
            return False
        if not await self._wait(self._backfill, "broker trade history", self.config.broker_rest_url):
            return False
        if not self.checkpoint_corrupt and not await self._wait(
            self._reconcile_at_start, "broker positions", self.config.broker_rest_url
        ):
            return False
        await self.feed.position_at_latest()
        self.phase = "refusing" if self.refusing_reason else "running"
        self.started = True
        self._force_flat_pending_now()
        self.autonomy_wiring.on_ready()  # HALT restored at boot: cancel and flatten now that the broker is up
        notify_ready(f"engine {self.phase}")
        self.log.info(
            "engine_ready",
            phase=self.phase,
            refusing_reason=self.refusing_reason,
            strategies=[s.strategy_id for s in self.strategies],
            net={k: str(v) for k, v in self.state.positions.net().items()},
        )
        self._dispatch(self.core.start())
        return True

    async def _wait(self, step: Callable[[], Any], what: str, where: str) -> bool:
        """Retry a startup step with backoff until it succeeds or the engine is told to stop."""
        delay = 0.25
        while not self.stopping.is_set():
            try:
                await step()
                return True
            except Exception as exc:  # every failure here is retried; the log says what and where
                self.log.warning("engine_startup_waiting", step=what, at=where, error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, 5.0)
        return False

    async def _redis_up(self) -> None:
        await asyncio.wait_for(self.redis.ping(), 2.0)

    def _load_checkpoint(self) -> None:
        if not self.checkpoint_enabled:
            self.log.warning(
                "checkpoint_disabled",
                env=ENV_CHECKPOINT_ENABLED,
                hint="positions start from the broker's through startup reconciliation",
            )
            return
        try:
            body = load_checkpoint(self.checkpoint_file)
        except CheckpointCorrupt as exc:
            self.checkpoint_corrupt = True
            self.refusing_reason = str(exc)
            self.log.error("checkpoint_corrupt", path=str(exc.path), problem=exc.problem, error=str(exc))
            return
        if body is None:
            self.log.info("checkpoint_absent", path=str(self.checkpoint_file))
            return
        book = PositionBook.restore(body.positions, self.config.engine.initial_equity)
        book.peak_equity = max(book.peak_equity, body.peak_equity)
        self.state.positions = book
        self.booked = BookedFills.from_checkpoint(body.written_ns, body.booked_trade_ids)
        # fills made while the engine was down, however long, are read back from the broker's trade history
        self.execution.router.backfill_from_ms = self.booked.floor_ns // 1_000_000
        self.last_checkpoint_ns = body.written_ns
        self.log.info(
            "checkpoint_loaded",
            path=str(self.checkpoint_file),
            trading_date=str(body.trading_date),
            positions=len(body.positions),
            net={k: str(v) for k, v in book.net().items()},
        )

    async def _broker_up(self) -> None:
        layer = self.execution
        if layer._task is None:  # first attempt: sync the clock and open the user-data stream
            try:
                await layer.start(connect_timeout_s=5.0)
            except BrokerError:
                layer._task = None  # failed before the stream task started: the next attempt starts again
                raise
        else:  # the stream task reconnects by itself: wait for it
            await asyncio.wait_for(layer.stream.synced.wait(), 5.0)

    async def _backfill(self) -> None:
        """Fills the venue made while the engine was down (userTrades); older ones are in the checkpoint."""
        report = await self.execution.router.resync(self.symbols)
        self.log.info(
            "backfill_done",
            fills_recovered=report.fills_recovered,
            open_orders=report.open_orders,
            skipped_already_booked=self.counters["backfill_skipped"],
        )

    async def _broker_positions(self) -> dict[str, BrokerPosition]:
        rows = await self.execution.rest.position_risk()
        return {r.symbol: BrokerPosition(symbol=r.symbol, qty=r.positionAmt, entry_price=r.entryPrice) for r in rows}

    async def _reconcile_at_start(self) -> None:
        if not self.recon_enabled:
            self.log.warning(
                "startup_recon_disabled",
                env="HFT_STARTUP_RECON_ENABLED",
                hint="positions are the checkpoint's; the broker's view is not checked at start",
            )
            return
        broker = await self._broker_positions()
        result = reconcile_startup(self.state.positions.net(), broker, self.recon_threshold)
        for d in result.decisions:
            self._publish_recon(f"startup_{d.action.value}", d.symbol, d.local_qty, d.broker_qty, d.detail)
            self.log.info(
                "startup_recon", symbol=d.symbol, action=d.action.value, reason=d.reason.value, detail=d.detail
            )
        if not result.ok:
            self.refusing_reason = "startup reconciliation refused trading: " + "; ".join(
                d.detail for d in result.refusals
            )
            self.log.error("startup_recon_refused", reason=self.refusing_reason)
            return
        apply_startup_reconciliation(self.state.positions, result, broker)
        self._dirty = True

    async def _shutdown(self) -> None:
        await self.flattener.close()  # a flatten still running is reported as interrupted, not escalated
        if self._sends:  # orders on their way must land before the cancel sweep, or they would stay
            await asyncio.wait(list(self._sends), timeout=1.0)
        with contextlib.suppress(Exception):
            self.core.stop()  # strategies hear the stop; what they answer is not sent any more
        cancel = self.config.engine.cancel_on_stop and self.started
        try:
            if cancel and self.execution._task is not None:
                report = await asyncio.wait_for(self.execution.router.cancel_all(self.symbols), STOP_BUDGET_S / 2)
                self.log.info(
                    "engine_orders_canceled", left_open=report.open_orders, fills_recovered=report.fills_recovered
                )
        except Exception as exc:  # the broker may be down at stop: say what is left, still checkpoint
            self.log.error(
                "engine_cancel_on_stop_failed",
                error=f"{type(exc).__name__}: {exc}",
                hint="check `trading orders --open` / the venue for resting orders",
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.execution.stop(cancel_open_orders=False), 1.5)
        self.write_checkpoint()
        left = [
            {"strategy": p.strategy_id, "symbol": p.symbol, "qty": str(p.qty), "avg_price": str(p.avg_price)}
            for p in self.state.positions
            if p.qty != 0
        ]
        self.log.info(
            "engine_stopped_with_positions",
            positions=left,
            net={k: str(v) for k, v in self.state.positions.net().items() if v != 0},
        )
        self._publish_snapshots()

    # --- periodic work -------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        last_stats = last_checkpoint = 0.0
        while True:
            notify_watchdog()
            now = time.monotonic()
            try:
                self._poll_sessions()
                if now - last_stats >= 1.0 or self._dirty:
                    if self.phase != "starting":
                        self._publish_snapshots()
                    if now - last_stats >= 1.0:
                        last_stats = now
                        await self.publisher.publish_stats(self.stats())
                if self.phase == "running" and now - last_checkpoint >= self.config.engine.checkpoint_interval_s:
                    last_checkpoint = now
                    self.write_checkpoint()
                    # finished orders are forgotten after a while (their trade ids stay known): bounded memory
                    self.execution.router.prune(self.clock() - PRUNE_AFTER_NS)
            except Exception:  # housekeeping carries the watchdog: it must outlive any bug in a snapshot
                self.counters["housekeeping_errors"] = self.counters.get("housekeeping_errors", 0) + 1
                self.log.exception("engine_housekeeping_failed")
            await asyncio.sleep(TICK_S)

    def _poll_sessions(self) -> None:
        transitions = self.sessions.poll()
        for event in transitions:
            self.publisher.publish_ops(OpsKind.SESSION, event, event.to_phase)
        if transitions and self.started:
            self._dispatch(cancels_for(transitions, self.sessions, self.state))

    def _on_force_flat(self, track: str) -> None:
        if not self.started:  # positions are not loaded and reconciled yet: flatten once they are
            self._force_flat_pending.add(track)
            return
        request_track_flatten(self.flattener, track, self.log)

    def _force_flat_pending_now(self) -> None:
        for track in sorted(self._force_flat_pending):
            self._force_flat_pending.discard(track)
            if self.sessions.track_phase(track) is Phase.FORCE_FLAT:
                self._on_force_flat(track)

    async def _cancel_all_for_halt(self) -> None:
        in_flight = [t for t in self._sends if t is not asyncio.current_task()]
        if in_flight:  # an order sent just before the latch must not be left resting
            await asyncio.wait(in_flight, timeout=self.config.broker.timeout_s)
        try:
            await self.execution.router.cancel_all(self.symbols)
        except Exception as exc:
            self.log.error("halt_cancel_failed", error=f"{type(exc).__name__}: {exc}")

    async def _recon_loop(self) -> None:
        interval = self.config.engine.recon_interval_s
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)
            if self.stopping.is_set():
                return
            try:
                broker = await self._broker_positions()
            except Exception as exc:  # not drift: the broker did not answer (5xx, timeout, bad JSON)
                self.drift.query_failed()
                self.counters["recon_query_failures"] += 1
                self.log.warning("recon_query_failed", error=f"{type(exc).__name__}: {exc}")
                continue
            held = {symbol: p.qty for symbol, p in broker.items()}
            for report in self.drift.observe(self.state.positions.net(), held):
                kind = "resolved" if report.resolved else "drift"
                detail = (
                    f"{report.symbol}: engine {report.local_qty}, broker {report.broker_qty} ({report.checks} checks)"
                )
                (self.log.info if report.resolved else self.log.warning)("recon_" + kind, detail=detail)
                self._publish_recon(
                    kind,
                    report.symbol,
                    report.local_qty,
                    report.broker_qty,
                    detail,
                    checks=report.checks,
                    since_ns=report.since_ns,
                )

    def write_checkpoint(self) -> None:
        # Never over a corrupt file (the operator's evidence) or while refusing (positions not trusted).
        if not self.checkpoint_enabled or self.refusing_reason is not None or not self.started:
            return
        try:
            now = self.clock()
            book = self.state.positions
            write_checkpoint(
                self.checkpoint_file,
                book.snapshots(),
                datetime.fromtimestamp(now / 1e9, UTC).date(),
                now,
                book.peak_equity,
                self.booked.for_checkpoint(now),
            )
            self.last_checkpoint_ns = now
        except OSError as exc:
            self.log.error(
                "checkpoint_write_failed",
                path=str(self.checkpoint_file),
                error=str(exc),
                hint="check free space and permissions of the state directory",
            )

    # --- events in -----------------------------------------------------------------------------------

    def _on_tick(self, tick: Tick) -> None:
        if self.refusing_reason is not None:
            self.state.on_tick(tick)
            return
        self._dispatch(self.core.on_tick(tick))

    def _on_bbo(self, bbo: Bbo) -> None:
        if self.refusing_reason is not None:
            self.state.on_bbo(bbo)
            return
        self._dispatch(self.core.on_bbo(bbo))

    def _on_order(self, update: OrderUpdate) -> None:
        self.publisher.publish(ExecKind.ORDERS, update, update.status.value)
        self.flattener.on_order(update)
        try:
            intents = self.core.on_order_update(update)
        except InvalidTransition as exc:
            self.counters["invalid_updates"] += 1
            self.log.error("order_update_invalid", error=str(exc))
            return
        self._dispatch(intents)

    def _on_fill(self, fill: Fill) -> None:
        if self.booked.already_booked(fill):
            self.counters["backfill_skipped"] += 1  # booked before the checkpoint (or in the broker's position)
            return
        self.booked.record(fill, self.clock())
        self.publisher.publish(ExecKind.FILLS, fill, fill.side.value)
        self._dirty = True
        self._dispatch(self.core.on_fill(fill))
        self.flattener.on_fill(fill)  # after the book took the fill: the flattener plans from the book

    def _on_bad_event(self, reason: str, payload: str) -> None:
        self.counters["bad_events"] += 1
        self.publisher.dead_letter(
            DeadLetter(
                source="engine",
                reason="bad_broker_event",
                detail=reason,
                payload=payload.encode(),
                time_ns=self.clock(),
                venue=self.venue,
            )
        )

    def _strategy_error(self, strategy_id: str, hook: str, exc: BaseException) -> None:
        self.counters["strategy_errors"] += 1
        self.log.error("strategy_error", strategy=strategy_id, hook=hook, error=f"{type(exc).__name__}: {exc}")

    # --- orders out ----------------------------------------------------------------------------------

    def _dispatch(self, intents: Iterable[Intent]) -> None:
        for intent in intents:
            if self.refusing_reason is not None or self.stopping.is_set() or not self.started:
                self.counters["refused_intents"] += 1
                continue
            cid = intent.client_order_id
            if intent.kind is not IntentKind.NEW and cid:
                # a strategy repeats its cancel on every quote until the order is gone: one is enough
                if cid in self._canceling:
                    self.counters["duplicate_cancels"] += 1
                    continue
                self._canceling.add(cid)
            elif intent.kind is IntentKind.NEW:
                # registered and reported NEW now, not when the send task first runs: the strategy's next
                # callback and the position gates must already count it (else a burst of events stacks orders
                # past the strategy's inventory cap)
                intent = msgspec.structs.replace(intent, client_order_id=self.execution.router.prepare(intent))
            self._spawn(self._send(intent))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, intent: Intent) -> None:
        router = self.execution.router
        canceling = intent.client_order_id if intent.kind is not IntentKind.NEW else None
        try:
            if intent.kind is IntentKind.CANCEL and intent.client_order_id:
                await self._cancel(intent.client_order_id)
                return
            if intent.kind is IntentKind.AMEND and intent.client_order_id:
                await self._cancel(intent.client_order_id)  # Binance futures has no amend of every field
                intent = msgspec.structs.replace(intent, kind=IntentKind.NEW, client_order_id=None)
            if intent.kind is IntentKind.FORCE_FLAT:  # a reduce-only MARKET order (core.force_flat_order,
                # the flattener): whoever sent it follows it through the order updates
                await router.submit(msgspec.structs.replace(intent, kind=IntentKind.NEW))
                return
            if intent.kind is not IntentKind.NEW:
                return
            update = await router.submit(intent)
            if update.status is OrderStatus.REJECTED:
                reason = broker_reject_reason(update.reason)
                key = (intent.strategy_id, reason.value)
                self.broker_rejects[key] = self.broker_rejects.get(key, 0) + 1
                self._dispatch(self.core.on_broker_reject(intent, reason, update.reason))
        except KeyError:
            self.log.warning("cancel_unknown_order", client_order_id=intent.client_order_id)
        except Exception as exc:  # a send that failed is settled by the next resync; never kills the engine
            self.counters["send_errors"] += 1
            self.log.error(
                "order_send_failed",
                strategy=intent.strategy_id,
                symbol=intent.symbol,
                kind=intent.kind.value,
                error=f"{type(exc).__name__}: {exc}",
            )
        finally:
            if canceling:
                self._canceling.discard(canceling)

    def send_flatten_order(self, intent: Intent) -> GateResult | None:
        """One reduce-only MARKET order of the flattener (a FORCE_FLAT intent): gated like every intent, then
        sent through the router. Unlike `_dispatch` it is sent by a refusing engine too: it only takes risk
        away. None when sent, else the gate's refusal."""
        sent, result = self.chain.evaluate(intent, self.state)
        if sent is None:
            return result
        self._spawn(self._send(sent))
        return None

    async def _cancel(self, client_order_id: str) -> None:
        # the router holds a cancel until its order has reached the venue (OrderRouter.cancel)
        await self.execution.router.cancel(client_order_id)

    # --- events out ----------------------------------------------------------------------------------

    def _publish_snapshots(self) -> None:
        self._dirty = False
        now = self.clock()
        self.publisher.publish(ExecKind.POSITIONS, positions_snapshot(self.state, now))
        self.publisher.publish(ExecKind.PNL, pnl_snapshot(self.state, now))

    def _publish_recon(
        self, kind: str, symbol: str, local: Decimal, broker: Decimal, detail: str, checks: int = 0, since_ns: int = 0
    ) -> None:
        event = ReconEvent(
            time_ns=self.clock(),
            kind=kind,
            symbol=symbol,
            local_qty=local,
            broker_qty=broker,
            checks=checks,
            since_ns=since_ns,
            detail=detail,
            diff=broker - local,
        )
        self.publisher.publish(ExecKind.RECON, event, kind)

    def _notify_summary(self) -> str:
        open_positions = sum(1 for p in self.state.positions if p.qty != 0)
        return f"Engine {self.phase}; {open_positions} open position(s); autonomy {self.autonomy.ladder_mode.value}"

    def stats(self) -> dict[str, Any]:
        return engine_stats(self)


def build_engine(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], int] = time.time_ns,
    log: Any = None,
) -> Engine:
    """Construct every part of the engine from the configuration (call inside the running event loop)."""
    return Engine(config, environ=os.environ if environ is None else environ, clock=clock, log=log)
