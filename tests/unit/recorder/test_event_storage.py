"""Event tables (orders, fills, ..., the safety layer's events) with real chDB, a real WAL and real valkey:
exactly once through duplicates, outages, a crash between replay and archive, a bounded key registry,
and rows the database refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hftops.model.streams import DLQ_STREAM, ExecKind
from hftops.model.tables import FILLS, ORDERS
from hftops.pipeline.recorder.batches import Batch, build_jobs
from hftops.pipeline.recorder.entries import EventEntry, decode_entry
from hftops.pipeline.recorder.event_jobs import EventJob
from hftops.pipeline.recorder.event_keys import EventKeys
from hftops.pipeline.recorder.wal import Wal
from hftops.store.chdb_store import ChdbStore
from hftops.store.event_tables import EVENT_COLUMNS
from hftops.store.faults import FaultSwitch
from tests.support.events import ROWS_PER_SAMPLE, Event, entry_fields, fill, one_of_each, order, stream_of
from tests.unit.recorder.test_storage import Rig, make_storage, replay_all


@pytest.fixture
async def rig(tmp_path: Path, valkey: Any) -> AsyncIterator[Rig]:
    fault = FaultSwitch(tmp_path / "faults" / "clickhouse_down")
    store = ChdbStore(tmp_path / "ch", "hftops", fault)
    store.open()
    free = [10**12]
    storage = make_storage(tmp_path, valkey.url, store, fault, free)
    await storage.recover_wal()
    assert await storage.probe()
    built = Rig(storage, store, storage.wal, fault, free, tmp_path)
    try:
        yield built
    finally:  # the rig's storage, which a test may have replaced by a fresh one
        built.storage.executor.shutdown()
        built.storage.wal_executor.shutdown()
        built.storage.wal.close()
        store.close()
        await built.storage.publisher.redis.aclose()


def batch_of(events: list[Event], start: int = 0) -> Batch:
    batch = Batch(started=0.0)
    for n, (kind, event) in enumerate(events):
        entry = decode_entry(stream_of(kind), f"{start + n}-0".encode(), entry_fields(event))
        assert isinstance(entry, EventEntry), entry
        batch.add(entry)
    return batch


async def persist(rig: Rig, events: list[Event], start: int = 0) -> int:
    """Persist as the writer does; returns the duplicates the registry filtered before any insert."""
    storage = rig.storage
    jobs, stats = build_jobs(batch_of(events, start), storage.registry, storage.dlq_wal_ids, 1, storage.events.keys)
    for job in jobs:
        await storage.persist(job)
    return sum(stats.duplicates.values())


def counts(rig: Rig, table: str) -> list[Any]:
    return rig.count(f"SELECT count(), uniqExact(event_key) FROM {table}")


async def test_each_kind_once_through_duplicates_outage_and_replay(rig: Rig) -> None:
    await persist(rig, one_of_each(1) + one_of_each(1) + one_of_each(2))
    for table, rows in ROWS_PER_SAMPLE.items():
        assert counts(rig, table) == [2 * rows, 2 * rows], table
    rig.fault.set_down(True)
    await persist(rig, one_of_each(2) + one_of_each(3), start=100)
    assert rig.wal.summary()["records"] == len(ROWS_PER_SAMPLE)  # one record per table, only sample 3
    assert rig.storage.events.keys.wal_keys() == ROWS_PER_SAMPLE
    await persist(rig, one_of_each(3), start=200)  # waiting in the WAL: nothing new is written
    assert rig.wal.summary()["records"] == len(ROWS_PER_SAMPLE)
    rig.fault.set_down(False)
    assert await rig.storage.probe()
    await replay_all(rig)
    for table, rows in ROWS_PER_SAMPLE.items():
        assert counts(rig, table) == [3 * rows, 3 * rows], table
    assert rig.storage.events.keys.wal_keys() == {}


async def test_a_replay_repeated_after_a_crash_and_a_new_recorder_insert_nothing_twice(rig: Rig, valkey: Any) -> None:
    rig.fault.set_down(True)
    await persist(rig, [(ExecKind.FILLS, fill(i)) for i in range(1, 51)])
    rig.fault.set_down(False)
    assert await rig.storage.probe()
    await replay_all(rig)  # inserted; now pretend the archive step never happened: a second recorder replays it
    archived = sorted((rig.root / "wal" / "archive").glob("wal-*.seg"))
    archived[0].rename(rig.root / "wal" / archived[0].name)
    rig.storage.executor.shutdown()
    rig.storage.wal_executor.shutdown()
    rig.wal.close()
    await rig.storage.publisher.redis.aclose()
    fresh = make_storage(rig.root, valkey.url, rig.store, rig.fault, rig.free)
    await fresh.recover_wal()
    assert fresh.events.keys.wal_keys() == {FILLS: 50}
    assert await fresh.probe()  # loads the stored keys: the 50 are now known as stored
    assert fresh.events.keys.wal_keys() == {}
    rig.storage, rig.wal = fresh, fresh.wal
    await replay_all(rig)
    await persist(rig, [(ExecKind.FILLS, fill(i)) for i in range(40, 61)])
    assert counts(rig, FILLS) == [60, 60]


async def test_keys_beyond_the_bounded_registry_are_asked_of_the_table(rig: Rig) -> None:
    rig.storage.events.keys = keys = EventKeys(max_keys=10)
    keys.loaded = True
    for start in range(0, 40, 5):
        await persist(rig, [(ExecKind.FILLS, fill(i)) for i in range(start + 1, start + 6)], start=start)
    assert len(keys.table(FILLS).stored) <= 10 and keys.table(FILLS).floor_ns > 0
    known = await persist(rig, [(ExecKind.FILLS, fill(i)) for i in range(1, 46)], start=100)
    assert counts(rig, FILLS) == [45, 45]
    asked = rig.storage.metrics.tallies.duplicates_filtered[FILLS]
    assert known <= 10 and asked >= 30 and known + asked == 40  # beyond the registry: found by asking the table


async def test_a_partial_fill_repeating_its_status_is_a_new_row(rig: Rig) -> None:
    from hftops.model.orders import OrderStatus

    updates = [
        order(1),
        order(1, OrderStatus.PARTIALLY_FILLED, "0.004"),
        order(1, OrderStatus.PARTIALLY_FILLED, "0.006"),
    ]
    await persist(rig, [(ExecKind.ORDERS, u) for u in updates + updates])
    assert counts(rig, ORDERS) == [3, 3]


async def test_rows_the_database_refuses_are_dead_lettered_and_the_rest_stored(rig: Rig, valkey: Any) -> None:
    good = [fill(i) for i in (1, 2)]
    batch = batch_of([(ExecKind.FILLS, f) for f in good])
    jobs, _ = build_jobs(batch, rig.storage.registry, rig.storage.dlq_wal_ids, 1, rig.storage.events.keys)
    (job,) = jobs
    assert isinstance(job, EventJob)
    broken = msgspec.json.decode(job.lines[1])
    broken[2 + [c for c, _ in EVENT_COLUMNS[FILLS]].index("qty")] = "not a number"
    job.lines[1] = msgspec.json.encode(broken)
    await rig.storage.persist(job)
    assert counts(rig, FILLS) == [1, 1]
    letters = valkey.client().xrange(DLQ_STREAM)
    assert len(letters) == 1 and letters[0][1][b"reason"] == b"rejected_by_database"
    assert rig.storage.metrics.tallies.dead_letters["rejected_by_database"] == 1


def test_wal_records_without_keys_still_decode(tmp_path: Any) -> None:
    """Segments written before event keys existed (no `keys` in the record) replay as before."""
    from hftops.pipeline.recorder.wal import WalRecord

    old = msgspec.msgpack.encode(["market_trades", "tok", b"x", {}, [], 1, 5, False])
    assert msgspec.msgpack.decode(old, type=WalRecord).keys == []
    wal = Wal(tmp_path / "w", tmp_path / "w" / "a", 1 << 20, 1 << 20)
    wal.recover()
    wal.append(WalRecord("fills", "t", b"[]", {}, [], 1, 1, True, ["k1"]))
    wal.close()
    again = Wal(tmp_path / "w", tmp_path / "w" / "a", 1 << 20, 1 << 20)
    (ref,) = again.recover()
    assert ref.keys == ["k1"]
    again.close()
