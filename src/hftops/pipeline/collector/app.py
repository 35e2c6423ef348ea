"""Composition root of the collector process: `build_collector(config)` and the `main` entry point."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Mapping

import structlog
import uvloop

from hftops.config import Config, load_config
from hftops.config.loader import ConfigError
from hftops.config.paths import DataPaths
from hftops.logs import configure_logging
from hftops.model.streams import MdKind
from hftops.pipeline.collector.connection import StreamSet, plan_stream_sets
from hftops.pipeline.collector.decode import FrameDecoder
from hftops.pipeline.collector.reasons import SOURCE
from hftops.pipeline.collector.rest import TradeHistory, history_path
from hftops.pipeline.collector.service import Clock, Collector, CollectorSettings
from hftops.pipeline.collector.windows import ReconnectWindows, reconnect_policies
from hftops.pipeline.collector.writer import BusWriter

WS_MAX_SIZE_FACTOR = 16  # the WebSocket layer accepts this much more than the cap, so oversize is dead-lettered


def stream_sets(config: Config, environ: Mapping[str, str]) -> list[StreamSet]:
    """Connections per reconnect policy: calendar-bound symbols (reconnect inside HFT_RECONNECT_HOURS) never
    share a connection with always-reconnecting ones. ValueError names a malformed window variable."""
    venue = config.venue
    policies = reconnect_policies(config.tracks, venue.symbols, environ)
    groups: dict[ReconnectWindows | None, list[str]] = {}
    for symbol in venue.symbols:
        groups.setdefault(policies[symbol], []).append(symbol)
    return [
        dataclasses.replace(stream_set, window=window)
        for window, symbols in groups.items()
        for stream_set in plan_stream_sets(symbols, venue.trade_stream, venue.bbo)
    ]


def build_collector(
    config: Config,
    log: structlog.stdlib.BoundLogger | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> Collector:
    """Construct every part of the collector from the configuration (call inside the running event loop)."""
    log = log or structlog.get_logger(SOURCE).bind(component=SOURCE)
    venue = config.venue
    tuning = config.collector
    settings = CollectorSettings(
        venue=venue.name,
        symbols=venue.symbols,
        ws_base_url=config.ws_base_url,
        stream_sets=tuple(stream_sets(config, os.environ if environ is None else environ)),
        tuning=tuning,
        stream_cap_entries=config.redis.stream_cap_entries,
        kinds=(MdKind.TRADE, MdKind.BBO) if venue.bbo else (MdKind.TRADE,),
        # The simulator's history starts with the run, so a first start takes all of it; a real venue's
        # history is years long, so a first start there begins at the first live trade.
        origin_id=0 if venue.kind == "simulated" else None,
        ws_max_size=tuning.max_frame_bytes * WS_MAX_SIZE_FACTOR,
    )
    decoder = FrameDecoder(
        venue.symbols,
        venue.trade_stream,
        venue.bbo,
        tuning.max_frame_bytes,
        spot_book_ticker=venue.kind == "binance_spot",
    )
    history = TradeHistory(
        config.rest_base_url,
        history_path(venue.kind, venue.trade_stream),
        tuning.rest_timeout_s,
        api_key=os.environ.get("HFT_BINANCE_API_KEY"),
    )
    writer = BusWriter(config.redis_url, venue.name)
    return Collector(settings, decoder, writer, history, log, clock=clock, rest_rows=venue.trade_stream)


async def run(config: Config) -> int:
    paths = DataPaths(config.data_dir)
    log = configure_logging(SOURCE, paths.log, config.log.level, config.log.max_bytes, config.log.backups)
    collector = build_collector(config, log)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, collector.stop)
    log.info(
        "collector_starting",
        venue=config.venue.name,
        symbols=list(config.venue.symbols),
        ws=config.ws_base_url,
        rest=config.rest_base_url,
        redis=config.redis_url,
        connections=len(collector.connections),
    )
    return await collector.run()


def main() -> int:
    try:
        config = load_config()
        stream_sets(config, os.environ)  # a malformed HFT_RECONNECT_HOURS(_2) stops the start, naming it
    except (ConfigError, ValueError) as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    return uvloop.run(run(config))
