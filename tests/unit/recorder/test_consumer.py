"""Consumer groups on real valkey: pending re-reads count deliveries, claims, and trimming never drops
anything a group has not acknowledged."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from hftops.pipeline.recorder.consumer import StreamConsumer, trim_acknowledged, trim_all_acknowledged


async def test_trim_keeps_everything_some_group_has_not_acknowledged(valkey: Any) -> None:
    redis = aioredis.Redis.from_url(valkey.url)
    try:
        ids = [await redis.xadd("s", {"i": i}) for i in range(10)]
        assert await trim_acknowledged(redis, "s") == 0  # no group: nobody acknowledged anything
        await redis.xgroup_create("s", "recorder", id="0")
        await redis.xgroup_create("s", "engine", id="0")
        await redis.xreadgroup("recorder", "c", {"s": ">"}, count=10)
        await redis.xack("s", "recorder", *ids[:8])
        assert await trim_acknowledged(redis, "s") == 0  # engine has read nothing
        await redis.xreadgroup("engine", "e", {"s": ">"}, count=6)
        await redis.xack("s", "engine", *ids[:3])
        assert await trim_acknowledged(redis, "s") == 3  # engine's oldest pending is ids[3]
        await redis.xack("s", "engine", *ids[3:6])
        assert await trim_acknowledged(redis, "s") == 3  # engine read up to ids[5]; recorder pends ids[8]
        assert [e[0] for e in await redis.xrange("s")] == ids[6:]
        await redis.xack("s", "recorder", *ids[8:])
        await redis.xreadgroup("engine", "e", {"s": ">"}, count=10)
        await redis.xack("s", "engine", *ids[6:])
        assert await trim_acknowledged(redis, "s") == 4
        assert await redis.xlen("s") == 0
        assert await trim_acknowledged(redis, "missing") == 0
    finally:
        await redis.aclose()


async def test_trimming_every_stream_at_once_gives_each_its_own_floor(valkey: Any) -> None:
    redis = aioredis.Redis.from_url(valkey.url)
    try:
        a = [await redis.xadd("a", {"i": i}) for i in range(5)]
        b = [await redis.xadd("b", {"i": i}) for i in range(5)]
        await redis.xadd("no-group", {"i": 0})
        for stream in ("a", "b"):
            await redis.xgroup_create(stream, "recorder", id="0")
            await redis.xreadgroup("recorder", "c", {stream: ">"}, count=5)
        await redis.xack("a", "recorder", *a)  # a: all acknowledged
        await redis.xack("b", "recorder", *b[:2])  # b: pending from b[2]
        trimmed = await trim_all_acknowledged(redis, ["a", "b", "no-group", "missing"])
        assert trimmed == {"a": 5, "b": 2, "no-group": 0, "missing": 0}
        assert [e[0] for e in await redis.xrange("b")] == b[2:]
        assert await redis.xlen("no-group") == 1
    finally:
        await redis.aclose()


async def test_pending_reread_counts_deliveries_and_claims_take_over_dead_consumers(valkey: Any) -> None:
    redis = aioredis.Redis.from_url(valkey.url)
    try:
        consumer = StreamConsumer(redis, ["a", "b"], "recorder", "me", read_count=2, claim_idle_ms=0)
        await consumer.ensure_groups()
        await consumer.ensure_groups()  # idempotent
        for i in range(3):
            await redis.xadd("a", {"i": i})
        await redis.xadd("b", {"i": 9})
        first = await consumer.read_new(10, 10)
        assert sorted((d.stream, d.deliveries) for d in first) == [("a", 1)] * 3 + [("b", 1)]
        pages = [page async for page in consumer.own_pending()]
        assert [len(p) for p in pages] == [2, 1, 1]  # read_count entries per page
        assert {d.deliveries for p in pages for d in p} == {2}
        other = StreamConsumer(redis, ["a", "b"], "recorder", "other", read_count=10, claim_idle_ms=0)
        claimed = await other.claim_entries()
        assert len(claimed) == 4 and {d.deliveries for d in claimed} == {3}
        assert [p async for p in consumer.own_pending()] == []
        assert await other.ack({"a": [d.entry_id for d in claimed if d.stream == "a"]}) == 3
        assert (await redis.xpending("a", "recorder"))["pending"] == 0
    finally:
        await redis.aclose()
