"""`trading dlq ...`: dead letters (status, show, replay), read from the store through the recorder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from hftops.config.loader import ConfigError, load_config
from hftops.config.schema import Config
from hftops.model.tables import DEAD_LETTER_REPLAYS, DEAD_LETTERS
from hftops.store import reader
from hftops.store.errors import StoreError

app = typer.Typer(no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
JSON_OPTION = typer.Option(False, "--json", help="print JSON")
REASON_OPTION = typer.Option(None, "--reason", help="only dead letters with this reason code")


def _config(config_path: Path | None) -> Config:
    try:
        return load_config(config_path) if config_path else load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc}", err=True)
        raise typer.Exit(2) from None


def _query(config: Config, sql: str) -> dict[str, Any]:
    try:
        return reader.query(config, sql)
    except StoreError as exc:
        typer.echo(f"dlq: {exc}", err=True)
        raise typer.Exit(1) from None


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _console() -> Console:
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


@app.command("status")
def status(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Dead letters stored, by source and reason (and how many were replayed)."""
    config = _config(config_path)
    result = _query(
        config,
        (
            f"SELECT source, reason, count() AS n, countIf(id IN (SELECT id FROM {DEAD_LETTER_REPLAYS})) AS replayed, "
            f"toString(min(time)) AS first, toString(max(time)) AS last FROM {DEAD_LETTERS} FINAL "
            "GROUP BY source, reason ORDER BY n DESC, source, reason"
        ),
    )
    groups = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    total = sum(int(g["n"]) for g in groups)
    if as_json:
        typer.echo(
            json.dumps(
                {"total": total, "replayed": sum(int(g["replayed"]) for g in groups), "groups": groups}, indent=1
            )
        )
        return
    table = Table(title=f"dead letters: {total}")
    for column in ("source", "reason", "count", "replayed", "first", "last"):
        table.add_column(column)
    for g in groups:
        table.add_row(
            str(g["source"]), str(g["reason"]), str(g["n"]), str(g["replayed"]), str(g["first"]), str(g["last"])
        )
    _console().print(table)


@app.command("show")
def show(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=100_000),
    reason: str | None = REASON_OPTION,
    as_json: bool = JSON_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """The newest dead letters with their reason and detail."""
    config = _config(config_path)
    where = f"WHERE reason = {_q(reason)}" if reason else ""
    result = _query(
        config,
        (
            "SELECT id, toString(time) AS time, source, reason, venue, symbol, kind, ref_id, detail, "
            f"length(payload) AS payload_bytes, id IN (SELECT id FROM {DEAD_LETTER_REPLAYS}) AS replayed "
            f"FROM {DEAD_LETTERS} FINAL {where} ORDER BY time DESC, id DESC LIMIT {int(limit)}"
        ),
    )
    letters = [dict(zip(result["columns"], row, strict=True)) for row in result["rows"]]
    if as_json:
        typer.echo(json.dumps(letters, indent=1))
        return
    table = Table(title=f"dead letters (newest {len(letters)})")
    for column in ("id", "time", "source", "reason", "where", "ref_id", "replayed", "detail"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(
            str(d["id"]),
            str(d["time"]),
            str(d["source"]),
            str(d["reason"]),
            ":".join(x for x in (d["venue"], d["kind"], d["symbol"]) if x),
            str(d["ref_id"]),
            "yes" if d["replayed"] else "",
            str(d["detail"]),
        )
    _console().print(table)


@app.command("replay")
def replay(
    reason: str | None = REASON_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="parse and count only; write nothing"),
    operator: str = typer.Option("", "--operator", help="who replays (kept with the replay mark)"),
    as_json: bool = JSON_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Re-parse dead letters; valid rows go back into their market-data stream (the recorder stores them
    once), and those dead letters are marked replayed so a second replay does nothing."""
    from hftops.bus.client import sync_client
    from hftops.pipeline.recorder.dlq_replay import replay as run_replay

    config = _config(config_path)
    url = config.recorder_query_url + "/dlq/replayed"

    def mark(marks: list[tuple[str, int]]) -> int:
        try:
            response = httpx.post(
                url, json={"marks": [{"id": i, "rows": n} for i, n in marks], "operator": operator}, timeout=30.0
            )
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the recorder at {url} did not answer ({exc}); rows were re-injected but not "
                "marked: run the replay again once the recorder runs (re-injection is idempotent)"
            ) from exc
        if response.status_code != 200:
            raise StoreError(
                f"the recorder refused the replay marks (HTTP {response.status_code}): "
                f"{response.text[:300]}; run the replay again later (re-injection is idempotent)"
            )
        return int(response.json().get("marked", 0))

    client = sync_client(config.redis_url)
    try:
        report = run_replay(config, lambda sql: _query(config, sql), mark, client, reason=reason, dry_run=dry_run)
    except StoreError as exc:
        typer.echo(f"dlq replay: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
        return
    verb = "would replay" if dry_run else "replayed"
    typer.echo(
        f"{verb} {report.replayed} dead letter(s): {report.rows} row(s) in {report.entries} entr(y/ies); "
        f"{report.still_invalid} still invalid, {report.covered} covered by a sibling, "
        f"{report.skipped} skipped (of {report.examined} not yet replayed)"
    )
    for problem, count in sorted(report.problems.items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {count:6d}  {problem}")
