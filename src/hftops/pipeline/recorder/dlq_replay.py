"""Re-inject dead letters whose payload now parses: valid market-data rows go back into their md stream in
the normal entry format (the recorder deduplicates them by venue id), and the dead letters are marked
replayed (table dead_letter_replays, written by the recorder) so a second replay does nothing."""

from __future__ import annotations

import base64
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis

from hftops.config.schema import Config
from hftops.model.binance import AggTrade, BookTicker, SpotTrade
from hftops.model.market import (
    BATCH_ENCODER,
    BBO_BATCH_DECODER,
    TRADE_BATCH_DECODER,
    BboRow,
    TradeRow,
)
from hftops.model.streams import (
    ENTRY_VERSION,
    F_COUNT,
    F_DATA,
    F_FLUSH_NS,
    F_HI,
    F_LO,
    F_VERSION,
    MdKind,
    md_stream,
    md_streams,
    parse_md_stream,
)
from hftops.model.tables import DEAD_LETTER_REPLAYS, DEAD_LETTERS
from hftops.pipeline.recorder.deadletters import STREAM_FIELD
from hftops.store.rows import row_id, row_problem

QueryFn = Callable[[str], Mapping[str, Any]]
MarkFn = Callable[[list[tuple[str, int]]], int]

_ENTRY_REF = re.compile(r"^(md:\S+) entry (\d+-\d+):")
_ROWS_PER_ENTRY = 500


@dataclass
class Letter:
    id: str
    source: str
    reason: str
    venue: str
    symbol: str
    kind: str
    ref_id: int
    detail: str
    payload: bytes
    time_ns: int


@dataclass
class ReplayReport:
    examined: int = 0
    replayed: int = 0  # dead letters whose rows were re-injected (and marked)
    rows: int = 0
    entries: int = 0  # stream entries written
    still_invalid: int = 0
    covered: int = 0  # payload-less dead letters covered by a replayed sibling of the same entry
    skipped: int = 0  # payload-less, or for a stream this platform does not consume
    problems: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["problems"] = dict(self.problems)
        return out


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_letters(query: QueryFn, reason: str | None) -> list[Letter]:
    where = f" AND reason = {_q(reason)}" if reason else ""
    result = query(
        f"SELECT id, source, reason, venue, symbol, kind, ref_id, detail, base64Encode(payload), "
        f"toUnixTimestamp64Nano(time) FROM {DEAD_LETTERS} FINAL "
        f"WHERE id NOT IN (SELECT id FROM {DEAD_LETTER_REPLAYS}){where} ORDER BY id"
    )
    return [
        Letter(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            str(r[4]),
            str(r[5]),
            int(r[6]),
            str(r[7]),
            base64.b64decode(r[8]),
            int(r[9]),
        )
        for r in result["rows"]
    ]


def _from_entry_fields(fields: Mapping[str, Any]) -> tuple[str, list[TradeRow] | list[BboRow]]:
    stream = fields[STREAM_FIELD]
    stream = stream.decode() if isinstance(stream, bytes) else str(stream)
    _, kind, _ = parse_md_stream(stream)
    data = fields.get(F_DATA)
    if not isinstance(data, bytes):
        raise ValueError("the entry has no msgpack rows (field d)")
    decoder = TRADE_BATCH_DECODER if kind is MdKind.TRADE else BBO_BATCH_DECODER
    return stream, decoder.decode(data)


def _from_frame(letter: Letter, venue: str) -> tuple[str, list[TradeRow] | list[BboRow]]:
    """A venue frame the collector refused: combined `{"stream", "data"}` or a raw event."""
    frame = msgspec.json.decode(letter.payload)
    event = frame.get("data", frame) if isinstance(frame, dict) else None
    if not isinstance(event, dict):
        raise ValueError("the payload is not a JSON object")
    raw = msgspec.json.encode(event)
    kind_name = event.get("e")
    recv = letter.time_ns
    if kind_name == "aggTrade":
        a = msgspec.json.decode(raw, type=AggTrade)
        return md_stream(venue, MdKind.TRADE, a.s), [TradeRow(a.a, a.p, a.q, a.m, a.T, a.E, recv, a.f, a.l)]
    if kind_name == "trade":
        t = msgspec.json.decode(raw, type=SpotTrade)
        return md_stream(venue, MdKind.TRADE, t.s), [TradeRow(t.t, t.p, t.q, t.m, t.T, t.E, recv, t.t, t.t)]
    if kind_name == "bookTicker" or {"u", "b", "a"} <= set(event):
        b = msgspec.json.decode(raw, type=BookTicker)
        return md_stream(venue, MdKind.BBO, b.s), [BboRow(b.u, b.b, b.B, b.a, b.A, b.E, b.T, recv)]
    raise ValueError(f"unknown event type {kind_name!r}")


