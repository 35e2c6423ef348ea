"""Reading evidence records back (table `autonomy_evidence`, written by the recorder) for `trading evidence`.

Reads go through `store.reader.query` (the recorder's read-only endpoint, or the store directly when no
recorder runs). Duplicates that a merge has not folded yet are hidden with `LIMIT 1 BY id`.
"""

from __future__ import annotations

import re
from typing import Any

from hftops.config.schema import Config
from hftops.model.tables import AUTONOMY_EVIDENCE
from hftops.store.reader import QueryError, StoreError, query

_ID = re.compile(r"^[0-9a-f]{4,32}$")
SUMMARY = "id, toUnixTimestamp64Nano(time) AS time_ns, scope, strategy_id, from_mode, to_mode, trigger, reasons"
DETAIL = SUMMARY + ", trigger_values, thresholds, health, positions, stream_lag, process, log_tail"


class EvidenceUnavailable(Exception):
    """The store could not be read; the message says why and what to do."""


def _rows(config: Config, sql: str) -> list[dict[str, Any]]:
    try:
        result = query(config, sql)
    except (QueryError, StoreError) as exc:
        raise EvidenceUnavailable(
            f"cannot read {AUTONOMY_EVIDENCE}: {exc} (is the recorder running? `trading status`)"
        ) from exc
    columns = result["columns"]
    return [dict(zip(columns, row, strict=True)) for row in result["rows"]]


def list_evidence(config: Config, limit: int = 20) -> list[dict[str, Any]]:
    sql = (
        f"SELECT {SUMMARY} FROM {config.clickhouse.database}.{AUTONOMY_EVIDENCE} "
        f"ORDER BY time DESC LIMIT 1 BY id LIMIT {int(limit)}"
    )
    return _rows(config, sql)


def show_evidence(config: Config, evidence_id: str) -> dict[str, Any]:
    """The record whose id is (or starts with) `evidence_id`; LookupError when none or several match."""
    wanted = evidence_id.strip().lower()
    if not _ID.fullmatch(wanted):
        raise LookupError(
            f"evidence id {evidence_id!r}: use the hex id (or a prefix of 4+ characters) that "
            "`trading evidence list` shows"
        )
    sql = (
        f"SELECT {DETAIL} FROM {config.clickhouse.database}.{AUTONOMY_EVIDENCE} "
        f"WHERE startsWith(id, '{wanted}') ORDER BY time DESC LIMIT 1 BY id LIMIT 2"
    )
    rows = _rows(config, sql)
    if not rows:
        raise LookupError(f"no evidence record {evidence_id!r}; `trading evidence list` shows the latest")
    if len(rows) > 1:
        raise LookupError(f"evidence id prefix {evidence_id!r} matches several records; give more characters")
    return rows[0]
