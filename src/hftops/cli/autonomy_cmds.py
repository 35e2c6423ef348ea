"""`trading halt`, `trading rearm` and `trading evidence list|show`: the operator's side of the autonomy layer.

Halt and rearm need a named operator and a reason; each accepted (or refused) call writes exactly one
audit entry. They go to the running engine (effective within 2 s) or, with no engine, change the persisted
state that the next boot honours.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from hftops.cli.control_cmds import CONFIG_OPTION, _load, _operator, _print_json
from hftops.config.paths import DataPaths
from hftops.control.audit import AuditEvent, AuditLog

EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 3

evidence_app = typer.Typer(no_args_is_help=True, help="Evidence recorded with every autonomy transition.")

OPERATOR_REQUIRED = typer.Option(..., "--operator", help="who does this (a named human; kept in the audit log)")
REASON_REQUIRED = typer.Option(..., "--reason", help="why (free text, kept with the transition and the audit)")


def _audit(config: Any, event: AuditEvent, operator: str, args: dict[str, Any], result: dict[str, Any]) -> None:
    AuditLog(DataPaths(config.data_dir).audit).append(event, actor=operator, args=args, result=result)


def halt(
    operator: str = OPERATOR_REQUIRED,
    reason: str = REASON_REQUIRED,
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Put the platform in HALT (reason manual_operator): open orders are cancelled, positions flattened,
    and only cancels and flatten orders pass until `trading rearm`."""
    from hftops.control.autonomy_ops import AutonomyRefused, AutonomyUnavailable
    from hftops.control.autonomy_ops import halt as do_halt

    config = _load(config_path)
    who = _operator(operator)
    args = {"reason": reason}
    try:
        result = do_halt(config, who, reason)
    except AutonomyRefused as exc:
        _fail(as_json, str(exc), EXIT_REFUSED)
    except AutonomyUnavailable as exc:
        _fail(as_json, str(exc), EXIT_UNAVAILABLE)
    _audit(config, AuditEvent.HALT, who, args, result)
    if as_json:
        _print_json({"ok": True, **result})
    else:
        typer.echo(
            f"HALT ({'now' if result.get('changed') else 'already'}): platform mode {result.get('mode')}; "
            f"{result.get('engine')}"
        )


def rearm(
    operator: str = OPERATOR_REQUIRED,
    reason: str = REASON_REQUIRED,
    strategy: str | None = typer.Option(None, "--strategy", help="lift this strategy's quarantine only"),
    force: bool = typer.Option(False, "--force", help="rearm although the triggering condition is still present"),
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Clear the latched degradations (HALT, reduce-only, quarantines) and return to NORMAL. Refused while a
    triggering condition is still present unless --force (audited as forced)."""
    from hftops.control.autonomy_ops import AutonomyRefused, AutonomyUnavailable
    from hftops.control.autonomy_ops import rearm as do_rearm

    config = _load(config_path)
    who = _operator(operator)
    args: dict[str, Any] = {"reason": reason, "strategy": strategy, "force": force}
    try:
        result = do_rearm(config, who, reason, strategy=strategy, force=force)
    except AutonomyRefused as exc:
        _audit(config, AuditEvent.REARM_REFUSED, who, args, {"refused": str(exc)})
        _fail(as_json, str(exc), EXIT_REFUSED)
    except AutonomyUnavailable as exc:
        _fail(as_json, str(exc), EXIT_UNAVAILABLE)
    forced = bool(result.get("forced_over"))
    _audit(config, AuditEvent.REARM_FORCED if forced else AuditEvent.REARM, who, args, result)
    if as_json:
        _print_json({"ok": True, **result})
        return
    over = f" (FORCED over {', '.join(result['forced_over'])})" if forced else ""
    typer.echo(
        f"rearmed{over}: cleared {', '.join(result.get('cleared') or []) or 'nothing'}; mode now "
        f"{result.get('mode')}; {result.get('engine')}"
    )


def _fail(as_json: bool, message: str, code: int) -> None:
    if as_json:
        _print_json({"ok": False, "error": message})
    else:
        typer.echo(message, err=True)
    raise typer.Exit(code)


# -- evidence ---------------------------------------------------------------------------------------


@evidence_app.command("list")
def evidence_list(
    limit: int = typer.Option(20, "-n", "--limit", min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """The latest evidence records (newest first): id, time, scope, modes, trigger."""
    from hftops.control.evidence_query import EvidenceUnavailable, list_evidence

    config = _load(config_path)
    try:
        rows = list_evidence(config, limit)
    except EvidenceUnavailable as exc:
        _fail(as_json, str(exc), EXIT_UNAVAILABLE)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no evidence recorded yet (every autonomy transition writes one)")
    for row in rows:
        scope = row.get("scope", "") + (f" {row['strategy_id']}" if row.get("strategy_id") else "")
        typer.echo(
            f"{row.get('id', '?'):<32} {_when(row.get('time_ns')):<32} {scope:<18} "
            f"{row.get('from_mode', '?')} -> {row.get('to_mode', '?'):<22} {row.get('trigger', '')}"
        )


@evidence_app.command("show")
def evidence_show(
    evidence_id: str = typer.Argument(..., help="an id from `trading evidence list` (a unique prefix is enough)"),
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """One evidence record in full: trigger values, thresholds, health, positions, stream lag, process, log."""
    from hftops.control.evidence_query import EvidenceUnavailable, show_evidence

    config = _load(config_path)
    try:
        record = show_evidence(config, evidence_id)
    except EvidenceUnavailable as exc:
        _fail(as_json, str(exc), EXIT_UNAVAILABLE)
    except LookupError as exc:
        _fail(as_json, str(exc), EXIT_REFUSED)
    if as_json:
        _print_json(record)
        return
    for key, value in record.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for k, v in value.items():
                typer.echo(f"  {k}: {v}")
        elif isinstance(value, list) and value and not isinstance(value[0], str):
            typer.echo(f"{key}:")
            for item in value:
                typer.echo(f"  {json.dumps(item, default=str)}")
        elif isinstance(value, list) and key == "log_tail":
            typer.echo(f"{key}:")
            for line in value:
                typer.echo(f"  | {line}")
        else:
            typer.echo(f"{key}: {_when(value) if key == 'time_ns' else value}")


def _when(ns: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ns) / 1e9, UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ns)


def register(app: typer.Typer) -> None:
    app.command("halt")(halt)
    app.command("rearm")(rearm)
    app.add_typer(evidence_app, name="evidence")
