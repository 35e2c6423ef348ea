"""The schema: every CREATE statement of the store, in one place, the same for chDB and a ClickHouse server.

Market tables are ReplacingMergeTree ordered by the venue's own ids (never timestamps: many trades share a
millisecond), partitioned by day, with an insert-deduplication window so a retried insert (same token) is
stored once. Raw integer times arrive in EPHEMERAL columns and become DateTime64 in the table, because a
JSON integer given straight to a DateTime64 column is read as seconds.
"""

from __future__ import annotations

from typing import Final

from hftops.model.tables import DEAD_LETTER_REPLAYS, DEAD_LETTERS, MARKET_BBO, MARKET_TRADES
from hftops.store.event_tables import EVENT_INSERT_COLUMNS, event_statements

DEDUP_WINDOW: Final = 1000  # inserts remembered per table for insert_deduplication_token
# Small compression blocks: a merge holds one block buffer per column per part, and with ClickHouse's 1 MB
# default one merge of a few small parts took ~36 MB; at 128 KB it takes ~13 MB (the recorder's memory
# budget through an outage and its replay is 64 MB). The compression ratio barely changes at these sizes.
TABLE_SETTINGS: Final = (
    f"non_replicated_deduplication_window = {DEDUP_WINDOW}, "
    "max_compress_block_size = 131072, min_compress_block_size = 32768"
)

# Column order of one inserted JSONCompactEachRow line. The market ones follow the field order of
# model.market.TradeRow / BboRow with venue and symbol in front and the ingest time behind, so a row's
# msgpack-decoded struct can be spliced into a line without per-field work (see store.rows).
TRADE_INSERT_COLUMNS: Final = (
    "venue",
    "symbol",
    "trade_id",
    "price",
    "qty",
    "buyer_is_maker",
    "trade_time_ms",
    "event_time_ms",
    "receive_time_ns",
    "first_id",
    "last_id",
    "ingest_time_us",
)
BBO_INSERT_COLUMNS: Final = (
    "venue",
    "symbol",
    "update_id",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "event_time_ms",
    "transaction_time_ms",
    "receive_time_ns",
    "ingest_time_us",
)
DEAD_LETTER_INSERT_COLUMNS: Final = (
    "id",
    "source",
    "reason",
    "detail",
    "venue",
    "symbol",
    "kind",
    "ref_id",
    "payload_b64",
    "time_ns",
    "ingest_time_us",
)
DEAD_LETTER_REPLAY_INSERT_COLUMNS: Final = ("id", "replayed_at_us", "rows", "operator")

INSERT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    MARKET_TRADES: TRADE_INSERT_COLUMNS,
    MARKET_BBO: BBO_INSERT_COLUMNS,
    DEAD_LETTERS: DEAD_LETTER_INSERT_COLUMNS,
    DEAD_LETTER_REPLAYS: DEAD_LETTER_REPLAY_INSERT_COLUMNS,
    **EVENT_INSERT_COLUMNS,  # orders, fills, positions, ... (store/event_tables.py)
}

# The column holding the venue id of each market table (the deduplication key with venue and symbol).
ID_COLUMN: Final[dict[str, str]] = {MARKET_TRADES: "trade_id", MARKET_BBO: "update_id"}

_DECIMAL = "Decimal(38, 18)"


