"""Stream entries as the recorder reads them: decoded market-data batches, engine/safety-layer events, dead
letters, or poison."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import msgspec

from hftops.model.market import BBO_BATCH_DECODER, TRADE_BATCH_DECODER, BboRow, DeadLetter, TradeRow
from hftops.model.streams import (
    DLQ_STREAM,
    ENTRY_VERSION,
    F_COUNT,
    F_DATA,
    F_FLUSH_NS,
    F_HI,
    F_LO,
    F_VERSION,
    MdKind,
    parse_md_stream,
)
from hftops.pipeline.recorder.event_rows import BadEvent, EventRow
from hftops.pipeline.recorder.event_streams import event_kind_of, is_event_stream
from hftops.pipeline.recorder.idset import Key, strictly_increasing

_F_VERSION, _F_COUNT, _F_LO, _F_HI, _F_DATA, _F_FLUSH = (
    f.encode() for f in (F_VERSION, F_COUNT, F_LO, F_HI, F_DATA, F_FLUSH_NS)
)
_DEAD_LETTER = msgspec.msgpack.Decoder(DeadLetter)

Fields = dict[bytes, bytes]


@dataclass(slots=True)
class MdEntry:
    stream: str
    entry_id: bytes
    key: Key
    rows: list[TradeRow] | list[BboRow]
    ids: list[int]  # the rows' venue ids, in row order
    lo: int
    hi: int
    ordered: bool  # ids strictly increasing: the fast path of the id registry applies
    header_mismatch: bool  # n/lo/hi fields disagree with the rows (the rows win)
    redelivered: bool = False


@dataclass(slots=True)
class DlqEntry:
    stream: str
    entry_id: bytes
    letter: DeadLetter
    redelivered: bool = False  # seen before (pending re-read, claim)


@dataclass(slots=True)
class PoisonEntry:
    """An entry that cannot be stored: it goes to ops:dlq with its original fields, then is acked."""

    stream: str
    entry_id: bytes
    fields: Fields
    reason: str
    detail: str
    key: Key | None = None
    header_ids: tuple[int, int, int] | None = field(default=None)  # (n, lo, hi) when the header parses
    label: tuple[str, str] | None = None  # (venue, kind) of an event stream entry, e.g. ("sim", "exec:fills")


@dataclass(slots=True)
class EventEntry:
    """One engine or safety-layer event (exec:* / ops:events:*), as rows of its table."""

    stream: str
    entry_id: bytes
    table: str
    events: list[EventRow]
    redelivered: bool = False


@dataclass(slots=True)
class EmptyEntry:
    """A well-formed entry with no rows: nothing to store; acked and counted."""

    stream: str
    entry_id: bytes


Entry = MdEntry | EventEntry | DlqEntry | PoisonEntry | EmptyEntry


def _int_field(fields: Fields, name: bytes) -> int | None:
    raw = fields.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def header_ids(fields: Fields) -> tuple[int, int, int] | None:
    n, lo, hi = (_int_field(fields, f) for f in (_F_COUNT, _F_LO, _F_HI))
    if n is None or lo is None or hi is None or n < 1 or hi < lo:
        return None
    return n, lo, hi


@functools.lru_cache(maxsize=4096)
def stream_key(stream: str) -> Key:
    return Key(*parse_md_stream(stream))


def md_key(stream: str) -> Key | None:
    """The market-data key of a stream, None for the event streams."""
    return None if is_event_stream(stream) else stream_key(stream)


def event_label(stream: str) -> tuple[str, str] | None:
    if not is_event_stream(stream):
        return None
    try:
        kind, venue = event_kind_of(stream)
    except ValueError:
        return "", stream
    return venue, kind.label


@functools.lru_cache(maxsize=4096)
def _md_route(stream: str) -> Key | None:
    """The market-data key of a stream the hot path may decode; None sends it down the other paths."""
    if stream == DLQ_STREAM or is_event_stream(stream):
        return None
    return stream_key(stream)


def decode_entry(stream: str, entry_id: bytes, fields: Fields, redelivered: bool = False) -> Entry:
    key = _md_route(stream)
    if key is None:
        if stream == DLQ_STREAM:
            return _decode_dead_letter(stream, entry_id, fields, redelivered)
        return decode_event_entry(stream, entry_id, fields, redelivered)
    get = fields.get
    data = get(_F_DATA)
    if data is None or get(_F_VERSION) != ENTRY_VERSION:
        return _md_poison(stream, entry_id, fields, key)
    kind = key.kind
    rows: list[TradeRow] | list[BboRow]
    try:
        if kind is MdKind.TRADE:
            rows = trades = TRADE_BATCH_DECODER.decode(data)
            ids = [row.trade_id for row in trades]
        else:
            rows = books = BBO_BATCH_DECODER.decode(data)
            ids = [row.update_id for row in books]
    except (msgspec.DecodeError, ValueError) as exc:
        return _poison(
            stream,
            entry_id,
            fields,
            key,
            "undecodable_entry",
            f"field d is not a msgpack list of {kind.value} rows: {exc}",
        )
    if not ids:
        return EmptyEntry(stream, entry_id)
    ordered = strictly_increasing(ids)
    lo, hi = (ids[0], ids[-1]) if ordered else (min(ids), max(ids))
    # The header as the collector writes it (canonical decimal text); compared as bytes, nothing parsed.
    mismatch = get(_F_COUNT) != b"%d" % len(ids) or get(_F_LO) != b"%d" % lo or get(_F_HI) != b"%d" % hi
    return MdEntry(stream, entry_id, key, rows, ids, lo, hi, ordered, mismatch, redelivered)


def _poison(stream: str, entry_id: bytes, fields: Fields, key: Key, reason: str, detail: str) -> PoisonEntry:
    return PoisonEntry(
        stream, entry_id, fields, reason, f"{stream} entry {entry_id.decode()}: {detail}", key, header_ids(fields)
    )


def _md_poison(stream: str, entry_id: bytes, fields: Fields, key: Key) -> PoisonEntry:
    """Why a market-data entry without its rows or in another version cannot be read."""
    if not fields:
        reason, detail = "entry_deleted", "the entry was deleted from the stream while pending; its data is gone"
    elif (version := fields.get(_F_VERSION)) != ENTRY_VERSION:
        reason, detail = "unknown_entry_version", f"field v is {version!r}, this recorder reads v={ENTRY_VERSION!r}"
    else:
        reason, detail = "missing_field", "no field d (the msgpack rows)"
    return _poison(stream, entry_id, fields, key, reason, detail)


def decode_event_entry(stream: str, entry_id: bytes, fields: Fields, redelivered: bool = False) -> Entry:
    """Field `d` is the msgpack of the stream kind's struct (engine.events.EventPublisher writes it)."""

    def poison(reason: str, detail: str) -> PoisonEntry:
        return PoisonEntry(
            stream, entry_id, fields, reason, f"{stream} entry {entry_id.decode()}: {detail}", label=event_label(stream)
        )

    if not fields:
        return poison("entry_deleted", "the entry was deleted from the stream while pending; its data is gone")
    try:
        kind, venue = event_kind_of(stream)
    except ValueError as exc:
        return poison("unknown_stream", str(exc))
    data = fields.get(_F_DATA)
    if data is None:
        return poison("missing_field", f"no field d (the msgpack {kind.struct.__name__})")
    try:
        event = kind.decoder.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        return poison("undecodable_entry", f"field d is not a msgpack {kind.struct.__name__}: {exc}")
    try:
        events = kind.to_rows(event, venue)
    except BadEvent as exc:
        return poison("invalid_event", f"{kind.struct.__name__}: {exc}")
    if not events:
        return EmptyEntry(stream, entry_id)
    return EventEntry(stream, entry_id, kind.table, events, redelivered)


def _decode_dead_letter(stream: str, entry_id: bytes, fields: Fields, redelivered: bool) -> DlqEntry:
    # Never poison a dead letter (that would loop through ops:dlq): store whatever can be read of it.
    data = fields.get(_F_DATA)
    letter: DeadLetter | None = None
    problem = ""
    if data is not None:
        try:
            letter = _DEAD_LETTER.decode(data)
        except (msgspec.DecodeError, ValueError) as exc:
            problem = f"field d is not a msgpack DeadLetter: {exc}"
    else:
        problem = "no field d"
    if letter is None:
        source = fields.get(b"source", b"unknown").decode(errors="replace")
        reason = fields.get(b"reason", b"unknown").decode(errors="replace")
        letter = DeadLetter(
            source=source,
            reason=reason,
            detail=f"undecodable dead letter {entry_id.decode()} ({problem}); payload holds its raw fields",
            payload=msgspec.msgpack.encode({k.decode(errors="replace"): v for k, v in fields.items()}),
            time_ns=int(entry_id.split(b"-")[0]) * 1_000_000,
        )
    return DlqEntry(stream, entry_id, letter, redelivered)


def flush_ns(fields: Fields) -> int | None:
    return _int_field(fields, _F_FLUSH)
