"""Decoding stream entries: good batches, and every malformed entry named (never an exception)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hftops.model.market import BATCH_ENCODER, BboRow, DeadLetter, TradeRow
from hftops.model.streams import DLQ_STREAM
from hftops.pipeline.recorder.batches import Batch, build_jobs
from hftops.pipeline.recorder.deadletters import poison_letters
from hftops.pipeline.recorder.entries import DlqEntry, EmptyEntry, MdEntry, PoisonEntry, decode_entry
from hftops.pipeline.recorder.idset import IdRegistry

STREAM = "md:sim:trade:BTCUSDT"


def trade_fields(ids: list[int], **extra: bytes) -> dict[bytes, bytes]:
    rows = [TradeRow(i, "1", "1", False, 1, 1, 1, i, i) for i in ids]
    fields = {
        b"v": b"1",
        b"n": str(len(ids)).encode(),
        b"lo": str(min(ids)).encode(),
        b"hi": str(max(ids)).encode(),
        b"d": BATCH_ENCODER.encode(rows),
        b"t": b"1",
    }
    fields.update({k.encode(): v for k, v in extra.items()})
    return fields


def test_a_good_entry_decodes_with_its_ids() -> None:
    entry = decode_entry(STREAM, b"1-0", trade_fields([3, 4, 5]))
    assert isinstance(entry, MdEntry)
    assert (entry.lo, entry.hi, entry.ordered, entry.header_mismatch) == (3, 5, True, False)
    unordered = decode_entry(STREAM, b"1-1", trade_fields([9, 3, 5], lo=b"1"))
    assert isinstance(unordered, MdEntry) and (unordered.lo, unordered.hi, unordered.ordered) == (3, 9, False)
    assert unordered.header_mismatch


def test_bbo_and_dead_letter_entries() -> None:
    bbo = [BboRow(1, "1", "1", "2", "2", 1, 1, 1)]
    entry = decode_entry("md:sim:bbo:ETHUSDT", b"2-0", {b"v": b"1", b"d": BATCH_ENCODER.encode(bbo)})
    assert isinstance(entry, MdEntry) and entry.key.symbol == "ETHUSDT"
    letter = DeadLetter("collector", "bad_json", "x", b"{", 5)
    dlq = decode_entry(DLQ_STREAM, b"3-0", {b"d": msgspec.msgpack.encode(letter), b"source": b"collector"})
    assert isinstance(dlq, DlqEntry) and dlq.letter == letter
    broken = decode_entry(DLQ_STREAM, b"4-0", {b"source": b"x", b"reason": b"y", b"d": b"\xc1"})
    assert isinstance(broken, DlqEntry) and broken.letter.reason == "y" and "undecodable" in broken.letter.detail


def test_poison_reasons() -> None:
    cases = {
        "unknown_entry_version": trade_fields([1], v=b"2"),
        "undecodable_entry": {**trade_fields([1]), b"d": b"\x93\x01"},
        "missing_field": {b"v": b"1"},
        "entry_deleted": {},
    }
    for reason, fields in cases.items():
        entry = decode_entry(STREAM, b"5-0", fields)
        assert isinstance(entry, PoisonEntry) and entry.reason == reason, reason
    assert isinstance(decode_entry(STREAM, b"6-0", {b"v": b"1", b"d": BATCH_ENCODER.encode([])}), EmptyEntry)


def test_poison_with_a_header_becomes_one_letter_per_id_for_the_ledger() -> None:
    entry = decode_entry(STREAM, b"7-0", {**trade_fields([10, 11, 12]), b"d": b"junk"})
    assert isinstance(entry, PoisonEntry)
    letters = poison_letters(entry, 99)
    assert [letter.ref_id for letter in letters] == [10, 11, 12]
    assert letters[0].payload and not letters[1].payload and letters[0].kind == "trade"


@given(st.dictionaries(st.sampled_from([b"v", b"n", b"lo", b"hi", b"d", b"t", b"x"]), st.binary(max_size=40)))
def test_arbitrary_fields_never_raise(fields: dict[bytes, bytes]) -> None:
    entry = decode_entry(STREAM, b"8-0", fields)
    assert isinstance(entry, MdEntry | PoisonEntry | EmptyEntry)
    if isinstance(entry, PoisonEntry):
        assert poison_letters(entry, 1)


def test_jobs_are_byte_identical_for_the_same_batch_and_skip_duplicates() -> None:
    def batch() -> Batch:
        b = Batch(started=0.0)
        b.add(decode_entry(STREAM, b"1-0", trade_fields([1, 2, 3])))
        b.add(decode_entry(STREAM, b"1-1", trade_fields([3, 4])))  # a collector re-send overlapping
        return b

    registry = IdRegistry()
    registry.loaded = True
    (first,), stats = build_jobs(batch(), registry, set(), 123)
    (second,), _ = build_jobs(batch(), registry, set(), 123)
    assert first.body == second.body and first.token == second.token
    assert first.rows == 4 and stats.duplicates["market_trades"] == 1
    (third,), _ = build_jobs(batch(), registry, set(), 124)
    assert third.token != first.token  # different bytes, different token
