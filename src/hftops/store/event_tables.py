"""Tables of the engine's execution events and the safety layer's events: columns and CREATE statements.

Every event table starts with the same two columns: `event_key` (the deduplication key, built from the
event's own ids, see pipeline/recorder/event_rows.py) and the event time (raw nanoseconds arrive in an
EPHEMERAL `time_ns` and become `time`). They are ReplacingMergeTree ordered by `event_key`, so a copy
that slips past the recorder's own filter is still folded away by a merge, and partitioned by day of the
event time (the same key always carries the same time, so both copies land in one partition).
"""

from __future__ import annotations

from typing import Final

from hftops.model import tables as t

DEC: Final = "Decimal(38, 18)"
DEC_NULL: Final = f"Nullable({DEC})"
LC: Final = "LowCardinality(String)"
STR_MAP: Final = "Map(String, String)"

KEY_COLUMN: Final = "event_key"
TIME_COLUMN: Final = "time_ns"

# table -> (column, ClickHouse type) after event_key and time_ns, in insert order.
EVENT_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    t.ORDERS: (
        ("venue", LC),
        ("strategy_id", LC),
        ("symbol", LC),
        ("client_order_id", "String"),
        ("order_id", "Int64"),
        ("status", LC),
        ("side", LC),
        ("order_type", LC),
        ("tif", LC),
        ("qty", DEC),
        ("price", DEC_NULL),
        ("filled_qty", DEC),
        ("avg_fill_price", DEC_NULL),
        ("reduce_only", "Bool"),
        ("reason", "String"),
    ),
    t.FILLS: (
        ("venue", LC),
        ("strategy_id", LC),
        ("symbol", LC),
        ("trade_id", "Int64"),
        ("side", LC),
        ("qty", DEC),
        ("price", DEC),
        ("fee", DEC),
        ("client_order_id", "String"),
        ("order_id", "Int64"),
        ("is_maker", "Bool"),
    ),
    t.POSITIONS: (
        ("venue", LC),
        ("strategy_id", LC),
        ("symbol", LC),
        ("qty", DEC),
        ("avg_price", DEC),
        ("realized_pnl", DEC),
        ("fees", DEC),
        ("unrealized_pnl", DEC),
        ("mark_price", DEC_NULL),
        ("cost_known", "Bool"),
        ("net_qty", DEC),
    ),
    t.PNL: (
        ("venue", LC),
        ("realized_pnl", DEC),
        ("unrealized_pnl", DEC),
        ("fees", DEC),
        ("equity", DEC),
        ("peak_equity", DEC),
    ),
    t.RECON_EVENTS: (
        ("venue", LC),
        ("kind", LC),
        ("symbol", LC),
        ("local_qty", DEC),
        ("broker_qty", DEC),
        ("diff", DEC),
        ("checks", "Int64"),
        ("since_ns", "Int64"),
        ("detail", "String"),
    ),
    t.SESSION_TRANSITIONS: (
        ("track", LC),
        ("from_phase", LC),
        ("to_phase", LC),
        ("trading_day", "String"),
        ("cause", LC),
        ("next_phase", LC),
        ("next_at_ns", "Int64"),
    ),
    t.AUTONOMY_TRANSITIONS: (
        ("id", "String"),
        ("scope", LC),
        ("strategy_id", LC),
        ("from_mode", LC),
        ("to_mode", LC),
        ("reasons", "Array(String)"),
        ("trigger", LC),
        ("operator", "String"),
        ("detail", "String"),
    ),
    t.AUTONOMY_EVIDENCE: (
        ("id", "String"),
        ("scope", LC),
        ("strategy_id", LC),
        ("from_mode", LC),
        ("to_mode", LC),
        ("trigger", LC),
        ("reasons", "Array(String)"),
        ("trigger_values", STR_MAP),
        ("thresholds", STR_MAP),
        ("health", STR_MAP),
        ("positions", f"Array({STR_MAP})"),
        ("stream_lag", STR_MAP),
        ("process", STR_MAP),
        ("log_tail", "Array(String)"),
    ),
    t.FLATTEN_REPORTS: (
        ("id", "String"),
        ("started_ns", "Int64"),
        ("scope", LC),
        ("scope_id", "String"),
        ("trigger", LC),
        ("operator", "String"),
        ("deadline_s", "Float64"),
        ("ok", "Bool"),
        ("symbols", "String"),  # JSON list of model.ops_events.FlattenSymbol (JSONExtract reads it)
        ("detail", "String"),
    ),
    t.MARGIN_EVENTS: (
        ("level", LC),
        ("ratio", "String"),
        ("used", "String"),
        ("available", "String"),
        ("detail", "String"),
    ),
}

EVENT_INSERT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    table: (KEY_COLUMN, TIME_COLUMN, *(name for name, _ in columns)) for table, columns in EVENT_COLUMNS.items()
}


def event_table_statement(database: str, table: str, settings: str) -> str:
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in EVENT_COLUMNS[table])
    return f"""
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {KEY_COLUMN} String,
    time DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano({TIME_COLUMN}, 'UTC'),
    {columns},
    ingest_time DateTime64(6, 'UTC') DEFAULT now64(6, 'UTC'),
    {TIME_COLUMN} Int64 EPHEMERAL
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(time)
ORDER BY {KEY_COLUMN}
SETTINGS {settings}
"""


def event_statements(database: str, settings: str) -> list[str]:
    return [event_table_statement(database, table, settings) for table in t.EVENT_TABLES]
