"""Redis stream keys, consumer groups and bus record field names: the one place they are spelled."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class MdKind(StrEnum):
    TRADE = "trade"
    BBO = "bbo"


MD_PREFIX: Final = "md"
DLQ_STREAM: Final = "ops:dlq"
COLLECTOR_CURSOR_PREFIX: Final = "md:cursor"  # hash md:cursor:{venue}: SYMBOL -> last contiguous trade id
RECORDER_GROUP_DEFAULT: Final = "recorder"

# Fields of one market-data stream entry: one entry carries a flushed batch of one symbol's messages.
F_VERSION: Final = "v"  # format version, "1"
F_COUNT: Final = "n"  # rows in the batch
F_LO: Final = "lo"  # smallest venue id in the batch
F_HI: Final = "hi"  # largest venue id in the batch
F_DATA: Final = "d"  # msgpack array of array-like rows (TradeRow / BboRow)
F_FLUSH_NS: Final = "t"  # collector wall time (ns) when the batch was written
ENTRY_VERSION: Final = b"1"


def md_stream(venue: str, kind: MdKind | str, symbol: str) -> str:
    return f"{MD_PREFIX}:{venue}:{MdKind(kind).value}:{symbol}"


def parse_md_stream(key: str | bytes) -> tuple[str, MdKind, str]:
    """`md:{venue}:{kind}:{SYMBOL}` -> (venue, kind, symbol); ValueError names a malformed key."""
    text = key.decode() if isinstance(key, bytes) else key
    parts = text.split(":")
    if len(parts) != 4 or parts[0] != MD_PREFIX:
        raise ValueError(f"not a market-data stream key: {text!r} (expected md:<venue>:<kind>:<SYMBOL>)")
    return parts[1], MdKind(parts[2]), parts[3]


def md_streams(venue: str, symbols: tuple[str, ...] | list[str], with_bbo: bool = True) -> list[str]:
    kinds = (MdKind.TRADE, MdKind.BBO) if with_bbo else (MdKind.TRADE,)
    return [md_stream(venue, kind, symbol) for symbol in symbols for kind in kinds]


def collector_cursor_key(venue: str) -> str:
    return f"{COLLECTOR_CURSOR_PREFIX}:{venue}"


# --- execution events (engine -> recorder): `exec:{venue}:{kind}`, field "d" = msgpack struct, "kind" plain ---
EXEC_PREFIX: Final = "exec"
STATS_HASH: Final = "ops:stats"  # hash: component -> JSON stats snapshot
F_KIND: Final = "kind"  # plain event kind beside "d", for quick filtering


class ExecKind(StrEnum):
    ORDERS = "orders"  # every OrderUpdate
    FILLS = "fills"  # every Fill
    POSITIONS = "positions"  # PositionsSnapshot, each second and on change
    PNL = "pnl"  # PnlSnapshot, each second and on change
    RECON = "recon"  # ReconEvent: drift found / resolved, startup decisions


def exec_stream(venue: str, kind: ExecKind | str) -> str:
    return f"{EXEC_PREFIX}:{venue}:{ExecKind(kind).value}"


def exec_streams(venue: str) -> list[str]:
    return [exec_stream(venue, kind) for kind in ExecKind]


# --- engine commands (supervisor/API/CLI -> running engine) and their replies ---
ENGINE_CMD_STREAM: Final = "ops:engine:cmd"  # fields: id, cmd, args (JSON), operator, reason, ts_ns
ENGINE_REPLY_STREAM: Final = "ops:engine:reply"  # fields: id, ok ("1"/"0"), result (JSON)
ENGINE_CMD_MAXLEN: Final = 10_000  # control traffic only; approximate trim keeps it bounded


# --- operational events of the safety layer (engine -> recorder): `ops:events:{kind}`, field "d" = msgpack ---
OPS_EVENTS_PREFIX: Final = "ops:events"


class OpsKind(StrEnum):
    SESSION = "session"  # model.ops_events.SessionTransition
    AUTONOMY = "autonomy"  # model.ops_events.AutonomyTransition
    EVIDENCE = "evidence"  # model.ops_events.EvidenceRecord
    FLATTEN = "flatten"  # model.ops_events.FlattenReport
    MARGIN = "margin"  # model.ops_events.MarginEvent


def ops_stream(kind: OpsKind | str) -> str:
    return f"{OPS_EVENTS_PREFIX}:{OpsKind(kind).value}"


def ops_streams() -> list[str]:
    return [ops_stream(kind) for kind in OpsKind]
