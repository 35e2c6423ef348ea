"""Reason codes are a frozen set in one module: every code the source uses must be in it."""

from __future__ import annotations

import ast
from pathlib import Path

from hftops.ops.reasons import AUTO_RECOVERABLE, HALTING, REASON_CODES, STRATEGY_SCOPED, Reason

SRC = Path(__file__).resolve().parents[3] / "src" / "hftops"
ISSUE_CODES = {
    "broker_unavailable",
    "clickhouse_unhealthy",
    "feed_gap_majority",
    "feed_reconnect_flapping",
    "memory_pressure",
    "persistence_failure",
    "pnl_peak_drawdown",
    "queue_depth_exceeded",
    "reconciliation_drift",
    "rss_unhealthy",
    "wal_backlog_unhealthy",
    "margin_critical",
    "recorder_data_loss",
    "redis_unhealthy",
    "strategy_exception",
    "strategy_reject_spike",
    "manual_operator",
    "flatten_failed",
}
REASON_TAKERS = {"set_condition", "trip"}  # AutonomyController inputs: the first argument is a reason
NON_REASON_TRIGGERS = {"recovered", "rearm", "restored"}
TRANSITION_STRUCTS = {"AutonomyTransition", "EvidenceRecord", "Transition"}  # their `trigger` is a reason code


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _uses() -> tuple[list[tuple[str, int, str]], list[tuple[str, int, str]]]:
    """(Reason.X attribute uses, string literals given where a reason goes) across the source tree."""
    attrs: list[tuple[str, int, str]] = []
    literals: list[tuple[str, int, str]] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Reason":
                attrs.append((where, node.lineno, node.attr))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REASON_TAKERS:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    literals.append((where, node.lineno, first.value))
            if isinstance(node, ast.Call) and _name(node.func) in TRANSITION_STRUCTS:
                for kw in node.keywords:
                    value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                    if kw.arg == "trigger" and isinstance(value, str) and value not in NON_REASON_TRIGGERS:
                        literals.append((where, node.lineno, value))
    return attrs, literals


def test_the_set_holds_every_code_of_the_issue() -> None:
    assert ISSUE_CODES <= REASON_CODES
    assert set(Reason) >= AUTO_RECOVERABLE | HALTING | STRATEGY_SCOPED


def test_every_reason_used_in_the_source_is_in_the_frozen_set() -> None:
    attrs, literals = _uses()
    assert len(attrs) >= 20, "the scan found too few Reason uses: is it still looking at the right tree?"
    unknown_attrs = [
        (f, line, a)
        for f, line, a in attrs
        if a not in Reason.__members__ and not a.startswith("_") and a not in {"value", "name"}
    ]
    assert not unknown_attrs, f"Reason members that do not exist: {unknown_attrs}"
    unknown = [(f, line, v) for f, line, v in literals if v not in REASON_CODES]
    assert not unknown, f"reason codes outside ops/reasons.py: {unknown}"


def test_the_scan_catches_a_code_outside_the_set(tmp_path: Path) -> None:
    bad = "autonomy.set_condition('disk_on_fire', True)\nx = Reason.DISK_ON_FIRE\n"
    tree = ast.parse(bad)
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in REASON_TAKERS
    ]
    assert calls and calls[0].args[0].value not in REASON_CODES  # type: ignore[attr-defined]
    assert "DISK_ON_FIRE" not in Reason.__members__