def parse_letter(letter: Letter, venue: str) -> tuple[str, list[TradeRow] | list[BboRow]]:
    """(stream, valid rows); ValueError names why nothing in the payload can be stored."""
    if not letter.payload:
        raise ValueError("no payload")
    try:
        fields = msgspec.msgpack.decode(letter.payload)
    except msgspec.DecodeError:
        fields = None
    try:
        if isinstance(fields, dict) and STREAM_FIELD in fields:
            stream, rows = _from_entry_fields(fields)
        else:
            stream, rows = _from_frame(letter, letter.venue or venue)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
        raise ValueError(f"payload does not parse: {exc}") from exc
    problems = [p for p in (row_problem(r) for r in rows) if p]
    valid = [r for r in rows if row_problem(r) is None]
    if not valid:
        raise ValueError(problems[0] if problems else "payload holds no rows")
    return stream, valid  # type: ignore[return-value]


def entry_fields(rows: list[TradeRow] | list[BboRow], now_ns: int) -> dict[str, bytes | int]:
    ids = [row_id(r) for r in rows]
    return {
        F_VERSION: ENTRY_VERSION,
        F_COUNT: len(rows),
        F_LO: min(ids),
        F_HI: max(ids),
        F_DATA: BATCH_ENCODER.encode(rows),
        F_FLUSH_NS: now_ns,
    }


def replay(
    config: Config,
    query: QueryFn,
    mark: MarkFn,
    client: redis.Redis,
    *,
    reason: str | None = None,
    dry_run: bool = False,
    now_ns: Callable[[], int] = time.time_ns,
) -> ReplayReport:
    report = ReplayReport(dry_run=dry_run)
    consumed = set(md_streams(config.venue.name, config.venue.symbols, with_bbo=config.venue.bbo))
    letters = load_letters(query, reason)
    report.examined = len(letters)
    by_stream: dict[str, dict[int, TradeRow | BboRow]] = defaultdict(dict)
    marks: dict[str, int] = {}
    replayed_entries: set[str] = set()  # "stream entry-id" of originals whose payload was re-injected
    payloadless: list[Letter] = []
    for letter in letters:
        if not letter.payload:
            payloadless.append(letter)
            continue
        try:
            stream, rows = parse_letter(letter, config.venue.name)
        except ValueError as exc:
            report.still_invalid += 1
            report.problems[str(exc).split(":")[0][:80]] += 1
            continue
        if stream not in consumed:
            report.skipped += 1
            report.problems[f"{stream} is not consumed by this platform"] += 1
            continue
        for row in rows:
            by_stream[stream][row_id(row)] = row
        marks[letter.id] = len(rows)
        match = _ENTRY_REF.match(letter.detail)
        if match:
            replayed_entries.add(f"{match.group(1)} {match.group(2)}")
    for letter in payloadless:
        match = _ENTRY_REF.match(letter.detail)
        if match and f"{match.group(1)} {match.group(2)}" in replayed_entries:
            marks[letter.id] = 0
            report.covered += 1
        else:
            report.skipped += 1
            report.problems["no payload"] += 1
    report.replayed = sum(1 for n in marks.values() if n)
    report.rows = sum(len(rows) for rows in by_stream.values())
    if dry_run:
        report.entries = sum((len(rows) + _ROWS_PER_ENTRY - 1) // _ROWS_PER_ENTRY for rows in by_stream.values())
        return report
    with client.pipeline(transaction=False) as pipe:
        for stream, by_id in by_stream.items():
            ordered = [by_id[i] for i in sorted(by_id)]
            for start in range(0, len(ordered), _ROWS_PER_ENTRY):
                pipe.xadd(stream, entry_fields(ordered[start : start + _ROWS_PER_ENTRY], now_ns()))  # type: ignore[arg-type]
                report.entries += 1
        pipe.execute()
    if marks:
        mark(list(marks.items()))
    return report
