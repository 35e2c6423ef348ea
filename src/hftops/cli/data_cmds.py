"""Commands of the `trading` CLI about configuration and data: check, query, verify."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hftops.config.loader import ConfigError, load_config
from hftops.config.schema import Config

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
READ_STATEMENT = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.IGNORECASE)
LEADING_COMMENTS = re.compile(r"^\s*((--[^\n]*\n)|(/\*.*?\*/))*", re.DOTALL)


def _console() -> Console:
    # Piped output keeps wide tables on one line instead of wrapping at 80 columns.
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _load(config_path: Path | None) -> Config:
    return load_config(config_path) if config_path else load_config()


def _bad_config(exc: ConfigError) -> None:
    _err(f"config INVALID: {exc.source}")
    for problem in exc.problems:
        _err(f"  {problem}")


# -- check ---------------------------------------------------------------------------------------


def check(
    config_path: Path | None = CONFIG_OPTION,
    explain: bool = typer.Option(False, "--explain", help="print every key with its default and meaning"),
) -> None:
    """Validate the configuration: schema, port clashes, writable data dir, the valkey binary."""
    from hftops.config.checks import check_config

    if explain:
        _explain()
        return
    try:
        config = _load(config_path)
    except ConfigError as exc:
        _bad_config(exc)
        raise typer.Exit(1) from exc
    report = check_config(config)
    _check_notify(config, report)
    source = str(config_path or _env_config() or "(defaults)")
    if report.ok:
        typer.echo(f"config OK: {source}")
    else:
        typer.echo(f"config INVALID: {source}")
        for error in report.errors:
            typer.echo(f"  error: {error}")
    for label, value in report.summary:
        typer.echo(f"  {label:<11} {value}")
    for warning in report.warnings:
        typer.echo(f"  warning: {warning}")
    if not report.ok:
        raise typer.Exit(1)


def _check_notify(config: Config, report: Any) -> None:
    """Enabled notification channels need their secrets in the environment (never shown)."""
    from hftops.notify.settings import notify_problems, notify_summary

    errors, warnings = notify_problems(config, os.environ)
    report.errors.extend(errors)
    report.warnings.extend(warnings)
    report.summary.append(("notify", notify_summary(config)))


def _env_config() -> str | None:
    return os.environ.get("HFT_CONFIG")


def _explain() -> None:
    from hftops.config.checks import explain_keys

    for doc in explain_keys():
        env = f"  (env {doc.env})" if doc.env else ""
        typer.echo(f"{doc.path} = {doc.default}  [{doc.type}]{env}")
        if doc.description:
            typer.echo(f"    {doc.description}")


# -- query ---------------------------------------------------------------------------------------


def query(
    sql: str = typer.Argument(..., help='a read-only statement, e.g. "SELECT count() FROM market_trades"'),
    json_out: bool = typer.Option(False, "--json", help="print {columns, types, rows} as JSON"),
    fmt: str = typer.Option("table", "--format", help="table | csv"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Run a read-only SQL statement against the store (through the recorder, or chDB when it is down)."""
    if fmt not in ("table", "csv"):
        _err(f"--format {fmt!r}: use table or csv (or --json)")
        raise typer.Exit(1)
    statement = LEADING_COMMENTS.sub("", sql, count=1)
    if not READ_STATEMENT.match(statement):
        first = (statement.split() or ["(empty)"])[0]
        _err(
            f"query refused: only read statements (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) run here; "
            f"got {first!r}"
        )
        raise typer.Exit(1)
    try:
        config = _load(config_path)
    except ConfigError as exc:
        _bad_config(exc)
        raise typer.Exit(1) from exc
    try:
        from hftops.store.reader import query as store_query

        result = store_query(config, sql)
    except Exception as exc:  # the reader's errors name the recorder, the store and the fix
        _err(f"query failed: {exc}")
        raise typer.Exit(1) from exc
    if json_out:
        print(json.dumps(result, default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result["columns"])
        writer.writerows(result["rows"])
    else:
        _print_rows(result)


def _print_rows(result: dict[str, Any]) -> None:
    table = Table(show_edge=False, header_style="bold")
    types = result.get("types") or [""] * len(result["columns"])
    for name, kind in zip(result["columns"], types, strict=False):
        numeric = any(t in str(kind) for t in ("Int", "Float", "Decimal"))
        table.add_column(str(name), justify="right" if numeric else "left")
    for row in result["rows"]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console = _console()
    console.print(table)
    console.print(f"{len(result['rows'])} row(s)", style="dim")


# -- verify --------------------------------------------------------------------------------------

LEDGER_COLUMNS = (
    "published",
    "stored",
    "duplicates",
    "missing",
    "pending",
    "wal",
    "dlq",
    "extra",
    "in_flight",
)


def verify(
    json_out: bool = typer.Option(False, "--json", help="print the ledger as JSON"),
    wait: float = typer.Option(0.0, "--wait", min=0, help="re-check until balanced or this many seconds"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Prove no tick was lost: published = stored + WAL + pending + dead-lettered, per symbol.

    Published comes from the simulator's ground truth; on a real Binance venue (no ground truth) from
    REST: up to the newest trade id, counting from the first id the platform holds.
    Exit 0 balanced (zero missing, zero duplicates); 1 a difference; 2 a source could not be read.
    """
    from hftops.pipeline.ledger import Ledger, LedgerUnavailable, compute_ledger_until_balanced

    try:
        config = _load(config_path)
    except ConfigError as exc:
        _bad_config(exc)
        raise typer.Exit(2) from exc
    try:
        ledger = compute_ledger_until_balanced(config, wait)
    except LedgerUnavailable as exc:
        if json_out:
            print(json.dumps({**Ledger(symbols={}, unknown=exc.unknown).to_dict(), "error": str(exc)}))
        _err(f"cannot verify: {exc}")
        raise typer.Exit(2) from exc
    if json_out:
        print(json.dumps(ledger.to_dict()))
    else:
        _print_ledger(ledger.to_dict())
        _console().print(
            ledger.summary_line(),
            markup=False,
            highlight=False,
            soft_wrap=True,
            style="green" if ledger.balanced else "bold red",
        )
    raise typer.Exit(ledger.exit_code)


def _print_ledger(data: dict[str, Any]) -> None:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("venue:symbol")
    for column in LEDGER_COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("missing ranges")
    for key, row in data["symbols"].items():
        ranges = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in row["missing_ranges"][:3])
        if len(row["missing_ranges"]) > 3:
            ranges += ", ..."
        style = "" if not row["missing"] and not row["duplicates"] and not row["extra"] else "red"
        table.add_row(key, *(f"{row[c]:,}" for c in LEDGER_COLUMNS), ranges, style=style)
    totals = data["totals"]
    table.add_row("total", *(f"{totals[c]:,}" for c in LEDGER_COLUMNS), "", style="bold")
    console = _console()
    console.print(table)
    for source, why in (data.get("unknown") or {}).items():
        console.print(f"{source}: unknown — {why}", markup=False, style="yellow")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("check")(check)
    app.command("query")(query)
    app.command("verify")(verify)
