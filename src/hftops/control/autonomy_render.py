"""`trading status` text for the autonomy section: the mode, why and since when, each strategy's state,
and what a rearm would clear."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

_MODE_STYLE = {
    "NORMAL": "green",
    "STRATEGY_QUARANTINED": "yellow",
    "PLATFORM_REDUCE_ONLY": "bold yellow",
    "HALT": "bold red",
}


def autonomy_renderables(view: dict[str, Any]) -> list[RenderableType]:
    if not view:
        return []
    mode = str(view.get("mode") or "?")
    head = Text.assemble(("autonomy ", "bold"), (mode, _MODE_STYLE.get(mode, "")))
    if view.get("since") and mode != "NORMAL":
        head.append(f" since {view['since']}")
    if view.get("reasons"):
        head.append(f"   reasons: {', '.join(view['reasons'])}")
    if view.get("manual_rearm_required"):
        head.append("   `trading rearm --operator NAME --reason TEXT` required", "bold")
    if str(view.get("source", "")).startswith("persisted"):
        head.append("   (persisted state: the engine is not running)", "dim")
    parts: list[RenderableType] = [head]
    details = view.get("details") or []
    if details:
        table = Table(title="autonomy reasons", title_justify="left")
        for col in ("reason", "scope", "since", "latched", "present", "detail"):
            table.add_column(col)
        for d in details:
            scope = d.get("scope", "") + (f" {d['strategy_id']}" if d.get("strategy_id") else "")
            latched = (
                "yes"
                if d.get("latched")
                else f"no (recovers in {d.get('recovers_in_s')} s)"
                if d.get("recovers_in_s") is not None
                else "no"
            )
            who = f"{d['operator']}: " if d.get("operator") else ""
            table.add_row(
                d.get("reason", "?"),
                scope,
                str(d.get("since") or ""),
                latched,
                "yes" if d.get("present") else "no",
                (who + str(d.get("detail") or ""))[:80],
            )
        parts.append(table)
    strategies = view.get("strategies") or {}
    if strategies:
        line = Text("strategies: ")
        for i, (sid, info) in enumerate(sorted(strategies.items())):
            state = str(info.get("state", "?"))
            line.append(("" if i == 0 else ", ") + f"{sid} ")
            line.append(state, "green" if state == "normal" else "bold yellow")
            if info.get("reasons"):
                line.append(f" ({', '.join(info['reasons'])})")
        parts.append(line)
    return parts
