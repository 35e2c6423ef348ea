"""The collector's write path against a real Valkey: writes land in submission order, and none is sent after
one before it failed until the server has been asked whether it lost anything (so the stored cursor never
passes rows that are not in Redis)."""

from __future__ import annotations

import msgspec
import pytest
import redis

from hftops.model.market import BATCH_ENCODER, TradeRow
from hftops.model.streams import MdKind, collector_cursor_key, md_stream
from hftops.pipeline.collector.batcher import Chunk
from hftops.pipeline.collector.writer import BusWriter, WriteAbandoned
from tests.conftest import ValkeyHandle

STREAM = md_stream("sim", MdKind.TRADE, "BTCUSDT")


def chunk(ids: range) -> Chunk:
    c = Chunk((MdKind.TRADE, "BTCUSDT"), born_ns=0)
    c.rows = [TradeRow(i, "1.5", "2", False, 0, 0, 0, i, i) for i in ids]
    c.lo, c.hi = ids[0], ids[-1]
    return c


def stored_ids(client: redis.Redis) -> list[int]:
    """Trade ids in the stream, in entry order (rows travel as msgpack arrays, the id first)."""
    return [row[0] for _, fields in client.xrange(STREAM) for row in msgspec.msgpack.decode(fields[b"d"])]


async def test_writes_queued_together_land_in_order_with_the_newest_cursor(valkey: ValkeyHandle) -> None:
    writer = BusWriter(valkey.url, "sim")
    try:
        futures = [writer.submit([chunk(range(a, a + 10))], [], {"BTCUSDT": a + 9}) for a in (1, 11, 21)]
        for future in futures:
            round_trip_ns, acked_ns = await future
            assert round_trip_ns > 0 and acked_ns > 0
        client = valkey.client()
        assert stored_ids(client) == list(range(1, 31))
        entries = client.xrange(STREAM)
        assert [(int(f[b"lo"]), int(f[b"hi"]), int(f[b"n"])) for _, f in entries] == [
            (1, 10, 10),
            (11, 20, 10),
            (21, 30, 10),
        ]
        assert client.hget(collector_cursor_key("sim"), "BTCUSDT") == b"30"
        assert BATCH_ENCODER.encode(chunk(range(1, 11)).rows) == entries[0][1][b"d"]
    finally:
        await writer.aclose()


async def test_nothing_is_sent_after_a_failed_write_until_the_server_state_is_read(valkey: ValkeyHandle) -> None:
    writer = BusWriter(valkey.url, "sim", timeout_s=0.5)
    try:
        run_id, _ = await writer.server_state()
        valkey.stop()
        with pytest.raises(redis.ConnectionError):
            await writer.submit([chunk(range(1, 11))], [], {"BTCUSDT": 10})
        valkey.start()
        with pytest.raises(WriteAbandoned, match="an earlier write failed"):
            await writer.submit([chunk(range(11, 21))], [], {"BTCUSDT": 20})
        client = valkey.client()
        assert client.exists(STREAM) == 0 and client.hget(collector_cursor_key("sim"), "BTCUSDT") is None
        assert (await writer.server_state())[0] != run_id  # a restarted server: the caller rewinds
        await writer.submit([chunk(range(1, 21))], [], {"BTCUSDT": 20})
        assert stored_ids(client) == list(range(1, 21))
    finally:
        await writer.aclose()
