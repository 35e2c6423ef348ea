"""ClickHouse table names: the one place they are spelled."""

from __future__ import annotations

from typing import Final

MARKET_TRADES: Final = "market_trades"
MARKET_BBO: Final = "market_bbo"
DEAD_LETTERS: Final = "dead_letters"

MARKET_TABLES: Final = (MARKET_TRADES, MARKET_BBO)
ALL_TABLES: Final = (MARKET_TRADES, MARKET_BBO, DEAD_LETTERS)
DEAD_LETTER_REPLAYS: Final = "dead_letter_replays"  # dead letters re-injected by `trading dlq replay`
