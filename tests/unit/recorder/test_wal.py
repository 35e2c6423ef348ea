"""The WAL on a real filesystem: fsynced records, recovery of torn tails and damaged records, archive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hftops.pipeline.recorder.wal import MAGIC, Wal, WalRecord, pending_ids, scan_segment, segment_files


def record(n: int, key: str = "sim:trade:BTCUSDT", rows: int = 3) -> WalRecord:
    lo = n * 100
    body = b"\n".join(b'["sim","BTCUSDT",%d]' % i for i in range(lo, lo + rows))
    return WalRecord("market_trades", f"tok{n}", body, {key: [(lo, lo + rows - 1)]}, [], rows, n)


def make_wal(tmp_path: Path, segment_bytes: int = 1 << 20, archive_max: int = 1 << 30) -> Wal:
    wal = Wal(tmp_path / "wal", tmp_path / "wal" / "archive", segment_bytes, archive_max)
    assert wal.recover() == []
    return wal


def test_records_survive_a_reopen_in_order(tmp_path: Path) -> None:
    wal = make_wal(tmp_path)
    for n in range(5):
        wal.append(record(n))
    wal.close()
    again = Wal(tmp_path / "wal", tmp_path / "wal" / "archive", 1 << 20, 1 << 30)
    refs = again.recover()
    assert [r.token for r in refs] == [f"tok{n}" for n in range(5)]
    segment = again.segments[0]
    assert again.read(segment, segment.records[2]) == record(2)
    assert again.summary()["records"] == 5 and again.torn_tails == 0
    assert pending_ids(tmp_path / "wal") == {
        "sim:trade:BTCUSDT": [[0, 2], [100, 102], [200, 202], [300, 302], [400, 402]]
    }


def test_segments_rotate_and_new_names_are_durable(tmp_path: Path) -> None:
    wal = make_wal(tmp_path, segment_bytes=4096)
    for n in range(40):
        wal.append(record(n, rows=20))
    assert len(wal.segments) > 3
    assert all(s.size <= 4096 or len(s.records) == 1 for s in wal.segments)
    assert [seq for seq, _ in segment_files(tmp_path / "wal")] == sorted(s.seq for s in wal.segments)


def _last_segment(tmp_path: Path) -> Path:
    return segment_files(tmp_path / "wal")[-1][1]


@pytest.mark.parametrize("cut", ["mid_payload", "mid_header", "zero_fill"])
def test_torn_tail_is_truncated_and_counted(tmp_path: Path, cut: str) -> None:
    wal = make_wal(tmp_path)
    for n in range(3):
        wal.append(record(n))
    wal.close()
    path = _last_segment(tmp_path)
    good_size = path.stat().st_size
    with open(path, "ab") as handle:
        frame_start = good_size
        if cut == "zero_fill":
            handle.write(b"\0" * 4096)  # blocks allocated by the crash but never written
        else:
            whole = Wal(tmp_path / "scratch", tmp_path / "scratch" / "a", 1 << 20, 0)
            whole.recover()
            whole.append(record(9))
            whole.close()
            frame = _last_segment_of(tmp_path / "scratch").read_bytes()[len(MAGIC) :]
            handle.write(frame[: len(frame) // 2] if cut == "mid_payload" else frame[:6])
    events: list[str] = []
    again = Wal(tmp_path / "wal", tmp_path / "wal" / "archive", 1 << 20, 1 << 30, lambda e, i: events.append(e))
    refs = again.recover()
    assert [r.token for r in refs] == ["tok0", "tok1", "tok2"]
    assert again.torn_tails == 1 and again.corrupt_records == 0 and events == ["wal_torn_tail"]
    assert path.stat().st_size == frame_start
    again.append(record(3))  # appends after the cut start a new segment; the old one stays readable
    again.close()
    assert [r.token for r in Wal(tmp_path / "wal", tmp_path / "a2", 1 << 20, 0).recover()] == [
        "tok0",
        "tok1",
        "tok2",
        "tok3",
    ]


def _last_segment_of(directory: Path) -> Path:
    return segment_files(directory)[-1][1]


def test_damaged_record_in_the_middle_is_reported_replayed_around_and_quarantined(tmp_path: Path) -> None:
    wal = make_wal(tmp_path)
    refs = [wal.append(record(n)) for n in range(4)]
    wal.close()
    path = _last_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[refs[1].offset + refs[1].length - 2] ^= 0xFF  # one flipped byte inside record 1's payload
    path.write_bytes(bytes(data))
    assert scan_segment(path).problems and scan_segment(path).torn_at is None
    events: list[str] = []
    again = Wal(tmp_path / "wal", tmp_path / "wal" / "archive", 1 << 20, 1 << 30, lambda e, i: events.append(e))
    recovered = again.recover()
    assert [r.token for r in recovered] == ["tok0", "tok2", "tok3"]  # nothing silently skipped: reported
    assert again.corrupt_records == 1 and "wal_corrupt_records" in events
    segment = again.segments[0]
    segment.done.update(range(len(segment.records)))
    target = again.finish(segment)
    assert target.parent.name == "quarantine" and target.exists()
    assert (target.parent / f"{target.name}.report.json").exists()
    assert again.segments == [] and not list((tmp_path / "wal" / "archive").iterdir())


def test_damaged_last_complete_record_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    wal = make_wal(tmp_path)
    refs = [wal.append(record(n)) for n in range(2)]
    wal.close()
    path = _last_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[refs[1].offset + refs[1].length - 1] ^= 0x01
    path.write_bytes(bytes(data))
    again = Wal(tmp_path / "wal", tmp_path / "wal" / "archive", 1 << 20, 1 << 30)
    assert [r.token for r in again.recover()] == ["tok0"]
    assert again.corrupt_records == 1 and again.torn_tails == 0
    assert path.stat().st_size == len(data)  # acked data is never truncated away


def test_finished_segments_are_archived_and_the_archive_is_bounded(tmp_path: Path) -> None:
    wal = make_wal(tmp_path, segment_bytes=2048, archive_max=5000)
    for n in range(30):
        wal.append(record(n, rows=10))
    wal.seal()
    for segment in list(wal.sealed_segments()):
        wal.finish(segment)
    archived = segment_files(tmp_path / "wal" / "archive")
    assert wal.segments == [] and wal.bytes == 0 and archived
    assert sum(p.stat().st_size for _, p in archived) <= 5000
    assert segment_files(tmp_path / "wal") == []
    wal.append(record(99))  # a new segment never reuses an archived name
    assert wal.segments[0].seq > archived[-1][0]


def test_a_failed_write_leaves_no_partial_record(tmp_path: Path) -> None:
    wal = make_wal(tmp_path)
    wal.append(record(0))
    assert wal._fd is not None
    os.close(wal._fd)  # the next write hits EBADF, as a dying disk would fail it
    with pytest.raises(OSError, match="WAL write"):
        wal.append(record(1))
    again = Wal(tmp_path / "wal", tmp_path / "a", 1 << 20, 0)
    assert [r.token for r in again.recover()] == ["tok0"] and again.torn_tails == 0
