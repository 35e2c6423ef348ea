"""The venue's ground truth: every trade it ever published, per symbol, in an append-only file.

Layout under `DataPaths.venue_state / <venue name>`:
  meta.json               format version and record layout (checked at start)
  trades-<SYMBOL>.bin     one 24-byte record per trade; record i (0-based) is trade id i + 1
  book-<SYMBOL>.u         8 bytes: last bookTicker update id (rewritten in place every tick)

Records are written with os.write before the trades go on the wire, so after kill -9 the page cache holds
every trade any client may have seen. REST backfill reads records back with pread (from the page cache):
the process keeps no per-trade memory, so its RSS stays flat however long it runs, where an in-memory
copy (24 bytes a trade) would grow by ~2 GB an hour at 25,000 trades/s.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import structlog

FORMAT_VERSION = 1
RECORD = struct.Struct("<qqIB3x")  # price units, trade time ms, qty units, flags (bit 0: buyer is maker)
RECORD_BYTES = RECORD.size
_U64 = struct.Struct("<Q")

log = structlog.get_logger("venue")


class GroundTruthError(Exception):
    """The ground-truth directory cannot be used as it is; the message names the file and the fix."""


class SymbolLedger:
    def __init__(self, symbol: str, directory: Path) -> None:
        self.symbol = symbol
        self.path = directory / f"trades-{symbol}.bin"
        self.book_path = directory / f"book-{symbol}.u"
        self.count = 0  # records in the file = last trade id
        self.last_price_units: int | None = None
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._load_trades()
        self.book_fd = os.open(self.book_path, os.O_RDWR | os.O_CREAT, 0o644)
        raw = os.pread(self.book_fd, _U64.size, 0)
        self.last_book_id: int = _U64.unpack(raw)[0] if len(raw) == _U64.size else 0

    def _load_trades(self) -> None:
        size = os.fstat(self.fd).st_size
        whole = size - size % RECORD_BYTES
        if whole != size:
            # Only a batch that never reached the wire can be cut short (records go to disk first).
            log.warning("venue.ground_truth.trailing_partial_record", file=str(self.path), dropped_bytes=size - whole)
            os.ftruncate(self.fd, whole)
        self.count = whole // RECORD_BYTES
        if self.count:
            last = os.pread(self.fd, RECORD_BYTES, whole - RECORD_BYTES)
            self.last_price_units = int(RECORD.unpack(last)[0])

    @property
    def last_id(self) -> int:
        return self.count

    def append(self, records: bytes) -> None:
        """Persist a batch; a failed write is rolled back so the file never holds a torn batch."""
        view = memoryview(records)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except OSError:
            os.ftruncate(self.fd, self.count * RECORD_BYTES)
            raise
        self.count += len(records) // RECORD_BYTES
        self.last_price_units = int(RECORD.unpack_from(records, len(records) - RECORD_BYTES)[0])

    def set_last_book_id(self, update_id: int) -> None:
        os.pwrite(self.book_fd, _U64.pack(update_id), 0)
        self.last_book_id = update_id

    def rows(self, first_id: int, last_id: int) -> Iterator[tuple[int, int, int, int, bool]]:
        """(id, price units, time ms, qty units, buyer is maker) for ids first_id..last_id inclusive."""
        first_id = max(first_id, 1)
        last_id = min(last_id, self.last_id)
        if last_id < first_id:
            return
        size = (last_id - first_id + 1) * RECORD_BYTES
        chunk = os.pread(self.fd, size, (first_id - 1) * RECORD_BYTES)
        if len(chunk) != size:
            raise OSError(f"{self.path}: short read of ids {first_id}..{last_id}; was the file truncated?")
        for trade_id, (price, time_ms, qty, flags) in enumerate(RECORD.iter_unpack(chunk), first_id):
            yield trade_id, price, time_ms, qty, bool(flags & 1)

    def close(self) -> None:
        for fd in (self.fd, self.book_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def pack_trades(prices: list[int], time_ms: int, qtys: list[int], sides: list[bool]) -> bytes:
    pack = RECORD.pack
    return b"".join([pack(p, time_ms, q, m) for p, q, m in zip(prices, qtys, sides, strict=True)])


class GroundTruth:
    """All symbols' ledgers in one directory; opening it reloads what an earlier run published."""

    def __init__(self, directory: Path, symbols: tuple[str, ...]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._check_meta()
        self.ledgers: dict[str, SymbolLedger] = {s: SymbolLedger(s, directory) for s in symbols}

    def _check_meta(self) -> None:
        meta_path = self.directory / "meta.json"
        expected = {"format": FORMAT_VERSION, "record": RECORD.format, "record_bytes": RECORD_BYTES}
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as exc:
                raise GroundTruthError(
                    f"venue ground truth: cannot read {meta_path} ({exc}); "
                    "move the directory aside to start a fresh ground truth"
                ) from exc
            if meta != expected:
                raise GroundTruthError(
                    f"venue ground truth at {self.directory} has format {meta}, this venue "
                    f"writes {expected}; move the directory aside to start afresh"
                )
        else:
            tmp = meta_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(expected))
            os.replace(tmp, meta_path)

    def __getitem__(self, symbol: str) -> SymbolLedger:
        return self.ledgers[symbol]

    def close(self) -> None:
        for ledger in self.ledgers.values():
            ledger.close()
