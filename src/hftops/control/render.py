"""Terminal rendering of status, stop reports and checklists (rich), for the CLI and the live view."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hftops.control.autonomy_render import autonomy_renderables
from hftops.control.engine_render import engine_renderables
from hftops.control.session_view import session_renderables
from hftops.control.verdicts import ledger_verdict

_STATE_STYLE = {
    "running": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "backoff": "yellow",
    "failed": "red",
    "stopped": "red",
    "emergency_stopped": "bold red",
    "disabled": "dim",
}
_HEALTH_STYLE = {"healthy": "bold green", "degraded": "bold yellow", "stopped": "bold red"}


def _mb(value: Any) -> str:
    return "" if value is None else f"{value / 1048576:.0f} MB"


def _age(value: Any) -> str:
    return "" if value is None else f"{value:.1f}s"


def status_view(status: dict[str, Any]) -> RenderableType:
    sup = status.get("supervisor") or {}
    head = Text.assemble(
        ("hftops ", "bold"),
        (str(status.get("health", "?")), _HEALTH_STYLE.get(str(status.get("health")), "")),
        f"   supervisor pid {sup.get('pid')} ({sup.get('phase')})",
    )
    if sup.get("restarts_blocked"):
        head.append("   automatic restarts blocked (emergency stop): `trading start` resumes", "bold red")
    comps = Table(title="components", title_justify="left", expand=False)
    for col in ("component", "state", "pid", "uptime", "rss", "cpus", "sched", "restarts", "watchdog", "detail"):
        comps.add_column(col, justify="left" if col in ("component", "state", "detail") else "right")
    for name, c in status["components"].items():
        uptime = "" if c.get("uptime_s") is None else f"{c['uptime_s']:.0f}s"
        cpus = ",".join(str(x) for x in c.get("cpu_affinity") or [])
        comps.add_row(
            name,
            Text(c["state"], _STATE_STYLE.get(c["state"], "")),
            str(c.get("pid") or ""),
            uptime,
            _mb(c.get("rss_bytes")),
            cpus,
            str(c.get("scheduling") or ""),
            str(c.get("restarts") if c.get("restarts") is not None else ""),
            str(c.get("watchdog") or ""),
            str(c.get("detail") or "")[:60],
        )
    parts: list[RenderableType] = [head, comps, *session_renderables(status.get("sessions") or {})]
    parts.extend(autonomy_renderables(status.get("autonomy") or {}))
    parts.extend(engine_renderables(status.get("engine") or {}))
    streams = status.get("streams") or {}
    if streams:
        table = Table(title="streams", title_justify="left")
        for col in ("stream", "length", "pending", "lag", "last msg age"):
            table.add_column(col, justify="left" if col == "stream" else "right")
        for key, info in streams.items():
            group: dict[str, Any] = next(iter(info["groups"].values()), {})
            table.add_row(
                key,
                str(info["length"]),
                str(group.get("pending", "")),
                str(group.get("lag", "") if group.get("lag") is not None else "?"),
                _age(info.get("last_age_s")),
            )
        parts.append(table)
    elif not (status.get("redis") or {}).get("reachable", True):
        parts.append(Text(f"redis: {(status.get('redis') or {}).get('error')}", "yellow"))
    tables = status.get("tables") or {}
    if "error" in tables:
        parts.append(Text(f"tables: {tables['error']}", "yellow"))
    elif tables:
        parts.append(
            Text(
                "tables: "
                + ", ".join(
                    f"{t} {i['rows']:,} rows"
                    + (f" ({i['ingest_rows_per_s']:,.0f}/s)" if i.get("ingest_rows_per_s") is not None else "")
                    for t, i in tables.items()
                )
            )
        )
    wal, dlq = status.get("wal") or {}, status.get("dlq") or {}
    parts.append(
        Text(
            f"WAL: {wal.get('segments')} segments, {wal.get('bytes')} bytes ({wal.get('source')});  "
            f"DLQ: stream {dlq.get('stream')}, table {dlq.get('table')}"
        )
    )
    ledger = status.get("ledger") or {}
    if ledger.get("available"):
        verdict = ledger_verdict(ledger)
        parts.append(
            Text(
                f"ledger: {ledger.get('summary') or verdict}",
                "green" if verdict == "balanced" else "red" if verdict == "unbalanced" else "yellow",
            )
        )
    elif ledger:
        parts.append(Text(f"ledger: unavailable ({ledger.get('reason')})", "dim"))
    return Group(*parts)
