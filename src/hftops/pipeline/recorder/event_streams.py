"""The registry of event streams the recorder stores: one entry per stream kind -> table and row mapping.

Adding an event kind: its struct in model/, its stream kind in model/streams.py, its table in
model/tables.py and store/event_tables.py, its row mapping in event_rows.py, and one line here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from hftops.model import tables as t
from hftops.model.exec_events import PnlSnapshot, PositionsSnapshot, ReconEvent
from hftops.model.ops_events import AutonomyTransition, EvidenceRecord, FlattenReport, MarginEvent, SessionTransition
from hftops.model.orders import Fill, OrderUpdate
from hftops.model.streams import (
    EXEC_PREFIX,
    OPS_EVENTS_PREFIX,
    ExecKind,
    OpsKind,
    exec_stream,
    ops_stream,
)
from hftops.pipeline.recorder import event_rows as rows
from hftops.pipeline.recorder.event_rows import EventRow


@dataclass(frozen=True)
class EventKind:
    kind: ExecKind | OpsKind
    table: str
    struct: type[msgspec.Struct]
    to_rows: Callable[[Any, str], list[EventRow]]  # (decoded struct, venue) -> rows

    @functools.cached_property
    def decoder(self) -> msgspec.msgpack.Decoder[Any]:
        return msgspec.msgpack.Decoder(self.struct)

    @property
    def label(self) -> str:
        """The dead-letter `kind` of a refused event, e.g. `exec:fills`, `ops:evidence`."""
        return f"{'exec' if isinstance(self.kind, ExecKind) else 'ops'}:{self.kind.value}"


EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind(ExecKind.ORDERS, t.ORDERS, OrderUpdate, rows.order_rows),
    EventKind(ExecKind.FILLS, t.FILLS, Fill, rows.fill_rows),
    EventKind(ExecKind.POSITIONS, t.POSITIONS, PositionsSnapshot, rows.position_rows),
    EventKind(ExecKind.PNL, t.PNL, PnlSnapshot, rows.pnl_rows),
    EventKind(ExecKind.RECON, t.RECON_EVENTS, ReconEvent, rows.recon_rows),
    EventKind(OpsKind.SESSION, t.SESSION_TRANSITIONS, SessionTransition, rows.session_rows),
    EventKind(OpsKind.AUTONOMY, t.AUTONOMY_TRANSITIONS, AutonomyTransition, rows.autonomy_rows),
    EventKind(OpsKind.EVIDENCE, t.AUTONOMY_EVIDENCE, EvidenceRecord, rows.evidence_rows),
    EventKind(OpsKind.FLATTEN, t.FLATTEN_REPORTS, FlattenReport, rows.flatten_rows),
    EventKind(OpsKind.MARGIN, t.MARGIN_EVENTS, MarginEvent, rows.margin_rows),
)
_BY_KIND: dict[ExecKind | OpsKind, EventKind] = {k.kind: k for k in EVENT_KINDS}


def event_streams(venue: str) -> list[str]:
    """Every event stream the recorder of `venue` consumes."""
    return [exec_stream(venue, k.kind) if isinstance(k.kind, ExecKind) else ops_stream(k.kind) for k in EVENT_KINDS]


def is_event_stream(stream: str) -> bool:
    return stream.startswith((f"{EXEC_PREFIX}:", f"{OPS_EVENTS_PREFIX}:"))


@functools.lru_cache(maxsize=256)
def event_kind_of(stream: str) -> tuple[EventKind, str]:
    """`exec:{venue}:{kind}` / `ops:events:{kind}` -> (registry entry, venue); ValueError names a bad key."""
    parts = stream.split(":")
    try:
        if len(parts) == 3 and parts[0] == EXEC_PREFIX:
            return _BY_KIND[ExecKind(parts[2])], parts[1]
        if len(parts) == 3 and f"{parts[0]}:{parts[1]}" == OPS_EVENTS_PREFIX:
            return _BY_KIND[OpsKind(parts[2])], ""
    except (ValueError, KeyError):
        pass
    raise ValueError(f"not an event stream key: {stream!r} (expected exec:<venue>:<kind> or ops:events:<kind>)")
