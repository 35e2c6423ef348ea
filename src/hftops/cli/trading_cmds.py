"""Commands of the `trading` CLI about what the engine holds and does: positions, orders, pnl, strategies.

Live figures come from the running engine's `ops:stats` snapshot; positions are also asked of the broker
(positionRisk with the configured keys). Exit 0 ok; 1 positions disagree with the broker or the broker did
not answer; 2 the engine is not running (positions then show the broker's view and the last checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hftops.config.loader import ConfigError, load_config
from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import engine_view as ev
from hftops.logs import configure_logging

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
JSON_OPTION = typer.Option(False, "--json", help="machine-readable output")
EXIT_CONFIG = 78


def _console() -> Console:
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def _load(config_path: Path | None) -> Config:
    try:
        config = load_config(config_path) if config_path else load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc.source}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    # What the broker client logs goes to <data>/log/cli.log: stdout carries only the answer (--json parses).
    configure_logging("cli", DataPaths(config.data_dir).log, config.log.level, config.log.max_bytes, config.log.backups)
    return config


def _finish(report: dict[str, Any], code: int, as_json: bool, render: Any) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=1, default=str))
    else:
        problem = report["engine"].get("problem")
        if problem:
            typer.echo(f"engine: {problem}", err=True)
        render(report)
    raise typer.Exit(code)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*(r if isinstance(r, Text) else Text("" if r is None else str(r)) for r in row))
    return table


# -- positions ---------------------------------------------------------------------------------------


def positions(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Per symbol the engine's net quantity beside the broker's; per strategy and symbol qty, avg price, PnL.

    Exit 0 all match; 1 a mismatch or no broker answer; 2 engine not running (broker + last checkpoint shown).
    """
    config = _load(config_path)
    reading = ev.read_engine(config)
    checkpoint = ev.last_checkpoint(config)
    report, code = ev.positions_report(reading, ev.broker_positions(config), checkpoint)
    _finish(report, code, as_json, _render_positions)


def _match_text(match: bool | None) -> Text:
    if match is None:
        return Text("?", "yellow")
    return Text("yes", "green") if match else Text("NO", "bold red")


def _render_positions(report: dict[str, Any]) -> None:
    console = _console()
    symbols = report["symbols"]
    from_checkpoint = report["source"] == "checkpoint"
    rows = [
        (s, v["checkpoint_qty"] if from_checkpoint else v["engine_qty"], v["broker_qty"], _match_text(v["match"]))
        for s, v in symbols.items()
    ]
    engine_col = "checkpoint qty" if from_checkpoint else "engine qty"
    console.print(_table("net per symbol", ("symbol", engine_col, "broker qty", "match"), rows))
    broker = report["broker"]
    if not broker.get("available"):
        console.print(Text(f"broker: {broker.get('error')}", "yellow"))
    title = "positions (engine)" if report["source"] == "engine" else f"positions ({report['source']})"
    console.print(
        _table(
            title,
            ("strategy", "symbol", "qty", "avg price", "realized", "unrealized", "fees"),
            [
                (
                    p["strategy"],
                    p["symbol"],
                    p["qty"],
                    p["avg_price"],
                    p["realized_pnl"],
                    p.get("unrealized_pnl"),
                    p["fees"],
                )
                for p in report["positions"]
            ],
        )
    )
    checkpoint = report.get("checkpoint") or {}
    if checkpoint.get("available"):
        console.print(Text(f"last checkpoint: {checkpoint['written_at']} ({checkpoint['path']})", "dim"))
    elif checkpoint:
        console.print(Text(f"checkpoint: {checkpoint.get('error')}", "dim"))


# -- orders ------------------------------------------------------------------------------------------


def orders(
    open_only: bool = typer.Option(False, "--open", help="only the orders resting now (from the engine)"),
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="recent orders from the orders table"),
    as_json: bool = JSON_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Open orders of the running engine, and (without --open) the most recent orders from the `orders` table."""
    config = _load(config_path)
    reading = ev.read_engine(config)
    report: dict[str, Any] = {
        "engine": reading.header(),
        "open": list((reading.stats or {}).get("orders") or []) if reading.live else None,
    }
    if not open_only:
        report["recent"] = ev.recent_orders(config, limit)
    _finish(report, ev.EXIT_OK if reading.live else ev.EXIT_NOT_RUNNING, as_json, _render_orders)


def _render_orders(report: dict[str, Any]) -> None:
    console = _console()
    columns = ("client order id", "strategy", "symbol", "side", "type", "qty", "price", "filled", "status")
    keys = ("client_order_id", "strategy", "symbol", "side", "type", "qty", "price", "filled_qty", "status")
    if report["open"] is not None:
        rows = [tuple(o.get(k) for k in keys) for o in report["open"]]
        console.print(_table(f"open orders ({len(rows)})", columns, rows))
    recent = report.get("recent")
    if recent is None:
        return
    if not recent["available"]:
        console.print(Text(f"recent orders: {recent['error']}", "yellow"))
        return
    rows = [(*(o.get(k) for k in keys), o.get("updated")) for o in recent["orders"]]
    console.print(_table("recent orders (orders table)", (*columns, "updated"), rows))


# -- pnl ---------------------------------------------------------------------------------------------


def pnl(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Realized and unrealized PnL, fees, equity and peak equity of the running engine."""
    config = _load(config_path)
    reading = ev.read_engine(config)
    stored = None if reading.live else ev.last_stored_pnl(config)
    report, code = ev.pnl_report(reading, stored)
    _finish(report, code, as_json, _render_pnl)


def _render_pnl(report: dict[str, Any]) -> None:
    console = _console()
    figures, title = report["pnl"], "pnl (engine)"
    if figures is None and report.get("last_stored"):
        figures, title = report["last_stored"], f"pnl (last stored, {report['last_stored']['time']})"
    if figures is None:
        return
    console.print(_table(title, ("figure", "value"), [(k, figures.get(k)) for k in ev.PNL_KEYS]))


# -- strategies --------------------------------------------------------------------------------------


def strategies(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Each strategy's id, class, symbols, params, state and counters (rejections by reason)."""
    config = _load(config_path)
    report, code = ev.strategies_report(ev.read_engine(config), config)
    _finish(report, code, as_json, _render_strategies)


def _render_strategies(report: dict[str, Any]) -> None:
    rows = []
    for s in report["strategies"]:
        rejects = ", ".join(f"{k} {v}" for k, v in sorted((s.get("rejects") or {}).items())) or "none"
        params = ", ".join(f"{k}={v}" for k, v in (s.get("params") or {}).items())
        rows.append(
            (
                s["id"],
                s.get("class"),
                ",".join(s.get("symbols") or []),
                params,
                s.get("state"),
                s.get("open_orders", ""),
                s.get("errors", ""),
                rejects,
            )
        )
    columns = ("id", "class", "symbols", "params", "state", "open orders", "errors", "rejections")
    _console().print(_table("strategies", columns, rows))


def register(app: typer.Typer) -> None:
    app.command()(positions)
    app.command()(orders)
    app.command()(pnl)
    app.command()(strategies)
