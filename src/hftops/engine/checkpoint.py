"""The position checkpoint `<data>/state/positions.json`: atomic write, checksum, trading date.

Written as temp file -> fsync -> rename -> fsync(dir), so a crash leaves the old or the new file, never a
mix. The checksum (sha256 of the canonical body) catches a file damaged after it was written; a damaged
checkpoint is refused loudly, because trading on wrong positions is worse than not trading.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

import msgspec

from hftops.engine.positions import PositionSnapshot

CHECKPOINT_FILE = "positions.json"
CHECKPOINT_VERSION = 1


class CheckpointBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    version: int
    trading_date: date
    written_ns: int
    peak_equity: Decimal
    positions: list[PositionSnapshot]
    # symbol -> trade ids booked shortly before the write (engine.booked); omitted when empty, so the checksum
    # of a checkpoint written before the field existed still matches
    booked_trade_ids: dict[str, list[int]] = {}


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    body: CheckpointBody
    sha256: str


class CheckpointCorrupt(Exception):
    """The checkpoint exists but cannot be trusted. The engine must refuse to trade."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"position checkpoint {path} is corrupt ({problem}); refusing to trade. Compare the broker's positions "
            f"(`trading positions --json`), then move the file aside (mv {path} {path}.bad) so the engine starts "
            f"from the broker's positions through startup reconciliation"
        )


_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(Checkpoint)


def checkpoint_path(state_dir: Path) -> Path:
    return state_dir / CHECKPOINT_FILE


def _digest(body: CheckpointBody) -> str:
    return hashlib.sha256(_ENCODER.encode(body)).hexdigest()


def write_checkpoint(
    path: Path,
    positions: list[PositionSnapshot],
    trading_date: date,
    written_ns: int,
    peak_equity: Decimal,
    booked_trade_ids: Mapping[str, list[int]] | None = None,
) -> None:
    body = CheckpointBody(
        version=CHECKPOINT_VERSION,
        trading_date=trading_date,
        written_ns=written_ns,
        peak_equity=peak_equity,
        positions=sorted(positions, key=lambda p: (p.strategy_id, p.symbol)),
        booked_trade_ids=dict(booked_trade_ids or {}),
    )
    data = _ENCODER.encode(Checkpoint(body=body, sha256=_digest(body)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _remove_stale_temps(path, keep=tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a power cut
    finally:
        os.close(dir_fd)


def _remove_stale_temps(path: Path, keep: Path) -> None:
    """Temp files of writers killed before their rename (`.positions.json.<pid>.tmp`) are garbage."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        if stale != keep:
            with contextlib.suppress(OSError):
                stale.unlink()


def load_checkpoint(path: Path) -> CheckpointBody | None:
    """None when there is no checkpoint (first start); raises CheckpointCorrupt when it cannot be trusted."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointCorrupt(path, f"cannot read it: {exc.strerror}") from exc
    try:
        checkpoint = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise CheckpointCorrupt(path, f"not a valid checkpoint: {exc}") from exc
    actual = _digest(checkpoint.body)
    if actual != checkpoint.sha256:
        raise CheckpointCorrupt(path, f"checksum mismatch: stored {checkpoint.sha256[:12]}…, content {actual[:12]}…")
    if checkpoint.body.version != CHECKPOINT_VERSION:
        raise CheckpointCorrupt(path, f"version {checkpoint.body.version}, this engine reads {CHECKPOINT_VERSION}")
    return checkpoint.body
