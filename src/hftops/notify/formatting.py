"""Message texts for the safety layer. Every degradation message states the scope, the reason, the
current exposure (open positions) and what a rearm will do, so an operator reading it on a phone knows
what happened and what the next command changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

_MAX_ROWS = 20


def exposure_rows(positions: Iterable[Any]) -> list[dict[str, str]]:
    """Open positions as rows for the helpers below, from any objects with strategy_id/symbol/qty/avg_price
    (the engine's position book) or mappings with those keys; flat ones are left out."""
    rows = []
    for p in positions:
        get = p.get if isinstance(p, Mapping) else (lambda k, _p=p: getattr(_p, k, None))
        qty = get("qty")
        if qty is None or _num(qty) == 0:
            continue
        row = {"symbol": str(get("symbol")), "qty": str(qty)}
        for source, target in (("strategy_id", "strategy"), ("strategy", "strategy"), ("avg_price", "avg_price")):
            value = get(source)
            if value is not None:
                row[target] = str(value)
        rows.append(row)
    return rows


def _num(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def format_exposure(exposure: list[dict[str, Any]]) -> str:
    """'Exposure: flat' or one line per open position (at most 20, then a count)."""
    rows = [r for r in exposure if _num(r.get("qty", 0)) != 0]
    if not rows:
        return "Exposure: flat (no open positions)"
    noun = "position" if len(rows) == 1 else "positions"
    lines = [f"Exposure: {len(rows)} open {noun}"]
    for row in rows[:_MAX_ROWS]:
        qty = _num(row["qty"])
        line = f"  {row.get('symbol', '?')} {'+' if qty > 0 else ''}{qty.normalize():f}"
        if row.get("strategy"):
            line += f" ({row['strategy']})"
        if row.get("avg_price") not in (None, ""):
            line += f" avg {row['avg_price']}"
        if row.get("unrealized_pnl") not in (None, ""):
            line += f" uPnL {row['unrealized_pnl']}"
        lines.append(line)
    if len(rows) > _MAX_ROWS:
        lines.append(f"  … and {len(rows) - _MAX_ROWS} more")
    return "\n".join(lines)


def _figures(label: str, values: Mapping[str, Any] | None) -> list[str]:
    if not values:
        return []
    return [f"{label}: " + ", ".join(f"{k}={v}" for k, v in values.items())]


def format_degradation(
    scope: str,
    reason: str,
    mode: str,
    exposure: list[dict[str, Any]],
    rearm_effect: str,
    *,
    detail: str = "",
    values: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> str:
    """A degradation: `scope` ('platform', 'strategy mm1', 'track stock'), the reason code, the mode now in
    force, the open positions and what `trading rearm` (or the cooldown) will do."""
    lines = [
        f"DEGRADED: {scope} is now {mode}",
        f"Reason: {reason}" + (f" ({detail})" if detail else ""),
        f"Scope: {scope}",
    ]
    lines += _figures("Values", values) + _figures("Thresholds", thresholds)
    lines.append(format_exposure(exposure))
    lines.append(f"Rearm: {rearm_effect}")
    return "\n".join(lines)


def format_recovery(scope: str, reason: str, mode: str, exposure: list[dict[str, Any]], *, detail: str = "") -> str:
    lines = [
        f"RECOVERED: {scope} is now {mode}",
        f"Cleared: {reason}" + (f" ({detail})" if detail else ""),
        format_exposure(exposure),
    ]
    return "\n".join(lines)


def format_rearm(
    operator: str,
    reason_text: str,
    scope: str,
    mode_before: str,
    mode_after: str,
    exposure: list[dict[str, Any]],
    *,
    forced: bool = False,
) -> str:
    head = f"REARMED{' (forced)' if forced else ''}: {scope} {mode_before} -> {mode_after}"
    lines = [head, f"By: {operator}", f"Why: {reason_text}", format_exposure(exposure)]
    if forced:
        lines.append("Note: --force used while the triggering condition was still present")
    return "\n".join(lines)


def format_halt(operator: str, reason_text: str, exposure: list[dict[str, Any]], *, flatten: bool = True) -> str:
    effect = (
        "open orders are being cancelled and every position flattened"
        if flatten
        else "open orders are being cancelled; positions are kept"
    )
    return format_degradation(
        "platform",
        "manual_operator",
        "HALT",
        exposure,
        "`trading rearm --operator NAME --reason TEXT` returns to NORMAL; new orders resume",
        detail=f"{operator}: {reason_text}; {effect}",
    )


def format_flatten(
    scope: str, scope_id: str, trigger: str, rows: list[dict[str, Any]], *, ok: bool, deadline_s: float
) -> str:
    """A flatten result per symbol (submitted, filled, remaining, failed), as the flattener reports it."""
    target = f"{scope} {scope_id}".strip()
    head = (
        f"FLATTENED: {target} (trigger {trigger})"
        if ok
        else f"FLATTEN FAILED: {target} still open at the {deadline_s:g} s deadline (trigger {trigger})"
    )
    lines = [head]
    for row in rows[:_MAX_ROWS]:
        lines.append(
            f"  {row.get('symbol', '?')}: submitted {row.get('submitted', 0)}, filled {row.get('filled', 0)}, "
            f"remaining {row.get('remaining', 0)}, failed {row.get('failed', 0)}"
        )
    if len(rows) > _MAX_ROWS:
        lines.append(f"  … and {len(rows) - _MAX_ROWS} more symbols")
    if not ok:
        lines.append(
            "Action: platform escalated to HALT; close the remaining positions at the venue, then "
            "`trading rearm --operator NAME --reason TEXT`"
        )
    return "\n".join(lines)


def format_margin(ratio: float, available: str, level: str, action: str) -> str:
    return f"MARGIN {level.upper()}: margin used/available {ratio:.2f}, available {available}\nAction: {action}"


def format_session(track: str, phase_from: str, phase_to: str, next_phase: str = "", next_at: str = "") -> str:
    text = f"SESSION: track {track} {phase_from} -> {phase_to}"
    return text + (f"; next {next_phase} at {next_at}" if next_phase and next_at else "")
