"""Wiring of the autonomy layer into the engine (called from `engine.service.Engine`): the controller and its
gates are built before the gate chain; the monitor, its probe, the actions and the `halt`/`rearm` command
handlers once the engine's Redis, publisher, notifier and command inbox exist.

Boot: `open()` takes the state lock (waiting while another process holds it), restores the persisted
latches, then the monitor starts; `on_ready()` runs the HALT actions that had to wait for the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from hftops.config import Config
from hftops.config.autonomy import AutonomyConfig
from hftops.config.paths import DataPaths
from hftops.model.orders import Intent, IntentKind
from hftops.ops.autonomy_actions import AutonomyActions, EnginePort
from hftops.ops.autonomy_gate import AutonomyGate, StrategyGovernorGate, risk_increasing_orders
from hftops.ops.autonomy_monitor import AutonomyMonitor
from hftops.ops.autonomy_probes import EngineProbe
from hftops.ops.autonomy_state import AutonomyController
from hftops.ops.autonomy_store import AutonomyStore
from hftops.ops.manual_rearm import register_commands

if TYPE_CHECKING:
    from hftops.engine.service import Engine


def build_controller(config: Config, settings: AutonomyConfig, clock: Any, log: Any) -> AutonomyController:
    store = AutonomyStore(DataPaths(config.data_dir).state)
    return AutonomyController(
        clock=clock,
        cooldown_s=settings.cooldown_s,
        boot_grace_s=settings.boot_grace_s,
        store=store,
        strategy_ids=[s.id for s in config.engine.strategies if s.enabled],
        log=log,
    )


def autonomy_gates(controller: AutonomyController) -> tuple[AutonomyGate, StrategyGovernorGate]:
    return AutonomyGate(controller), StrategyGovernorGate(controller)


class AutonomyWiring:
    def __init__(self, engine: Engine, settings: AutonomyConfig) -> None:
        self.engine = engine
        self.settings = settings
        self.controller: AutonomyController = engine.autonomy
        assert self.controller.store is not None
        self.store: AutonomyStore = self.controller.store
        sessions = getattr(engine, "sessions", None)
        self.monitor = AutonomyMonitor(
            self.controller,
            settings,
            engine.clock,
            engine.symbols,
            is_open=getattr(sessions, "is_open", None),
            log=engine.log,
        )
        self.probe = EngineProbe(engine, engine.redis, self.store)
        self._last_lengths: dict[str, int] = {}
        self.actions = AutonomyActions(
            self.controller,
            self._port(),
            flatten_on_halt=settings.flatten_on_halt,
            log_tail_lines=settings.log_tail_lines,
            log=engine.log,
        )
        register_commands(engine.commands, self.controller, self.store)
        self._task: asyncio.Task[None] | None = None

    def _port(self) -> EnginePort:
        engine = self.engine
        return EnginePort(
            publisher=engine.publisher,
            notifier=lambda: getattr(engine, "notifier", None),
            positions=lambda: list(engine.state.positions),
            health=lambda: dict(self.monitor.figures),
            stream_lag=self._stream_lag,
            ready=lambda: engine.started and engine.execution._task is not None,
            cancel_all=engine._cancel_all_for_halt,
            cancel_strategy=self._cancel_strategy,
            cancel_risk_increasing=self._cancel_risk_increasing,
            request_flatten=self._request_flatten,
            spawn=engine._spawn,
            log_path=engine.paths.log / "engine.log",
        )

    # --- lifecycle ---
    async def open(self) -> None:
        """Own the state (waits while another process holds its lock), restore it, start the monitor."""
        attempts = 0
        while not self.store.acquire():
            if attempts % 100 == 0:  # every 10 s
                self.engine.log.error(
                    "autonomy_state_locked",
                    lock=str(self.store.lock_path),
                    hint="another engine (or a halt/rearm in progress) holds it; waiting",
                )
            if self.engine.stopping.is_set():
                return
            await asyncio.sleep(0.1)
            attempts += 1
        dropped = self.controller.restore()
        if dropped:
            self.engine.log.warning(
                "autonomy_stale_flags_cleared",
                dropped=dropped,
                hint="auto-recoverable conditions are judged afresh after the boot grace",
            )
        self.monitor.take_latch(self.store.emergency_latch())  # before anything can trade, not a cycle later
        self._task = asyncio.create_task(self.monitor.run(self._sample, self.engine.stopping), name="autonomy")

    async def _sample(self) -> Any:
        sample = await self.probe.sample()
        self._last_lengths = sample.stream_lengths
        return sample

    def on_ready(self) -> None:
        self.actions.on_ready()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.controller.poll()  # a last persist if one failed
        self.store.release()

    # --- engine-side actions ---
    def _cancel_strategy(self, strategy_id: str) -> None:
        orders = [o for o in self.engine.state.orders if o.strategy_id == strategy_id]
        self.engine.log.error("strategy_quarantine_cancels", strategy=strategy_id, orders=len(orders))
        self._cancel(orders)

    def _cancel_risk_increasing(self) -> None:
        orders = risk_increasing_orders(self.engine.state)
        self.engine.log.error("reduce_only_cancels", orders=len(orders))
        self._cancel(orders)

    def _cancel(self, orders: list[Any]) -> None:
        self.engine._dispatch(
            Intent(
                kind=IntentKind.CANCEL, strategy_id=o.strategy_id, symbol=o.symbol, client_order_id=o.client_order_id
            )
            for o in orders
        )

    def _request_flatten(self) -> str:
        flattener = getattr(self.engine, "flattener", None)
        if flattener is None:
            raise RuntimeError("no flattener is wired into this engine; positions are kept")
        job = flattener.request(scope="all", trigger="halt")
        return str(getattr(job, "id", job))

    def _stream_lag(self) -> dict[str, str]:
        lag = {key: str(n) for key, n in sorted(self._last_lengths.items())}
        lag["engine_events_pending"] = str(len(self.engine.publisher._pending))
        return lag

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.controller.snapshot(),
            "figures": dict(self.monitor.figures),
            "evaluations": self.monitor.evaluations,
            "actions": dict(self.actions.counters),
        }
