"""The store interface both backends implement (embedded chDB, ClickHouse server), and query results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from hftops.store.errors import QueryError

# Settings applied to every read: exact integers as JSON numbers, decimals as strings (never floats),
# and a ceiling so one operator query cannot hold a worker forever.
READ_SETTINGS: dict[str, Any] = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 1,
    "max_execution_time": 60,
}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "types": self.types, "rows": self.rows}


class _Meta(msgspec.Struct):
    name: str
    type: str


class _JsonCompact(msgspec.Struct):
    meta: list[_Meta] = []
    data: list[list[Any]] = []


_RESULT = msgspec.json.Decoder(_JsonCompact)


def parse_json_compact(raw: bytes) -> QueryResult:
    """ClickHouse's JSONCompact output -> QueryResult; empty output (a statement without result) -> empty."""
    if not raw.strip():
        return QueryResult([], [], [])
    try:
        parsed = _RESULT.decode(raw)
    except msgspec.DecodeError as exc:
        raise QueryError(f"the query did not return JSONCompact (remove any FORMAT clause): {exc}") from exc
    return QueryResult([m.name for m in parsed.meta], [m.type for m in parsed.meta], parsed.data)


class Store(Protocol):
    """One database. Calls block (run them in a worker thread); errors are store.errors types."""

    description: str
    database: str

    def open(self) -> None:
        """Connect and create every table (idempotent)."""

    def close(self) -> None: ...

    def insert(self, table: str, columns: tuple[str, ...], body: bytes, token: str) -> None:
        """Insert JSONCompactEachRow lines; the same token inserted twice is stored once."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        """Run one read-only statement (readonly=1); QueryError carries ClickHouse's message."""

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless inserts would be accepted now (fault switch included)."""
