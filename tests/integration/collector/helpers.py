"""Shared pieces of the collector integration tests: config, an in-process collector, reading streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import redis

from hftops.config import Config
from hftops.model.market import BBO_BATCH_DECODER, TRADE_BATCH_DECODER, DeadLetter
from hftops.model.streams import DLQ_STREAM, MdKind, collector_cursor_key, md_stream
from hftops.pipeline.collector.app import build_collector
from hftops.pipeline.collector.service import Collector
from tests.integration.collector.fake_venue import FakeVenue

FAST = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "reconnect_stable_s": 5.0, "buffer_max": 1000}


def make_config(
    tmp_path: Path, venue_ws: str, venue_rest: str, redis_url: str, symbols: tuple[str, ...], **collector: Any
) -> Config:
    return Config.model_validate(
        {
            "data_dir": str(tmp_path / "var"),
            "venue": {"symbols": list(symbols), "ws_url": venue_ws, "rest_url": venue_rest},
            "redis": {"url": redis_url},
            "collector": {**FAST, **collector},
        }
    )


@contextlib.asynccontextmanager
async def running_collector(config: Config) -> AsyncIterator[Collector]:
    collector = build_collector(config)
    task = asyncio.create_task(collector.run())
    try:
        yield collector
    finally:
        collector.stop()
        assert await asyncio.wait_for(task, 5) == 0


async def wait_ready(collector: Collector, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not collector.ready:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("collector not ready in time")
        await asyncio.sleep(0.01)


def trade_ids(client: redis.Redis, symbol: str, venue: str = "sim") -> list[int]:
    """Every trade id in the stream, in stream order, duplicates kept."""
    ids: list[int] = []
    for _id, fields in client.xrange(md_stream(venue, MdKind.TRADE, symbol)):
        rows = TRADE_BATCH_DECODER.decode(fields[b"d"])
        assert int(fields[b"n"]) == len(rows)
        assert int(fields[b"lo"]) == min(r.trade_id for r in rows)
        assert int(fields[b"hi"]) == max(r.trade_id for r in rows)
        ids.extend(r.trade_id for r in rows)
    return ids


def bbo_ids(client: redis.Redis, symbol: str, venue: str = "sim") -> list[int]:
    ids: list[int] = []
    for _id, fields in client.xrange(md_stream(venue, MdKind.BBO, symbol)):
        ids.extend(r.update_id for r in BBO_BATCH_DECODER.decode(fields[b"d"]))
    return ids


def entries(client: redis.Redis, symbol: str, kind: MdKind = MdKind.TRADE, venue: str = "sim") -> list[Any]:
    return client.xrange(md_stream(venue, kind, symbol))


def dead_letters(client: redis.Redis) -> list[tuple[dict[bytes, bytes], DeadLetter]]:
    out = []
    for _id, fields in client.xrange(DLQ_STREAM):
        out.append((fields, msgspec.msgpack.decode(fields[b"d"], type=DeadLetter)))
    return out


def cursor(client: redis.Redis, venue: str = "sim") -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(collector_cursor_key(venue)).items()}


def complete(client: redis.Redis, venue: FakeVenue, symbol: str) -> bool:
    """True when the stream holds every id the venue made for `symbol`."""
    last = venue.last_id(symbol)
    return set(trade_ids(client, symbol)) >= set(range(venue.first_id, last + 1))
