"""Dead letters the recorder writes: poison entries and rows the database refused, to ops:dlq.

Payloads keep the original entry fields (msgpack map, plus "stream"), so `trading dlq replay` can
re-inject them in the normal entry format once the cause is fixed. One dead letter per venue id, so
the ledger (published = stored + dead-lettered + pending + WAL) can account for every id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec
import redis.asyncio as aioredis

from hftops.model.market import BATCH_ENCODER, BboRow, DeadLetter, TradeRow
from hftops.model.streams import DLQ_STREAM, ENTRY_VERSION, F_COUNT, F_DATA, F_FLUSH_NS, F_HI, F_LO, F_VERSION
from hftops.pipeline.recorder.entries import PoisonEntry
from hftops.pipeline.recorder.idset import Key

SOURCE: Final = "recorder"
STREAM_FIELD: Final = "stream"  # payload map key naming the stream the entry came from
MAX_LETTERS_PER_ENTRY: Final = 100_000

# Reason codes the recorder writes (operators filter on these; add new ones here first).
TOO_MANY_DELIVERIES: Final = "too_many_deliveries"
INVALID_ROW: Final = "invalid_row"
REJECTED_BY_DATABASE: Final = "rejected_by_database"


def entry_payload(stream: str, fields: dict[bytes, bytes]) -> bytes:
    return msgspec.msgpack.encode({STREAM_FIELD: stream, **{k.decode(errors="replace"): v for k, v in fields.items()}})


def row_payload(key: Key, stream: str, row: TradeRow | BboRow, now_ns: int) -> bytes:
    venue_id = row.trade_id if isinstance(row, TradeRow) else row.update_id
    fields = {
        F_VERSION: ENTRY_VERSION,
        F_COUNT: b"1",
        F_LO: str(venue_id).encode(),
        F_HI: str(venue_id).encode(),
        F_DATA: BATCH_ENCODER.encode([row]),
        F_FLUSH_NS: str(now_ns).encode(),
    }
    return msgspec.msgpack.encode({STREAM_FIELD: stream, **fields})


def poison_letters(entry: PoisonEntry, now_ns: int) -> list[DeadLetter]:
    """Letters for one poison entry: one per id named by its header (payload on the first), else one."""
    key = entry.key
    venue, kind = (key.venue, key.kind.value) if key else (entry.label or ("", ""))

    def letter(detail: str, payload: bytes, ref_id: int) -> DeadLetter:
        return DeadLetter(
            source=SOURCE,
            reason=entry.reason,
            detail=detail,
            payload=payload,
            time_ns=now_ns,
            venue=venue,
            symbol=key.symbol if key else "",
            kind=kind,
            ref_id=ref_id,
        )

    payload = entry_payload(entry.stream, entry.fields)
    header = entry.header_ids
    if header is None or header[0] != header[2] - header[1] + 1 or header[0] > MAX_LETTERS_PER_ENTRY:
        return [letter(entry.detail, payload, -1)]
    _, lo, hi = header
    letters = [letter(f"{entry.detail} (ids {lo}..{hi} from the entry header)", payload, lo)]
    sibling = f"{entry.detail} (payload on the dead letter with ref_id {lo})"
    letters.extend(letter(sibling, b"", venue_id) for venue_id in range(lo + 1, hi + 1))
    return letters


def row_letter(key: Key, stream: str, row: TradeRow | BboRow, reason: str, detail: str, now_ns: int) -> DeadLetter:
    venue_id = row.trade_id if isinstance(row, TradeRow) else row.update_id
    return DeadLetter(
        source=SOURCE,
        reason=reason,
        detail=detail,
        payload=row_payload(key, stream, row, now_ns),
        time_ns=now_ns,
        venue=key.venue,
        symbol=key.symbol,
        kind=key.kind.value,
        ref_id=venue_id,
    )


class DeadLetterPublisher:
    """XADDs letters to ops:dlq (never trimmed on add); raises redis errors so the caller keeps the batch."""

    def __init__(self, redis: aioredis.Redis, on_published: Callable[[str, int], None] | None = None) -> None:
        self.redis = redis
        self.on_published = on_published

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        encode = msgspec.msgpack.encode
        for start in range(0, len(letters), 1000):
            chunk = letters[start : start + 1000]
            async with self.redis.pipeline(transaction=False) as pipe:
                for letter in chunk:
                    pipe.xadd(DLQ_STREAM, {"d": encode(letter), "source": letter.source, "reason": letter.reason})
                await pipe.execute()
        if self.on_published:
            for letter in letters:
                self.on_published(letter.reason, 1)