def _market_trades(db: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {db}.{MARKET_TRADES}
(
    venue LowCardinality(String),
    symbol LowCardinality(String),
    trade_id UInt64,
    price {_DECIMAL},
    qty {_DECIMAL},
    taker_side Enum8('buy' = 1, 'sell' = 2) DEFAULT if(buyer_is_maker, 'sell', 'buy'),
    first_id UInt64,
    last_id UInt64,
    trade_time DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(trade_time_ms, 'UTC'),
    event_time DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(event_time_ms, 'UTC'),
    receive_time DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(receive_time_ns, 'UTC'),
    ingest_time DateTime64(6, 'UTC') DEFAULT fromUnixTimestamp64Micro(ingest_time_us, 'UTC'),
    buyer_is_maker Bool EPHEMERAL,
    trade_time_ms Int64 EPHEMERAL,
    event_time_ms Int64 EPHEMERAL,
    receive_time_ns Int64 EPHEMERAL,
    ingest_time_us Int64 EPHEMERAL,
    CONSTRAINT price_positive CHECK price > 0,
    CONSTRAINT qty_positive CHECK qty > 0
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(trade_time)
ORDER BY (venue, symbol, trade_id)
SETTINGS {TABLE_SETTINGS}
"""


def _market_bbo(db: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {db}.{MARKET_BBO}
(
    venue LowCardinality(String),
    symbol LowCardinality(String),
    update_id UInt64,
    bid_price {_DECIMAL},
    bid_qty {_DECIMAL},
    ask_price {_DECIMAL},
    ask_qty {_DECIMAL},
    event_time DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(event_time_ms, 'UTC'),
    transaction_time DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(transaction_time_ms, 'UTC'),
    receive_time DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(receive_time_ns, 'UTC'),
    ingest_time DateTime64(6, 'UTC') DEFAULT fromUnixTimestamp64Micro(ingest_time_us, 'UTC'),
    event_time_ms Int64 EPHEMERAL,
    transaction_time_ms Int64 EPHEMERAL,
    receive_time_ns Int64 EPHEMERAL,
    ingest_time_us Int64 EPHEMERAL,
    CONSTRAINT prices_not_negative CHECK bid_price >= 0 AND ask_price >= 0,
    CONSTRAINT qtys_not_negative CHECK bid_qty >= 0 AND ask_qty >= 0
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(event_time)
ORDER BY (venue, symbol, update_id)
SETTINGS {TABLE_SETTINGS}
"""


def _dead_letters(db: str) -> str:
    # id is the ops:dlq stream entry id: unique per dead letter, so a re-delivered entry replaces itself.
    return f"""
CREATE TABLE IF NOT EXISTS {db}.{DEAD_LETTERS}
(
    id String,
    source LowCardinality(String),
    reason LowCardinality(String),
    detail String,
    venue LowCardinality(String),
    symbol LowCardinality(String),
    kind LowCardinality(String),
    ref_id Int64,
    payload String DEFAULT base64Decode(payload_b64),
    time DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(time_ns, 'UTC'),
    ingest_time DateTime64(6, 'UTC') DEFAULT fromUnixTimestamp64Micro(ingest_time_us, 'UTC'),
    payload_b64 String EPHEMERAL,
    time_ns Int64 EPHEMERAL,
    ingest_time_us Int64 EPHEMERAL
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(time)
ORDER BY id
SETTINGS {TABLE_SETTINGS}
"""


def _dead_letter_replays(db: str) -> str:
    # One row per dead letter whose payload `trading dlq replay` re-injected; a second replay skips it.
    return f"""
CREATE TABLE IF NOT EXISTS {db}.{DEAD_LETTER_REPLAYS}
(
    id String,
    replayed_at DateTime64(6, 'UTC') DEFAULT fromUnixTimestamp64Micro(replayed_at_us, 'UTC'),
    rows UInt32,
    operator String,
    replayed_at_us Int64 EPHEMERAL
)
ENGINE = ReplacingMergeTree
ORDER BY id
SETTINGS {TABLE_SETTINGS}
"""


# chDB shares the box with the pipeline. A live feed makes ~13 small parts a second per market table, and with
# the default merge_selector_base (5) merging them took ~0.15 cores at 20,000 rows/s; at 20 the merges take
# wider ranges (less rewriting of the same rows) and cost ~0.05, for ~10-20 more active parts per table.
EMBEDDED_MERGE_SETTINGS: Final = "merge_selector_base = 20"


def embedded_statements(database: str) -> list[str]:
    """Run after schema_statements by the embedded store only (idempotent; existing tables get them too)."""
    tables = (MARKET_TRADES, MARKET_BBO)
    return [f"ALTER TABLE {database}.{table} MODIFY SETTING {EMBEDDED_MERGE_SETTINGS}" for table in tables]


def schema_statements(database: str) -> list[str]:
    """Every statement, in order; each is idempotent (IF NOT EXISTS), so running them at each start is safe."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        _market_trades(database),
        _market_bbo(database),
        _dead_letters(database),
        _dead_letter_replays(database),
        *event_statements(database, TABLE_SETTINGS),
    ]
