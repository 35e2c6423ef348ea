"""Storage (database first, WAL when it fails, replay) with real chDB, a real WAL and real valkey."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hftops.bus.client import async_client
from hftops.model.market import DeadLetter, TradeRow
from hftops.model.streams import DLQ_STREAM, MdKind
from hftops.pipeline.recorder.batches import Batch, build_jobs
from hftops.pipeline.recorder.deadletters import DeadLetterPublisher
from hftops.pipeline.recorder.entries import decode_entry
from hftops.pipeline.recorder.guard import DiskGuard
from hftops.pipeline.recorder.idset import IdRegistry, Key
from hftops.pipeline.recorder.metrics import RecorderMetrics
from hftops.pipeline.recorder.storage import GuardActive, Storage
from hftops.pipeline.recorder.wal import Wal, segment_files
from hftops.store.chdb_store import ChdbStore
from hftops.store.faults import FaultSwitch
from tests.unit.recorder.test_entries import trade_fields

STREAM = "md:sim:trade:BTCUSDT"


@dataclass
class Rig:
    storage: Storage
    store: ChdbStore
    wal: Wal
    fault: FaultSwitch
    free: list[int]
    root: Path

    def count(self, sql: str = "SELECT count(), uniqExact(trade_id) FROM market_trades") -> list[Any]:
        return self.store.query(sql).rows[0]


def make_storage(root: Path, redis_url: str, store: ChdbStore, fault: FaultSwitch, free: list[int]) -> Storage:
    wal = Wal(root / "wal", root / "wal" / "archive", 1 << 20, 1 << 30)
    guard = DiskGuard(root, wal_max_bytes=1 << 30, free_min_bytes=1000, hysteresis=0.1, free_bytes=lambda: free[0])
    return Storage(
        store=store,
        wal=wal,
        registry=IdRegistry(),
        publisher=DeadLetterPublisher(async_client(redis_url)),
        metrics=RecorderMetrics(),
        guard=guard,
        executor=ThreadPoolExecutor(2),
        wal_executor=ThreadPoolExecutor(1),
        venue="sim",
        rejected_dir=root / "dlq",
    )


@pytest.fixture
async def rig(tmp_path: Path, valkey: Any) -> AsyncIterator[Rig]:
    fault = FaultSwitch(tmp_path / "faults" / "clickhouse_down")
    store = ChdbStore(tmp_path / "ch", "hftops", fault)
    store.open()
    free = [10**12]
    storage = make_storage(tmp_path, valkey.url, store, fault, free)
    await storage.recover_wal()
    assert await storage.probe()
    try:
        yield Rig(storage, store, storage.wal, fault, free, tmp_path)
    finally:
        storage.executor.shutdown()
        storage.wal_executor.shutdown()
        storage.wal.close()
        store.close()
        await storage.publisher.redis.aclose()


def batch_of(*id_lists: list[int], start: int = 0) -> Batch:
    batch = Batch(started=0.0)
    for n, ids in enumerate(id_lists):
        batch.add(decode_entry(STREAM, f"{start + n}-0".encode(), trade_fields(ids)))
    return batch


async def persist(rig: Rig, batch: Batch) -> None:
    jobs, _ = build_jobs(batch, rig.storage.registry, rig.storage.dlq_wal_ids, 1)
    for job in jobs:
        await rig.storage.persist(job)


async def replay_all(rig: Rig) -> None:
    rig.wal.seal()
    for segment in rig.wal.sealed_segments():
        assert await rig.storage.replay_segment(segment, lambda: False)


async def test_outage_goes_to_the_wal_and_replays_exactly_once(rig: Rig) -> None:
    await persist(rig, batch_of(list(range(1, 101))))
    rig.fault.set_down(True)
    await persist(rig, batch_of(list(range(101, 201)), list(range(150, 251)), start=10))
    assert not rig.storage.db_healthy
    assert rig.wal.summary()["records"] == 1
    assert rig.storage.registry.wal_ids() == {"sim:trade:BTCUSDT": [[101, 250]]}
    await persist(rig, batch_of(list(range(200, 301)), start=20))  # overlaps the WAL: only 251..300 written
    assert rig.storage.registry.wal_ids() == {"sim:trade:BTCUSDT": [[101, 300]]}
    assert not await rig.storage.probe()
    rig.fault.set_down(False)
    assert await rig.storage.probe()
    await replay_all(rig)
    assert rig.count() == [300, 300]
    assert rig.wal.summary()["segments"] == 0 and rig.storage.registry.wal_ids() == {}
    assert len(segment_files(rig.root / "wal" / "archive")) == 1


async def test_a_replay_repeated_after_a_crash_inserts_nothing_twice(rig: Rig, valkey: Any) -> None:
    rig.fault.set_down(True)
    await persist(rig, batch_of(list(range(1, 51))))
    rig.fault.set_down(False)
    await rig.storage.probe()
    (segment_path,) = [p for _, p in segment_files(rig.root / "wal")]
    kept = rig.root / "kept.seg"
    shutil.copy(segment_path, kept)
    await replay_all(rig)
    assert rig.count() == [50, 50]
    # As if the process died after inserting but before archiving: the segment is back, the registry is new.
    shutil.copy(kept, segment_path)
    rig.storage.executor.shutdown()
    again = make_storage(rig.root, valkey.url, rig.store, rig.fault, rig.free)
    try:
        await again.recover_wal()
        assert again.registry.wal_ids() == {"sim:trade:BTCUSDT": [[1, 50]]}
        assert await again.probe()  # loads the stored ids: the WAL view drops what the table holds
        assert again.registry.wal_ids() == {}
        again.wal.seal()
        for seg in again.wal.sealed_segments():
            assert await again.replay_segment(seg, lambda: False)
        assert rig.count() == [50, 50]
        assert again.metrics.tallies.duplicates_filtered["market_trades"] == 50
    finally:
        again.executor.shutdown()
        await again.publisher.redis.aclose()


async def test_refused_rows_are_dead_lettered_one_by_one_and_the_rest_stored(rig: Rig, valkey: Any) -> None:
    good = [
        TradeRow(i, "2.5", "1", False, 1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000_000_000, i, i)
        for i in range(1, 11)
    ]
    bad = TradeRow(11, "-2.5", "1", False, 1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000_000_000, 11, 11)
    from hftops.model.market import BATCH_ENCODER

    batch = Batch(started=0.0)
    batch.add(decode_entry(STREAM, b"1-0", {b"v": b"1", b"d": BATCH_ENCODER.encode([*good[:5], bad, *good[5:]])}))
    await persist(rig, batch)
    assert rig.count() == [10, 10]
    entries = valkey.client().xrange(DLQ_STREAM)
    assert len(entries) == 1
    letter = msgspec.msgpack.decode(entries[0][1][b"d"], type=DeadLetter)
    assert (letter.reason, letter.ref_id, letter.symbol, letter.kind) == ("invalid_row", 11, "BTCUSDT", "trade")
    assert "price" in letter.detail and letter.payload
    assert rig.storage.metrics.tallies.dead_letters["invalid_row"] == 1


async def test_redelivered_dead_letters_already_stored_are_not_stored_again(rig: Rig) -> None:
    letter = DeadLetter("collector", "bad_json", "x", b"{", 1_700_000_000_000_000_000, "sim", "BTCUSDT", "trade", 5)
    fields = {b"d": msgspec.msgpack.encode(letter), b"source": b"collector", b"reason": b"bad_json"}
    first = Batch(started=0.0)
    first.add(decode_entry(DLQ_STREAM, b"100-0", fields))
    await persist(rig, first)
    again = Batch(started=0.0)
    again.add(decode_entry(DLQ_STREAM, b"100-0", fields, redelivered=True))
    again.add(decode_entry(DLQ_STREAM, b"101-0", fields, redelivered=True))
    await persist(rig, again)
    assert rig.store.query("SELECT count(), uniqExact(id) FROM dead_letters").rows == [[2, 2]]


async def test_disk_guard_refuses_the_wal(rig: Rig) -> None:
    rig.fault.set_down(True)
    rig.free[0] = 10
    rig.storage.guard.update(0)
    assert rig.storage.guard.active
    jobs, _ = build_jobs(batch_of([1, 2, 3]), rig.storage.registry, set(), 1)
    with pytest.raises(GuardActive, match="free"):
        await rig.storage.persist(jobs[0])
    assert rig.wal.summary()["records"] == 0 and not jobs[0].done
    rig.free[0] = 1099  # below free_min * (1 + hysteresis): still on
    assert not rig.storage.guard.update(0) and rig.storage.guard.active
    rig.free[0] = 1101
    assert rig.storage.guard.update(0) and not rig.storage.guard.active
    await rig.storage.persist(jobs[0])  # the same job, same bytes and token, now to the WAL
    assert rig.wal.summary()["records"] == 1


async def test_rows_only_the_database_refuses_are_found_by_bisection(
    rig: Rig, valkey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hftops.pipeline.recorder.storage as storage_module

    monkeypatch.setattr(storage_module, "_line_problem", lambda table, line: None)  # Python check off
    from hftops.model.market import BATCH_ENCODER

    t = 1_700_000_000_000
    rows = [TradeRow(i, "0" if i in (7, 13) else "1.25", "1", False, t, t, t * 1_000_000, i, i) for i in range(1, 17)]
    batch = Batch(started=0.0)
    batch.add(decode_entry(STREAM, b"1-0", {b"v": b"1", b"d": BATCH_ENCODER.encode(rows)}))
    await persist(rig, batch)
    assert rig.count() == [14, 14]
    letters = [msgspec.msgpack.decode(f[b"d"], type=DeadLetter) for _, f in valkey.client().xrange(DLQ_STREAM)]
    assert sorted(letter.ref_id for letter in letters) == [7, 13]
    assert {letter.reason for letter in letters} == {"rejected_by_database"}
    assert all("price_positive" in letter.detail for letter in letters)


async def test_stored_ids_load_as_runs_with_a_window_and_a_floor(
    rig: Rig, valkey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await persist(rig, batch_of([*range(1, 11), *range(20, 31)], [5000, 5001], start=1))
    eth = Batch(started=0.0)
    eth.add(decode_entry("md:sim:trade:ETHUSDT", b"9-0", trade_fields([7, 9, 11])))
    await persist(rig, eth)
    fresh = make_storage(rig.root / "fresh", valkey.url, rig.store, rig.fault, rig.free)
    try:
        await fresh.load_stored()
        btc = fresh.registry.ids(Key("sim", MdKind.TRADE, "BTCUSDT"))
        assert btc.stored.to_list() == [[1, 10], [20, 30], [5000, 5001]] and btc.floor == -1
        assert fresh.registry.ids(Key("sim", MdKind.TRADE, "ETHUSDT")).stored.to_list() == [[7, 7], [9, 9], [11, 11]]
        import hftops.pipeline.recorder.storage as storage_module

        monkeypatch.setattr(storage_module, "LOAD_WINDOW_IDS", 100)  # only ids above 5001 - 100 are scanned
        fresh.registry = IdRegistry()
        await fresh.load_stored()
        btc = fresh.registry.ids(Key("sim", MdKind.TRADE, "BTCUSDT"))
        assert btc.stored.to_list() == [[5000, 5001]] and btc.floor == 4901
    finally:
        fresh.executor.shutdown()
        fresh.wal_executor.shutdown()
        await fresh.publisher.redis.aclose()
