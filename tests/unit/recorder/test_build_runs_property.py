"""build_jobs filters and builds a stream's consecutive entries together: whatever the entries (ascending runs,
overlaps, repeats, ids out of order, ids already stored), the job must equal what filtering entry by entry
gives: the same rows, duplicates, kept ids and rechecks, and one latency sample per entry that kept a row."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hftops.model.market import BATCH_ENCODER, TradeRow
from hftops.pipeline.intervals import IdRanges
from hftops.pipeline.recorder.batches import Batch, InsertJob, build_jobs
from hftops.pipeline.recorder.entries import MdEntry, decode_entry
from hftops.pipeline.recorder.idset import IdRegistry, Key
from hftops.store.rows import market_lines

STREAMS = ("md:sim:trade:BTCUSDT", "md:sim:trade:ETHUSDT")
INGEST_US = 1_765_000_000_000_000


def entry_fields(ids: list[int], stream_index: int) -> dict[bytes, bytes]:
    # A distinct event time per row and stream, so the latency sample names the row it was taken from.
    rows = [TradeRow(i, "1.5", "2", False, 1, 10 * i + stream_index, 1, i, i) for i in ids]
    return {
        b"v": b"1",
        b"n": b"%d" % len(ids),
        b"lo": b"%d" % min(ids),
        b"hi": b"%d" % max(ids),
        b"d": BATCH_ENCODER.encode(rows),
        b"t": b"1",
    }


def registry_with(stored: list[tuple[int, int]], loaded: bool) -> IdRegistry:
    registry = IdRegistry()
    registry.loaded = loaded
    for stream in STREAMS:
        key = decode_entry(stream, b"0-1", entry_fields([1], 0))
        assert isinstance(key, MdEntry)
        registry.load_stored(key.key, stored)
    return registry


def entry_by_entry(entries: list[MdEntry], registry: IdRegistry) -> tuple[Counter[bytes], int, dict, dict, Counter]:
    """The reference: every entry filtered on its own, in batch order."""
    lines: Counter[bytes] = Counter()
    duplicates = 0
    kept: dict[Key, IdRanges] = {}
    recheck: dict[Key, list[int]] = defaultdict(list)
    samples: Counter[int] = Counter()
    for entry in entries:
        seen = kept.setdefault(entry.key, IdRanges())
        filtered = registry.filter(entry.key, entry.rows, entry.lo, entry.ordered, seen, entry.ids)
        duplicates += filtered.duplicates
        recheck[entry.key].extend(filtered.recheck)
        if filtered.rows:
            k = entry.key
            lines.update(market_lines(k.kind, k.venue, k.symbol, filtered.rows, INGEST_US))
            samples[filtered.rows[0].event_time_ms] += 1
    return lines, duplicates, kept, {k: sorted(v) for k, v in recheck.items() if v}, samples


ids_lists = st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=5)
ascending = st.builds(lambda lo, n: list(range(lo, lo + n)), st.integers(1, 60), st.integers(1, 5))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.one_of(ascending, ids_lists)), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=3),
    st.booleans(),
)
@example([(0, [1, 2]), (0, [5, 5]), (0, [7, 6])], [], True)  # entries out of order after an ascending one
@example([(0, [1, 2]), (1, [1, 2]), (0, [3]), (0, [3, 4]), (1, [2, 3])], [(2, 0)], True)  # repeats across entries
def test_a_stream_built_as_one_run_equals_entry_by_entry(
    specs: list[tuple[int, list[int]]], stored_spans: list[tuple[int, int]], loaded: bool
) -> None:
    entries = []
    for n, (stream_index, ids) in enumerate(specs):
        entry = decode_entry(STREAMS[stream_index], b"1-%d" % n, entry_fields(ids, stream_index))
        assert isinstance(entry, MdEntry)
        entries.append(entry)
    stored = [(lo, lo + width) for lo, width in stored_spans]
    want_lines, want_duplicates, want_kept, want_recheck, want_samples = entry_by_entry(
        entries, registry_with(stored, loaded)
    )

    batch = Batch(started=0.0)
    for entry in entries:
        batch.add(entry)
    jobs, stats = build_jobs(batch, registry_with(stored, loaded), set(), INGEST_US)

    if not want_lines:
        assert jobs == []
        return
    (job,) = jobs
    assert isinstance(job, InsertJob)
    assert Counter(job.body.split(b"\n")) == want_lines
    assert job.rows == sum(want_lines.values())
    assert stats.duplicates["market_trades"] == want_duplicates
    assert {k: list(v.ranges()) for k, v in job.ids.items()} == {k: list(v.ranges()) for k, v in want_kept.items() if v}
    assert {k: sorted(v) for k, v in job.recheck.items() if v} == want_recheck
    assert Counter(job.event_ms) == want_samples
