"""`trading flatten`: close positions through the running engine and print what the broker confirmed.

Exit 0: every position in scope confirmed flat; 1: the flatten failed (something still open at the deadline:
the engine alerts and goes HALT); 3: the engine refused (a flatten of that scope is running, bad scope/id);
4: the engine did not answer, or its report did not arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import typer

from hftops.cli.control_cmds import CONFIG_OPTION, OPERATOR_OPTION, _load, _operator, _print_json
from hftops.config.paths import DataPaths
from hftops.control.audit import AuditEvent, AuditLog
from hftops.control.engine_link import EngineCommandError
from hftops.control.flatten_client import FlattenReportMissing, await_report, request_flatten
from hftops.model.ops_events import FlattenReport

EXIT_FAILED, EXIT_REFUSED, EXIT_UNANSWERED = 1, 3, 4


def report_lines(report: FlattenReport) -> list[str]:
    took = (report.time_ns - report.started_ns) / 1e9
    scope = report.scope + (f" {report.scope_id}" if report.scope_id else "")
    lines = [
        f"flatten {report.id} ({scope}, trigger {report.trigger}): {'OK' if report.ok else 'FAILED'} "
        f"after {took:.3f} s",
        f"  {report.detail}",
        f"  {'symbol':<12} {'strategy':<10} {'start':>12} {'submitted':>12} {'filled':>12} {'remaining':>12}  result",
    ]
    for s in report.symbols:
        lines.append(
            f"  {s.symbol:<12} {s.strategy_id or '-':<10} {s.start_qty:>12} {s.submitted:>12} "
            f"{s.filled:>12} {s.remaining:>12}  {'FAILED' if s.failed else 'flat'}"
            + (f"  {s.detail}" if s.detail else "")
        )
    return lines


def flatten(
    scope: str = typer.Option("all", "--scope", help="all | strategy | track"),
    scope_id: str | None = typer.Option(None, "--id", help="the strategy id or track name (scope strategy/track)"),
    deadline: float | None = typer.Option(
        None, "--deadline", min=0.1, max=3600, help="seconds until anything still open is a failure (default 120)"
    ),
    operator: str | None = OPERATOR_OPTION,
    reason: str = typer.Option("", "--reason", help="why (kept in the audit log)"),
    no_wait: bool = typer.Option(False, "--no-wait", help="return once the engine accepted; the report follows"),
    as_json: bool = typer.Option(False, "--json", help="the report as JSON"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Cancel resting orders in scope, close positions with reduce-only market orders until the broker
    confirms them flat; print submitted / filled / remaining per symbol."""
    config = _load(config_path)
    who = _operator(operator)
    audit = AuditLog(DataPaths(config.data_dir).audit)
    args: dict[str, Any] = {"scope": scope, "id": scope_id or "", "deadline_s": deadline, "reason": reason}
    try:
        outcome = request_flatten(
            config.redis_url,
            scope=scope,
            scope_id=scope_id or "",
            deadline_s=deadline,
            trigger="manual",
            operator=who,
            reason=reason,
            wait=False,
        )
    except EngineCommandError as exc:
        if exc.refused:
            audit.append(AuditEvent.FLATTEN, actor=who, args=args, result={"ok": False, "refused": str(exc)})
        typer.echo(f"flatten {'refused' if exc.refused else 'not answered'}: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED if exc.refused else EXIT_UNANSWERED) from None
    # audited once accepted, before the wait: the entry exists even if this command is interrupted
    audit.append(AuditEvent.FLATTEN, actor=who, args=args, result={"ok": True, "job": outcome.job_id})
    if no_wait:
        if as_json:
            _print_json(outcome.accepted)
        else:
            typer.echo(f"flatten {outcome.job_id} accepted ({scope}); its report follows on ops:events:flatten")
        return
    try:
        report = await_report(config.redis_url, outcome)
    except FlattenReportMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_UNANSWERED) from None
    if as_json:
        _print_json(msgspec.to_builtins(report))
    else:
        for line in report_lines(report):
            typer.echo(line)
    raise typer.Exit(0 if report.ok else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("flatten")(flatten)
