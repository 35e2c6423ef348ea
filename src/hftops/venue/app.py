"""Composition root of the simulated venue: `build_venue(config)` wires market, ground truth, faults, servers.

One asyncio loop runs everything: the publishing tick (~1 ms), the WebSocket server (websockets), the REST and
admin server (FastAPI under uvicorn), a once-a-second stats/watchdog task, and the SIGTERM/SIGINT handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec
import structlog
import uvicorn
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from hftops.config import Config
from hftops.config.paths import DataPaths
from hftops.embedded_http import EmbeddedServer
from hftops.lifecycle import notify_ready, notify_status, notify_stopping, notify_watchdog
from hftops.venue.faults import FaultBook, FaultName, FaultRequest
from hftops.venue.ground_truth import GroundTruth
from hftops.venue.hub import Hub, json_response
from hftops.venue.market import Market, RateSchedule
from hftops.venue.rest import build_rest_app
from hftops.venue.symbols import SymbolSpec, spec_for
from hftops.venue.trading.service import Trading, build_trading
from hftops.venue.wire import StreamKind

TICK_S = 0.001
STATS_INTERVAL_S = 0.5  # also the watchdog period: well inside the supervisor's 1 s expectation
MAX_RATE = 1_000_000.0
SHUTDOWN_GRACE_S = 0.4  # per step; SIGTERM to exit stays well under 1 s even with stuck clients

log = structlog.get_logger("venue")


@dataclass
class Meter:
    """Messages generated and frames sent over the last stats interval, as rates."""

    generated: int = 0
    generated_per_s: float = 0.0
    frames_per_s: float = 0.0
    _last_generated: int = 0
    _last_frames: int = 0
    _last_time: float = 0.0

    def sample(self, now: float, frames_sent: int) -> None:
        elapsed = now - self._last_time
        if self._last_time and elapsed > 0:
            self.generated_per_s = (self.generated - self._last_generated) / elapsed
            self.frames_per_s = (frames_sent - self._last_frames) / elapsed
        self._last_time, self._last_generated, self._last_frames = now, self.generated, frames_sent


class Venue:
    """The running venue; the REST/admin app and the CLI talk to it through these methods."""

    def __init__(
        self,
        config: Config,
        specs: list[SymbolSpec],
        ground_truth: GroundTruth,
        faults: FaultBook,
        market: Market,
        hub: Hub,
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
        trading: Trading | None = None,
    ) -> None:
        self.config = config
        self.trading = trading
        self.specs = {s.symbol: s for s in specs}
        self.ground_truth = ground_truth
        self.faults = faults
        self.market = market
        self.hub = hub
        self.clock = clock
        self.wall_ms = wall_ms
        self.meter = Meter()
        self.started_at = time.time()
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ operations (admin API)

    def ground_truth_summary(self) -> dict[str, Any]:
        return {
            "venue": self.config.venue.name,
            "trade_stream": self.config.venue.trade_stream,
            "symbols": {
                symbol: {
                    "first_id": 1,
                    "last_id": self.market.published(symbol),
                    "published": self.market.published(symbol),
                    "bbo_published": self.market.book_published(symbol),
                }
                for symbol in self.specs
            },
        }

    def set_paused(self, paused: bool) -> None:
        self.market.paused = paused
        log.info("venue.publishing", paused=paused)

    def set_rate(self, rate: float) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be > 0 and <= {MAX_RATE:.0f} messages/s (got {rate})")
        self.market.schedule.rate = float(rate)
        log.info("venue.rate", rate=rate)

    def apply_fault(self, request: FaultRequest) -> None:
        self.faults.apply(request)  # raises FaultError before anything happens
        log.warning("venue.fault", **{k: v for k, v in msgspec.structs.asdict(request).items() if v is not None})
        if request.fault in (FaultName.DROP_CONNECTIONS, FaultName.DOWN):
            dropped = self.hub.drop_all(f"fault injection: {request.fault}")
            if self.trading is not None:
                dropped += self.trading.streams.drop_all()
            self.faults.counters.connections_dropped += dropped

    def clear_faults(self) -> None:
        self.faults.clear()
        log.info("venue.faults_cleared")

    def stats(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "venue": self.config.venue.name,
            "rate": self.market.schedule.rate,
            "current_target_rate": self.market.schedule.rate_at(now),
            "generated_per_s": round(self.meter.generated_per_s, 1),
            "frames_per_s": round(self.meter.frames_per_s, 1),
            "paused": self.market.paused,
            "down": self.faults.is_down(now),
            "uptime_s": round(time.time() - self.started_at, 3),
            "connections": len(self.hub.subscribers),
            "connection_details": self.hub.describe(),
            "published": {s: self.market.published(s) for s in self.specs},
            "bbo_published": {s: self.market.book_published(s) for s in self.specs},
            "messages_generated": self.meter.generated,
            "shortfall_messages": self.market.shortfall,
            "behind_s": round(self.market.behind(now), 4),
            "generated_until_s": round(self.market.generated_until, 6),
            "ground_truth_write_errors": self.market.write_errors,
            "hub": asdict(self.hub.counters),
            "faults": self.faults.describe(),
            "trading": None
            if self.trading is None
            else {
                "orders": len(self.trading.desk.orders),
                "open_orders": len(self.trading.desk.open_orders()),
                "fills": len(self.trading.journal.fills),
                "user_stream_connections": len(self.trading.streams.conns),
                "user_stream_events": self.trading.streams.events_sent,
            },
        }

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ running

    async def _publish_loop(self) -> None:
        step, publish, clock, wall_ms = self.market.step, self.hub.publish, self.clock, self.wall_ms
        meter = self.meter
        on_tick = self.trading.on_tick if self.trading is not None else None
        while True:
            tick = step(clock(), wall_ms())
            if tick is not None:
                meter.generated += tick.messages
                publish(tick)
                if on_tick is not None:
                    on_tick(tick)  # resting orders meet the touch the market just published
            await asyncio.sleep(TICK_S)

    async def _stats_loop(self) -> None:
        while True:
            notify_watchdog()
            self.meter.sample(self.clock(), self.hub.counters.frames_sent)
            if self.trading is not None:
                self.trading.streams.housekeeping()
            await asyncio.sleep(STATS_INTERVAL_S)

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or `stop()`); 0 on a clean stop, 1 if a part failed."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        sim = self.config.simulator
        ws_server = await serve(
            self._ws_handle,
            sim.host,
            sim.ws_port,
            process_request=self._ws_process_request,
            compression=None,
            max_size=65536,
            ping_interval=20,
            ping_timeout=60,
            close_timeout=1,
        )
        rest_socket = socket.create_server((sim.host, sim.rest_port), backlog=256)
        rest_server = EmbeddedServer(
            uvicorn.Config(
                build_rest_app(self),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        tasks = [loop.create_task(rest_server.serve(sockets=[rest_socket]), name="rest")]
        while not rest_server.started and not tasks[0].done():
            await asyncio.sleep(0.01)
        tasks += [
            loop.create_task(self._publish_loop(), name="publish"),
            loop.create_task(self._stats_loop(), name="stats"),
        ]
        stop_task = loop.create_task(self._stop.wait(), name="stop")
        log.info(
            "venue.started",
            ws=self.config.ws_base_url,
            rest=self.config.rest_base_url,
            symbols=list(self.specs),
            rate=sim.rate,
            seed=sim.seed,
            ground_truth={s: self.market.published(s) for s in self.specs},
        )
        notify_ready(f"publishing {sim.rate:.0f} msg/s on {self.config.ws_base_url}")
        done, _ = await asyncio.wait([stop_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stop_task]
        for task in failed:
            log.error(
                "venue.task_failed",
                task=task.get_name(),
                error=repr(task.exception()) if not task.cancelled() else "cancelled",
            )
        notify_stopping()
        notify_status("stopping")
        await self._shutdown(ws_server, rest_server, tasks, stop_task)
        return 1 if failed else 0

    def _ws_process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.trading is not None and self.trading.streams.claims(request.path):
            return self.trading.streams.process_request(conn, request)
        return self.hub.process_request(conn, request)

    async def _ws_handle(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request else ""
        if self.trading is not None and self.trading.streams.claims(path):
            await self.trading.streams.handle(conn)
        else:
            await self.hub.handle(conn)

    async def _shutdown(
        self,
        ws_server: Server,
        rest_server: EmbeddedServer,
        tasks: list[asyncio.Task[Any]],
        stop_task: asyncio.Task[Any],
    ) -> None:
        for task in tasks[1:]:
            task.cancel()
        stop_task.cancel()
        ws_server.close()  # close frames (1001) to every client
        rest_server.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(ws_server.wait_closed()), SHUTDOWN_GRACE_S)
        except TimeoutError:
            # A client that does not read cannot answer the close frame behind its backlog: cut it off.
            self.hub.abort_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws_server.wait_closed(), SHUTDOWN_GRACE_S)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(tasks[0], SHUTDOWN_GRACE_S)
        # Records are written each tick before sending, so closing the files loses nothing.
        self.ground_truth.close()
        if self.trading is not None:
            self.trading.close()
        log.info("venue.stopped", published={s: self.market.published(s) for s in self.specs})


def build_venue(
    config: Config,
    clock: Callable[[], float] = time.monotonic,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> Venue:
    sim, venue = config.simulator, config.venue
    specs = [spec_for(symbol) for symbol in venue.symbols]
    ground_truth = GroundTruth(DataPaths(config.data_dir).venue_state / venue.name, venue.symbols)
    faults = FaultBook(venue.symbols, clock)
    schedule = RateSchedule(sim.rate, sim.burst_factor, sim.burst_every_s, sim.burst_length_s, clock())
    market = Market(specs, ground_truth, faults, schedule, sim.seed, sim.bbo_share, book_ticker=venue.bbo)
    trade_kind = StreamKind.AGG_TRADE if venue.trade_stream == "aggTrade" else StreamKind.TRADE
    hub = Hub(specs, faults, trade_kind, sim.max_frame_bytes, sim.send_buffer_max_bytes, clock)
    trading = build_trading(
        specs,
        {s.symbol: market.trades[s.symbol].price for s in specs},
        DataPaths(config.data_dir).venue_state / venue.name / "trading",
        faults.trading,
        lambda: faults.is_down(clock()),
        clock,
        wall_ms,
        json_response,
        wallet=sim.wallet_usdt,
        default_leverage=sim.default_leverage,
        maker_rate=sim.maker_fee_rate,
        taker_rate=sim.taker_fee_rate,
        depth_levels=sim.depth_levels,
    )
    return Venue(config, specs, ground_truth, faults, market, hub, clock, wall_ms, trading)
