"""ClickHouse table names: the one place they are spelled."""

from __future__ import annotations

from typing import Final

MARKET_TRADES: Final = "market_trades"
MARKET_BBO: Final = "market_bbo"
DEAD_LETTERS: Final = "dead_letters"

MARKET_TABLES: Final = (MARKET_TRADES, MARKET_BBO)
ALL_TABLES: Final = (MARKET_TRADES, MARKET_BBO, DEAD_LETTERS)
DEAD_LETTER_REPLAYS: Final = "dead_letter_replays"  # dead letters re-injected by `trading dlq replay`

# Engine execution events (streams `exec:{venue}:*`) and safety-layer events (streams `ops:events:*`).
ORDERS: Final = "orders"
FILLS: Final = "fills"
POSITIONS: Final = "positions"
PNL: Final = "pnl"
RECON_EVENTS: Final = "recon_events"
SESSION_TRANSITIONS: Final = "session_transitions"
AUTONOMY_TRANSITIONS: Final = "autonomy_transitions"
AUTONOMY_EVIDENCE: Final = "autonomy_evidence"
FLATTEN_REPORTS: Final = "flatten_reports"
MARGIN_EVENTS: Final = "margin_events"

EXEC_TABLES: Final = (ORDERS, FILLS, POSITIONS, PNL, RECON_EVENTS)
OPS_TABLES: Final = (SESSION_TRANSITIONS, AUTONOMY_TRANSITIONS, AUTONOMY_EVIDENCE, FLATTEN_REPORTS, MARGIN_EVENTS)
EVENT_TABLES: Final = EXEC_TABLES + OPS_TABLES
