"""The recorder's write-ahead log: batches the database could not take, fsynced before their entries are acked.

Layout under $HFT_DATA_DIR/wal: segment files `wal-<seq>.seg` (magic header, then records), replayed
segments moved to `archive/`, damaged ones to `quarantine/` with a report. A record is
`WREC | u32 length | u32 crc32(payload) | payload` where the payload is a msgpack WalRecord holding the
exact insert body and its deduplication token, so a replay is the same insert as the first attempt.

Recovery tells two failures apart. A torn tail (a record cut short by a crash, or zero-filled blocks)
can only be data that was never acknowledged, so it is still pending in Redis: it is truncated and
reported. A complete record whose checksum fails was acknowledged: it is reported, counted, the
segment's readable records are still replayed, and the segment is quarantined, never silently skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

MAGIC: Final = b"HFTWAL01"
RECORD_MARK: Final = b"WREC"
_HEADER = struct.Struct("<4sII")  # mark, payload length, crc32(payload)
SEGMENT_PREFIX: Final = "wal-"
SEGMENT_SUFFIX: Final = ".seg"
QUARANTINE: Final = "quarantine"


class WalRecord(msgspec.Struct, array_like=True, frozen=True):
    table: str
    token: str
    body: bytes  # JSONCompactEachRow lines, exactly as inserted
    ids: dict[str, list[tuple[int, int]]]  # "<venue>:<kind>:<SYMBOL>" -> venue id ranges (market tables)
    dlq_ids: list[str]  # ops:dlq entry ids (dead_letters table)
    rows: int
    created_ns: int
    recheck: bool = False  # some rows' stored state was unknown when written: check the table on replay
    keys: list[str] = []  # event keys (event tables: orders, fills, ...); older records have none


_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(WalRecord).decode


class WalWriteError(OSError):
    """The WAL could not take a record (disk full, I/O error): nothing may be acked."""


@dataclass
class RecordRef:
    offset: int
    length: int  # whole frame, header included
    table: str
    token: str
    ids: dict[str, list[tuple[int, int]]]
    dlq_ids: list[str]
    rows: int
    keys: list[str] = field(default_factory=list)  # event keys (event tables)


@dataclass
class Segment:
    path: Path
    seq: int
    size: int
    records: list[RecordRef] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # corrupt records found by recovery
    done: set[int] = field(default_factory=set)  # indexes of records already in the database

    @property
    def replayed(self) -> int:
        return len(self.done)

    def pending(self) -> list[int]:
        return [i for i in range(len(self.records)) if i not in self.done]

    @property
    def corrupt(self) -> bool:
        return bool(self.problems)


@dataclass
class ScanResult:
    records: list[RecordRef]
    problems: list[str]
    torn_at: int | None  # offset of a torn tail, None when the segment ends cleanly
    bad_magic: bool = False


def segment_name(seq: int) -> str:
    return f"{SEGMENT_PREFIX}{seq:020d}{SEGMENT_SUFFIX}"


def segment_files(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}"):
        digits = path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]
        if digits.isdigit() and path.is_file():
            found.append((int(digits), path))
    return sorted(found)


def _try_record(data: bytes, pos: int) -> tuple[str, int, WalRecord | None]:
    """("ok"|"partial"|"damaged"|"garbage", end, record) for the frame at pos."""
    if len(data) - pos < _HEADER.size:
        return "partial", len(data), None
    mark, length, crc = _HEADER.unpack_from(data, pos)
    if mark != RECORD_MARK or length == 0:
        return "garbage", pos, None
    end = pos + _HEADER.size + length
    if end > len(data):
        return "partial", end, None
    payload = data[pos + _HEADER.size : end]
    if zlib.crc32(payload) != crc:
        return "damaged", end, None
    try:
        return "ok", end, _DECODE(payload)
    except (msgspec.DecodeError, ValueError):
        return "damaged", end, None


def _next_valid(data: bytes, start: int) -> int | None:
    pos = data.find(RECORD_MARK, start)
    while pos != -1:
        if _try_record(data, pos)[0] == "ok":
            return pos
        pos = data.find(RECORD_MARK, pos + 1)
    return None


def scan_segment(path: Path) -> ScanResult:
    data = path.read_bytes()
    if len(data) < len(MAGIC):
        if MAGIC.startswith(data):
            return ScanResult([], [], 0)  # cut short while being created
        return ScanResult([], [f"{path.name}: not a WAL segment ({len(data)} bytes)"], None, bad_magic=True)
    if data[: len(MAGIC)] != MAGIC:
        return ScanResult([], [f"{path.name}: not a WAL segment (bad magic {data[:8]!r})"], None, bad_magic=True)
    records: list[RecordRef] = []
    problems: list[str] = []
    pos = len(MAGIC)
    while pos < len(data):
        status, end, record = _try_record(data, pos)
        if status == "ok" and record is not None:
            records.append(
                RecordRef(
                    pos, end - pos, record.table, record.token, record.ids, record.dlq_ids, record.rows, record.keys
                )
            )
            pos = end
            continue
        resume = _next_valid(data, pos + 1)
        if resume is None and status in ("partial", "garbage"):
            return ScanResult(records, problems, pos)  # torn tail: never fsynced whole, never acked
        problems.append(
            f"{path.name}: {status} record at offset {pos}"
            + (
                f", skipped to the next readable record at {resume}"
                if resume is not None
                else ", nothing readable after it"
            )
        )
        if resume is None:
            break
        pos = resume
    return ScanResult(records, problems, None)


def pending_ids(wal_dir: Path) -> dict[str, list[list[int]]]:
    """Ids waiting in the WAL segments under wal_dir, read-only (for the ledger when no recorder runs)."""
    from hftops.pipeline.intervals import IdRanges

    merged: dict[str, IdRanges] = {}
    for _, path in segment_files(Path(wal_dir)):
        for ref in scan_segment(path).records:
            for key, ranges in ref.ids.items():
                merged[key] = merged.get(key, IdRanges()).union(IdRanges(ranges))
    return {key: ids.to_list() for key, ids in sorted(merged.items())}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Wal:
    """Single-threaded: the recorder calls it only from its one storage worker thread."""

    def __init__(
        self,
        directory: Path,
        archive: Path,
        segment_bytes: int,
        archive_max_bytes: int,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.directory = directory
        self.archive = archive
        self.quarantine = directory / QUARANTINE
        self.segment_bytes = segment_bytes
        self.archive_max_bytes = archive_max_bytes
        self.on_event = on_event or (lambda event, info: None)
        self.segments: list[Segment] = []
        self._active: Segment | None = None
        self._fd: int | None = None
        self.torn_tails = 0
        self.corrupt_records = 0

    # -- state -------------------------------------------------------------------------------------

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def records(self) -> int:
        return sum(len(s.records) - s.replayed for s in self.segments)

    def summary(self) -> dict[str, int]:
        return {
            "segments": len(self.segments),
            "bytes": self.bytes,
            "records": self.records,
            "torn_tails": self.torn_tails,
            "corrupt_records": self.corrupt_records,
        }

    # -- recovery ----------------------------------------------------------------------------------

    def recover(self) -> list[RecordRef]:
        """Scan every segment once at start; truncate torn tails, note corrupt records. Returns all records."""
        for path in (self.directory, self.archive, self.quarantine):
            path.mkdir(parents=True, exist_ok=True)
        refs: list[RecordRef] = []
        for seq, path in segment_files(self.directory):
            scan = scan_segment(path)
            if scan.bad_magic and scan.problems:
                self._quarantine(Segment(path, seq, path.stat().st_size, problems=scan.problems))
                self.corrupt_records += 1
                self.on_event("wal_segment_unreadable", {"segment": path.name, "problems": scan.problems})
                continue
            if scan.torn_at is not None:
                size = path.stat().st_size
                with open(path, "r+b") as handle:
                    handle.truncate(scan.torn_at)
                    handle.flush()
                    os.fsync(handle.fileno())
                self.torn_tails += 1
                self.on_event(
                    "wal_torn_tail",
                    {"segment": path.name, "offset": scan.torn_at, "bytes_dropped": size - scan.torn_at},
                )
            if not scan.records and not scan.problems:
                path.unlink()  # empty (or only a torn first record): nothing was ever acked against it
                continue
            if scan.problems:
                self.corrupt_records += len(scan.problems)
                self.on_event("wal_corrupt_records", {"segment": path.name, "problems": scan.problems})
            self.segments.append(Segment(path, seq, path.stat().st_size, scan.records, scan.problems))
            refs.extend(scan.records)
        _fsync_dir(self.directory)
        return refs

    # -- writing -----------------------------------------------------------------------------------

    def append(self, record: WalRecord) -> RecordRef:
        payload = _ENCODE(record)
        frame = _HEADER.pack(RECORD_MARK, len(payload), zlib.crc32(payload)) + payload
        segment = self._active
        if segment is None or (segment.records and segment.size + len(frame) > self.segment_bytes):
            segment = self._open_segment()
        assert self._fd is not None
        offset = segment.size
        try:
            view = memoryview(frame)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError as exc:
            self._abandon_active(offset)
            raise WalWriteError(exc.errno, f"WAL write to {segment.path} failed: {exc.strerror}") from exc
        ref = RecordRef(
            offset, len(frame), record.table, record.token, record.ids, record.dlq_ids, record.rows, record.keys
        )
        segment.records.append(ref)
        segment.size += len(frame)
        return ref

    def _open_segment(self) -> Segment:
        self.seal()
        used = [s.seq for s in self.segments] + [seq for seq, _ in segment_files(self.archive)]
        used += [seq for seq, _ in segment_files(self.quarantine)] if self.quarantine.is_dir() else []
        seq = max(used, default=0) + 1
        path = self.directory / segment_name(seq)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, MAGIC)
                os.fsync(fd)
            except OSError:
                os.close(fd)
                path.unlink(missing_ok=True)
                raise
            _fsync_dir(self.directory)  # the new name must survive a crash, not only its contents
        except OSError as exc:
            raise WalWriteError(exc.errno, f"cannot create WAL segment {path}: {exc.strerror}") from exc
        self._fd = fd
        self._active = Segment(path, seq, len(MAGIC))
        self.segments.append(self._active)
        return self._active

    def _abandon_active(self, good_size: int) -> None:
        # Cut the failed write off (best effort) and seal: later writes start a fresh segment.
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, good_size)
                os.fsync(self._fd)
            except OSError:
                pass  # recovery at the next start finds the torn tail and truncates it
        self.seal()

    def seal(self) -> None:
        """Close the active segment; replay takes only sealed segments."""
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a failed disk may fail the close too; the fd is gone anyway
                os.close(self._fd)
        self._fd = None
        active, self._active = self._active, None
        if active is not None and not active.records:
            active.path.unlink(missing_ok=True)
            self.segments.remove(active)

    @property
    def active(self) -> Segment | None:
        return self._active

    # -- replay ------------------------------------------------------------------------------------

    def sealed_segments(self) -> list[Segment]:
        return [s for s in self.segments if s is not self._active]

    def read(self, segment: Segment, ref: RecordRef) -> WalRecord:
        with open(segment.path, "rb") as handle:
            handle.seek(ref.offset)
            frame = handle.read(ref.length)
        status, _, record = _try_record(frame, 0)
        if status != "ok" or record is None:
            raise WalWriteError(0, f"{segment.path.name}: record at {ref.offset} changed on disk since recovery")
        return record

    def finish(self, segment: Segment) -> Path:
        """Every record of `segment` is in the database: archive it (quarantine it if recovery found damage)."""
        if segment is self._active:
            self.seal()
        target = self._quarantine(segment) if segment.corrupt else self._archive(segment)
        if segment in self.segments:
            self.segments.remove(segment)
        return target

    def _archive(self, segment: Segment) -> Path:
        target = self.archive / segment.path.name
        os.replace(segment.path, target)
        _fsync_dir(self.archive)
        _fsync_dir(self.directory)
        self._prune_archive()
        return target

    def _quarantine(self, segment: Segment) -> Path:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        target = self.quarantine / segment.path.name
        os.replace(segment.path, target)
        report = {
            "segment": segment.path.name,
            "problems": segment.problems,
            "records_replayed": segment.replayed,
            "records_readable": len(segment.records),
            "note": "records listed as damaged were acknowledged and are not in the database; "
            "their data is lost unless a collector backfill or the venue can re-send it",
        }
        (self.quarantine / f"{segment.path.name}.report.json").write_text(json.dumps(report, indent=2))
        _fsync_dir(self.quarantine)
        _fsync_dir(self.directory)
        self.on_event("wal_segment_quarantined", {"segment": segment.path.name, "to": str(target)})
        return target

    def _prune_archive(self) -> None:
        # Archived segments are already in the database; keep the newest ones for forensics.
        files = segment_files(self.archive)
        total = sum(p.stat().st_size for _, p in files)
        for _, path in files:
            if total <= self.archive_max_bytes:
                break
            total -= path.stat().st_size
            path.unlink()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self._active = None  # an unsealed active segment is recovered like any other at the next start
