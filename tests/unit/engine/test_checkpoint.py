from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from hftops.engine.checkpoint import CheckpointCorrupt, checkpoint_path, load_checkpoint, write_checkpoint
from hftops.engine.positions import PositionBook
from hftops.model.orders import Side
from tests.support.waiting import wait_for
from tests.unit.engine.fakes import D, fill

DAY = date(2026, 11, 23)


def sample_book() -> PositionBook:
    book = PositionBook(D(1000))
    book.apply_fill(fill("mm1", "BTCUSDT", Side.BUY, "0.03", "65000.1", fee="0.39"))
    book.apply_fill(fill("mom1", "ETHUSDT", Side.SELL, "0.3", "3400.25"))
    book.apply_fill(fill("mom1", "ETHUSDT", Side.BUY, "0.1", "3390"))
    return book


def test_roundtrip(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path / "state")
    book = sample_book()
    write_checkpoint(path, book.snapshots(), DAY, 123, D(1005))
    body = load_checkpoint(path)
    assert body is not None
    assert (body.trading_date, body.written_ns, body.peak_equity) == (DAY, 123, D(1005))
    restored = PositionBook.restore(body.positions)
    assert sorted(restored.snapshots(), key=lambda s: s.strategy_id) == sorted(
        book.snapshots(), key=lambda s: s.strategy_id
    )
    assert restored.net() == book.net()
    assert [p.name for p in path.parent.iterdir()] == ["positions.json"]  # no temp file left behind
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_missing_checkpoint_is_a_fresh_start(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "positions.json") is None


def _damage_qty(raw: str) -> str:
    data = json.loads(raw)
    data["body"]["positions"][0]["qty"] = "5"
    return json.dumps(data)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda raw: raw[: len(raw) // 2], "not a valid checkpoint"),
        (lambda raw: "", "not a valid checkpoint"),
        (lambda raw: "garbage{", "not a valid checkpoint"),
        (_damage_qty, "checksum mismatch"),
        (lambda raw: raw.replace('"sha256":"', '"sha256":"0'), "checksum mismatch"),
        (lambda raw: json.dumps({"body": {}, "sha256": "x"}), "not a valid checkpoint"),
    ],
)
def test_corrupt_checkpoint_is_refused_with_a_clear_message(tmp_path: Path, damage, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = checkpoint_path(tmp_path)
    write_checkpoint(path, sample_book().snapshots(), DAY, 1, D(0))
    path.write_text(damage(path.read_text()))
    with pytest.raises(CheckpointCorrupt) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    assert "refusing to trade" in message and "mv " in message


def test_wrong_version_is_refused(tmp_path: Path) -> None:
    from hftops.engine import checkpoint as module

    path = checkpoint_path(tmp_path)
    write_checkpoint(path, [], DAY, 1, D(0))
    raw = json.loads(path.read_text())
    raw["body"]["version"] = 99
    body = module.CheckpointBody(**{**raw["body"], "trading_date": DAY, "peak_equity": D(0), "positions": []})
    path.write_bytes(module._ENCODER.encode(module.Checkpoint(body=body, sha256=module._digest(body))))
    with pytest.raises(CheckpointCorrupt, match="version 99"):
        load_checkpoint(path)


WRITER = """
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from hftops.engine.checkpoint import write_checkpoint
from hftops.engine.positions import PositionSnapshot

path = Path(sys.argv[1])
n = 0
while True:
    n += 1
    snaps = [
        PositionSnapshot(strategy_id=f"s{i}", symbol="BTCUSDT", qty=Decimal(n), avg_price=Decimal("100.5"),
                         realized_pnl=Decimal(-n), fees=Decimal("0.01") * n)
        for i in range(200)
    ]
    write_checkpoint(path, snaps, date(2026, 11, 23), n, Decimal(n))
    (path.parent / "count").write_text(str(n))
"""


def test_kill_9_mid_write_leaves_a_valid_checkpoint(tmp_path: Path) -> None:
    """A writer killed at an arbitrary moment leaves the previous or the next checkpoint, never a torn one."""
    path = checkpoint_path(tmp_path)
    count = tmp_path / "count"

    def writes_at_least(n: int) -> bool:
        return count.exists() and int(count.read_text() or 0) >= n

    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env={**os.environ})
        try:
            wait_for(
                lambda n=5 + round_: writes_at_least(n),
                timeout_s=20,
                what="checkpoint writes",
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        body = load_checkpoint(path)
        assert body is not None and len(body.positions) == 200
        assert all(p.qty == body.written_ns for p in body.positions)
        count.unlink()
    write_checkpoint(path, [], DAY, 1, D(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["positions.json"]  # killed writers' temps removed
