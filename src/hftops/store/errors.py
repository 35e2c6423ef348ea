"""What can go wrong talking to the store, sorted by what the caller should do about it."""

from __future__ import annotations

import re

# ClickHouse error codes that mean "this data is refused", not "the database is unwell": the caller
# isolates the bad rows (dead-letter them) instead of waiting for the database to come back.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND (decimal too big)
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        407,  # DECIMAL_OVERFLOW
        469,  # VIOLATED_CONSTRAINT
    }
)

_CODE = re.compile(r"Code:\s*(\d+)")


class StoreError(Exception):
    """Base of every store failure."""


class DatabaseUnavailable(StoreError):
    """The database cannot take writes right now (down, fault switch on, disk full): write the WAL and retry."""


class InsertRejected(StoreError):
    """The database refused the rows themselves (parse error, constraint): isolate and dead-letter them."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class QueryError(StoreError):
    """A query was refused (bad SQL, not read-only); the message is ClickHouse's own."""


def error_code(message: str) -> int | None:
    match = _CODE.search(message)
    return int(match.group(1)) if match else None


def short_message(message: str, limit: int = 600) -> str:
    """ClickHouse messages carry a stack of context lines; the first ones say what is wrong."""
    text = " ".join(line.strip() for line in message.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."
