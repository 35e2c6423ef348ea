"""The engine section of `trading status` on a terminal: strategies, open orders, positions, equity."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text


def engine_renderables(section: dict[str, Any]) -> list[RenderableType]:
    if not section:
        return []
    if not section.get("running") or section.get("state") == "not answering":
        detail = section.get("detail") or ""
        return [Text(f"engine: {section.get('state')}" + (f" ({detail})" if detail else ""), "dim")]
    head = Text.assemble(
        ("engine ", "bold"),
        f"{section.get('state')}   open orders {section.get('open_orders')}   equity {section.get('equity')}"
        f" (peak {section.get('peak_equity')})   realized {section.get('realized_pnl')}"
        f"   unrealized {section.get('unrealized_pnl')}   fees {section.get('fees')}",
    )
    if section.get("refusing_reason"):
        head.append(f"\n  refusing to trade: {section['refusing_reason']}", "bold red")
    strategies = Table(title="strategies", title_justify="left")
    for col in ("strategy", "state", "symbols", "open orders"):
        strategies.add_column(col)
    for s in section.get("strategies") or []:
        state = str(s.get("state"))
        strategies.add_row(
            str(s.get("id")),
            Text(state, "green" if state == "running" else "yellow"),
            ",".join(s.get("symbols") or []),
            str(s.get("open_orders", "")),
        )
    parts: list[RenderableType] = [head, strategies]
    held = section.get("positions") or []
    if held:
        table = Table(title="positions", title_justify="left")
        for col in ("strategy", "symbol", "qty", "avg price", "unrealized"):
            table.add_column(col, justify="left" if col in ("strategy", "symbol") else "right")
        for p in held:
            table.add_row(
                str(p.get("strategy")),
                str(p.get("symbol")),
                str(p.get("qty")),
                str(p.get("avg_price")),
                str(p.get("unrealized_pnl")),
            )
        parts.append(table)
    return parts
