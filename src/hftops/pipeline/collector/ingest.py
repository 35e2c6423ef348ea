"""The synchronous heart of the collector: frames and REST rows in, batched rows and dead letters out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog

from hftops.model.market import DeadLetter, TradeRow
from hftops.model.streams import DLQ_STREAM, MdKind
from hftops.pipeline.collector.batcher import Batcher
from hftops.pipeline.collector.decode import (
    INT64_MAX,
    Decoded,
    FrameDecoder,
    Rejected,
    rest_agg_trade_row,
    rest_historical_trade_row,
    rest_row_id,
    rest_row_payload,
)
from hftops.pipeline.collector.reasons import SOURCE, RejectReason
from hftops.pipeline.collector.rest import RestRow
from hftops.pipeline.collector.sequence import Seen, TradeSequence
from hftops.pipeline.collector.stats import Totals

_DEAD_LETTER = msgspec.msgpack.Encoder()
DeadLetterFields = dict[str, bytes | str]


class Ingest:
    """Decodes, validates and de-duplicates; rows go to the batcher, refusals to `dead_letters`.

    Nothing here awaits, so one frame is handled completely before the next: the order of ids seen by
    the sequences is the order the venue sent them.
    """

    def __init__(
        self,
        venue: str,
        decoder: FrameDecoder,
        sequences: dict[str, TradeSequence],
        batcher: Batcher,
        totals: Totals,
        wall_ns: Callable[[], int],
        on_gap: Callable[[str], None],
        log: structlog.stdlib.BoundLogger,
        rest_rows: str = "aggTrade",
    ) -> None:
        self.venue = venue
        self.decoder = decoder
        self.sequences = sequences
        self.batcher = batcher
        self.totals = totals
        self._wall_ns = wall_ns
        self._on_gap = on_gap
        self._log = log
        self._rest_row: Callable[[str, Any, int], TradeRow | Rejected] = (
            rest_agg_trade_row if rest_rows == "aggTrade" else rest_historical_trade_row
        )
        self.dead_letters: list[DeadLetterFields] = []
        self.last_live_ns: dict[str, int] = {}
        self.cursor_dirty: set[str] = set()  # symbols whose contiguous mark moved without rows (closed ids)

    @property
    def held(self) -> int:
        """Messages held in memory until Redis has them: waiting, or in a write not yet answered."""
        return self.batcher.buffered + self.batcher.handed_out + len(self.dead_letters)

    def frame(self, payload: bytes) -> None:
        now_ns = self._wall_ns()
        self.totals.received += 1
        try:
            self._frame(payload, now_ns)
        except Exception as exc:  # a bug must not stop the feed: the frame is kept in the dead-letter queue
            self.dead_letter(
                Rejected(RejectReason.INTERNAL_ERROR, f"collector failed on this frame: {exc!r}"),
                payload,
                now_ns,
            )

    def _frame(self, payload: bytes, now_ns: int) -> None:
        result = self.decoder.decode(payload, now_ns)
        if type(result) is not Decoded:
            self.dead_letter(result, payload, now_ns)  # type: ignore[arg-type]
            return
        kind, symbol, row = result
        self.last_live_ns[symbol] = now_ns
        if kind is MdKind.TRADE:
            trade_id = row.trade_id  # type: ignore[union-attr]
            seq = self.sequences[symbol]
            if trade_id == seq.next_id:  # the common case, without a call
                seq.next_id = trade_id + 1
            else:
                opened = seq.gaps_opened
                if seq.observe(trade_id) is Seen.DUPLICATE:
                    self._duplicate(seq, trade_id)
                    return
                if seq.gaps_opened != opened:
                    self._gap_opened(seq, trade_id)
            self.batcher.add(kind, symbol, row, trade_id, now_ns)
        else:
            self.batcher.add(kind, symbol, row, row.update_id, now_ns)  # type: ignore[union-attr]

    def _duplicate(self, seq: TradeSequence, trade_id: int) -> None:
        count = self.totals.duplicates = self.totals.duplicates + 1
        if count <= 10 or count & (count - 1) == 0:  # a venue that restarted its ids would show up here
            self._log.warning(
                "trade_duplicate_skipped",
                symbol=seq.symbol,
                trade_id=trade_id,
                next_expected=seq.next_id,
                count=count,
            )

    def _gap_opened(self, seq: TradeSequence, trade_id: int) -> None:
        self.totals.gaps_opened += 1
        self._log.warning(
            "trade_gap_detected",
            symbol=seq.symbol,
            live_id=trade_id,
            open_gaps=seq.gaps[:5],
            missing=seq.missing,
            action="backfilling from REST",
        )
        self._on_gap(seq.symbol)

    def backfill(self, symbol: str, rows: Iterable[RestRow]) -> int:
        """REST rows for `symbol`: ids still missing (or beyond the feed) are taken; returns rows taken."""
        seq = self.sequences[symbol]
        now_ns = self._wall_ns()
        taken = 0
        for rest in rows:
            row = self._rest_row(symbol, rest, now_ns)
            if isinstance(row, Rejected) and row.reason is RejectReason.BAD_ID:
                self.dead_letter(row, rest_row_payload(rest), now_ns)
                continue
            trade_id = rest_row_id(rest)
            opened = seq.gaps_opened
            if seq.observe(trade_id) is Seen.DUPLICATE:
                continue  # the live feed or an earlier page brought it
            if seq.gaps_opened != opened:
                self._gap_opened(seq, trade_id)
            taken += 1
            if isinstance(row, TradeRow):
                self.batcher.add(MdKind.TRADE, symbol, row, trade_id)
            else:
                # The venue's own history is bad; nothing better exists, so its dead letter closes the id.
                self.dead_letter(row, rest_row_payload(rest), now_ns)
        self.totals.backfilled += taken
        self.cursor_dirty.add(symbol)
        return taken

    def dead_letter(self, rejected: Rejected, payload: bytes, now_ns: int) -> None:
        reason = rejected.reason.value
        count = self.totals.dlq[reason] = self.totals.dlq[reason] + 1
        ref_id = rejected.ref_id if 0 <= rejected.ref_id <= INT64_MAX else -1
        # The detail may quote venue text: lone surrogates would make msgpack refuse the whole letter.
        detail = rejected.detail.encode("utf-8", "backslashreplace").decode("utf-8")
        letter = DeadLetter(
            source=SOURCE,
            reason=reason,
            detail=detail,
            payload=payload,
            time_ns=now_ns,
            venue=self.venue,
            symbol=rejected.symbol,
            kind=rejected.kind,
            ref_id=ref_id,
        )
        self.dead_letters.append({"d": _DEAD_LETTER.encode(letter), "source": SOURCE, "reason": reason})
        if count <= 10 or count & (count - 1) == 0:  # every one at first, then at powers of two: no log flood
            self._log.warning("frame_dead_lettered", reason=reason, detail=detail, count=count, stream=DLQ_STREAM)
