"""Plain-text readings of the data-flow figures and the stop report (no Redis, no store, no rich): what
`trading stop` prints needs only these, so the CLI does not import the clients that produce the figures."""

from __future__ import annotations

from typing import Any


def ledger_verdict(data: dict[str, Any]) -> str:
    """balanced | unbalanced | unknown (a source could not be read; not proof of loss)."""
    if not data.get("available") or data.get("unknown"):
        return "unknown"
    return "balanced" if data.get("balanced") else "unbalanced"


def counts_line(flow: dict[str, Any]) -> str:
    totals = flow.get("totals") or {}
    tables = flow.get("tables") or {}
    table_text = (
        tables["error"] if "error" in tables else ", ".join(f"{name} {info['rows']:,}" for name, info in tables.items())
    )
    wal = flow.get("wal") or {}
    return (
        f"streams {len(flow.get('streams') or {})} ({totals.get('stream_entries', 'n/a')} entries, "
        f"pending {totals.get('pending', 'n/a')}, lag {totals.get('lag', 'n/a')}); "
        f"WAL {wal.get('segments', 'n/a')} segments / {wal.get('bytes', 'n/a')} bytes; "
        f"DLQ stream {flow.get('dlq', {}).get('stream')} table {flow.get('dlq', {}).get('table')}; "
        f"DB rows: {table_text or 'none'}"
    )


def report_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    if report.get("before"):
        lines.append("before: " + counts_line(report["before"]))
    for step in report.get("steps", []):
        if not step.get("was_running"):
            continue
        how = "FORCED (SIGKILL after timeout)" if step["forced"] else f"exit {step.get('exit_code')}"
        lines.append(f"  stopped {step['component']:<10} pid {step['pid']:<8} in {step['duration_s']:.2f}s  {how}")
    drained = report.get("drained")
    if drained is not None:
        lines.append(
            f"drain: {'complete' if drained.get('drained') else 'INCOMPLETE'} "
            f"after {drained.get('waited_s', 0)}s {drained.get('remaining') or drained.get('reason') or ''}"
        )
    if report.get("after"):
        lines.append("after:  " + counts_line(report["after"]))
    ledger = report.get("ledger_after") or {}
    if ledger:
        verdict = ledger_verdict(ledger)
        detail = ledger.get("summary") or ledger.get("reason") or ""
        lines.append(f"ledger: {verdict}" + (f" ({detail})" if detail and detail != f"ledger {verdict}" else ""))
    if report.get("snapshot"):
        lines.append(f"snapshot: {report['snapshot']}")
    code = report.get("exit_code", 0)
    outcomes = {
        0: "clean and balanced" if ledger_verdict(ledger) == "balanced" else "clean",
        3: f"components had to be killed: {report.get('forced')}",
        4: "the ledger does NOT balance",
        5: "the streams were not drained",
    }
    lines.append(f"stop: {outcomes.get(code, code)} (exit {code}, {report.get('duration_s', 0)}s)")
    return lines
