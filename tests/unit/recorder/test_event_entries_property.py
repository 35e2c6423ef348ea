"""Generated exec:* / ops:events:* entries: whatever arrives, decoding never raises; a malformed entry becomes
dead letters naming its stream kind (payload kept); a well-formed one becomes rows the database takes."""

from __future__ import annotations

import enum
import types
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from hftops.model.market import DeadLetter
from hftops.model.streams import ExecKind, OpsKind
from hftops.pipeline.recorder.batches import Batch, build_jobs
from hftops.pipeline.recorder.deadletters import poison_letters
from hftops.pipeline.recorder.entries import EmptyEntry, EventEntry, PoisonEntry, decode_entry
from hftops.pipeline.recorder.event_jobs import EventJob
from hftops.pipeline.recorder.event_keys import EventKeys
from hftops.pipeline.recorder.event_streams import EVENT_KINDS
from hftops.pipeline.recorder.idset import IdRegistry
from hftops.store.chdb_store import ChdbStore
from hftops.store.ddl import INSERT_COLUMNS
from tests.support.events import T0, stream_of

# Values a well-behaved engine sends, and anything msgpack can carry (times in 1970, NaN, 2**64 - 1, ...).
TAME = {
    int: st.integers(-(2**62), 2**62),
    "time": st.integers(T0 - 10**17, T0 + 10**17),
    Decimal: st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), allow_nan=False, places=None),
    float: st.floats(allow_nan=False, allow_infinity=False),
}
WILD = {
    int: st.integers(-(2**63), 2**64 - 1),
    "time": st.integers(-(2**63), 2**64 - 1),
    Decimal: st.decimals(allow_nan=True, allow_infinity=True),
    float: st.floats(),
}


def strategy_for(tp: Any, name: str = "", wild: bool = False) -> st.SearchStrategy[Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(a, name, wild) for a in args))
    if origin is list:
        return st.lists(strategy_for(args[0], wild=wild), max_size=3)
    if origin is dict:
        return st.dictionaries(strategy_for(args[0], wild=wild), strategy_for(args[1], wild=wild), max_size=3)
    if tp is type(None):
        return st.none()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return struct_strategy(tp, wild)
    if tp is str:
        return st.text(max_size=12)
    if tp is bool:
        return st.booleans()
    numbers = WILD if wild else TAME
    return numbers["time" if tp is int and name.endswith("time_ns") else tp]


def struct_strategy(cls: type[msgspec.Struct], wild: bool = False) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f: strategy_for(hints[f], f, wild) for f in cls.__struct_fields__})


KINDS = st.sampled_from(EVENT_KINDS)
GARBAGE_FIELDS = st.dictionaries(
    st.sampled_from([b"d", b"kind", b"v", b"x"]),
    st.one_of(
        st.binary(max_size=40),
        st.builds(
            msgspec.msgpack.encode,
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                max_leaves=8,
            ),
        ),
    ),
    max_size=3,
)


@st.composite
def event_entries(draw: st.DrawFn) -> tuple[str, dict[bytes, bytes]]:
    kind = draw(KINDS)
    mode = draw(st.sampled_from(["garbage", "tame", "wild"]))
    if mode == "garbage":
        fields = draw(GARBAGE_FIELDS)
    else:
        fields = {b"d": msgspec.msgpack.encode(draw(struct_strategy(kind.struct, mode == "wild"))), b"kind": b"x"}
    return stream_of(kind.kind), fields


@given(event_entries())
def test_any_entry_decodes_without_raising_and_poison_names_its_kind(case: tuple[str, dict[bytes, bytes]]) -> None:
    stream, fields = case
    entry = decode_entry(stream, b"1700000000000-0", fields)
    assert isinstance(entry, (EventEntry, EmptyEntry, PoisonEntry))
    if isinstance(entry, PoisonEntry):
        (letter,) = poison_letters(entry, T0)
        label = "exec:" if stream.startswith("exec:") else "ops:"
        assert isinstance(letter, DeadLetter) and letter.kind.startswith(label)
        assert letter.reason in {"entry_deleted", "missing_field", "undecodable_entry", "invalid_event"}
        assert msgspec.msgpack.decode(letter.payload)["stream"] == stream


def test_well_formed_events_always_make_rows_the_database_takes(tmp_path: Path) -> None:
    store = ChdbStore(tmp_path / "ch", "hftops")
    store.open()
    inserted = {"rows": 0, "poison": 0}

    @settings(max_examples=150)
    @given(st.lists(event_entries(), min_size=1, max_size=6))
    def check(cases: list[tuple[str, dict[bytes, bytes]]]) -> None:
        batch = Batch(started=0.0)
        for n, (stream, fields) in enumerate(cases):
            entry = decode_entry(stream, f"{n}-0".encode(), fields)
            inserted["poison"] += isinstance(entry, PoisonEntry)
            batch.add(entry)
        keys = EventKeys()
        keys.loaded = True
        jobs, _ = build_jobs(batch, IdRegistry(), set(), 1, keys)
        for job in jobs:
            assert isinstance(job, EventJob)
            store.insert(job.table, INSERT_COLUMNS[job.table], job.body, job.token)  # InsertRejected fails the test
            inserted["rows"] += job.rows

    try:
        check()
    finally:
        store.close()
    assert inserted["rows"] > 50 and inserted["poison"] > 50  # both paths were exercised


def test_every_stream_kind_is_registered_once() -> None:
    assert {k.kind for k in EVENT_KINDS} == {*ExecKind, *OpsKind}
    assert len({k.table for k in EVENT_KINDS}) == len(EVENT_KINDS)
