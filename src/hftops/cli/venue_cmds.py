"""`trading venue ...`: the simulated venue's admin API from the command line (ground truth, faults, rate)."""

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

app = typer.Typer(no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
JSON_OPTION = typer.Option(False, "--json", help="print the raw JSON answer")
FAULT_NAMES = (
    "drop_connections",
    "pause_symbol",
    "resume_symbol",
    "skip_ids",
    "malformed",
    "rest_fail",
    "rest_slow",
    "down",
    "reject_orders",
    "delay_acks",
    "drop_user_stream",
    "malformed_json",
    "position_drift",
    "cap_fills",
)


def _config(config_path: Path | None) -> Config:
    try:
        config = load_config(config_path) if config_path else load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc}", err=True)
        raise typer.Exit(2) from None
    if config.venue.kind != "simulated":
        typer.echo(f"venue.kind is {config.venue.kind!r}: these commands talk to the simulated venue only", err=True)
        raise typer.Exit(1)
    return config


def _call(config: Config, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = config.rest_base_url + path
    try:
        response = httpx.request(method, url, json=body, timeout=5.0)
    except httpx.ConnectError:
        typer.echo(
            f"venue: nothing answers at {config.rest_base_url} (connection refused); start the venue "
            "(`trading start`, or `python -m hftops.venue`) or check simulator.host/rest_port",
            err=True,
        )
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        typer.echo(f"venue: {method} {url} failed: {exc!r}", err=True)
        raise typer.Exit(1) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": response.text}
    if response.status_code >= 400:
        detail = (answer.get("error") or answer.get("msg") or answer) if isinstance(answer, dict) else answer
        typer.echo(f"venue refused {method} {path} (HTTP {response.status_code}): {detail}", err=True)
        raise typer.Exit(1)
    return answer


def _print_json(answer: Any) -> None:
    typer.echo(json.dumps(answer, indent=2, sort_keys=True))


@app.command("ground-truth")
def ground_truth(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Every trade id the venue published, per symbol (the reference for `trading verify`)."""
    answer = _call(_config(config_path), "GET", "/admin/ground-truth")
    if as_json:
        _print_json(answer)
        return
    table = Table(title=f"venue {answer['venue']} ground truth ({answer['trade_stream']})")
    for column in ("symbol", "first id", "last id", "trades published", "bookTicker published"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for symbol, row in answer["symbols"].items():
        table.add_row(
            symbol,
            str(row["first_id"]),
            str(row["last_id"]),
            f"{row['published']:,}",
            f"{row['bbo_published']:,}",
        )
    Console().print(table)


@app.command()
def fault(
    name: str = typer.Argument(..., help=f"one of: {', '.join(FAULT_NAMES)}"),
    symbol: str | None = typer.Option(None, "--symbol", help="pause_symbol, resume_symbol, skip_ids, malformed"),
    count: int | None = typer.Option(None, "--count", help="skip_ids, malformed, rest_fail"),
    seconds: float | None = typer.Option(None, "--seconds", help="down, pause_symbol"),
    kind: str | None = typer.Option(
        None, "--kind", help="malformed: bad_json|missing_field|wrong_type|nan_price|negative_price|oversized"
    ),
    status: int | None = typer.Option(None, "--status", help="rest_fail: 429|500|503"),
    ms: float | None = typer.Option(None, "--ms", help="rest_slow, delay_acks: delay in milliseconds"),
    qty: str | None = typer.Option(
        None, "--qty", help="position_drift: signed base quantity added to reports; cap_fills: most filled per order"
    ),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Inject a fault into the simulated venue."""
    body = {
        "fault": name,
        "symbol": symbol,
        "count": count,
        "seconds": seconds,
        "kind": kind,
        "status": status,
        "ms": ms,
        "qty": qty,
    }
    answer = _call(_config(config_path), "POST", "/admin/fault", {k: v for k, v in body.items() if v is not None})
    typer.echo(f"fault {name} armed")
    _print_json(answer["faults"])


@app.command("clear-faults")
def clear_faults(config_path: Path | None = CONFIG_OPTION) -> None:
    """Clear every armed fault (down, paused symbols, pending skips and malformed frames, REST faults)."""
    _call(_config(config_path), "DELETE", "/admin/fault")
    typer.echo("all venue faults cleared")


@app.command()
def faults(config_path: Path | None = CONFIG_OPTION) -> None:
    """Show the armed faults and the fault counters."""
    _print_json(_call(_config(config_path), "GET", "/admin/faults"))


@app.command()
def pause(config_path: Path | None = CONFIG_OPTION) -> None:
    """Stop generating new market data (all symbols); connections stay open."""
    _call(_config(config_path), "POST", "/admin/publishing", {"paused": True})
    typer.echo("venue publishing paused")


@app.command()
def resume(config_path: Path | None = CONFIG_OPTION) -> None:
    """Resume generating market data."""
    _call(_config(config_path), "POST", "/admin/publishing", {"paused": False})
    typer.echo("venue publishing resumed")


@app.command()
def rate(
    messages_per_s: float = typer.Argument(..., help="total messages/s, trades + bookTicker"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Change the venue's total message rate."""
    answer = _call(_config(config_path), "POST", "/admin/rate", {"rate": messages_per_s})
    typer.echo(f"venue rate set to {answer['rate']:,.0f} messages/s")


@app.command()
def stats(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Rates, connections and published counts of the running venue."""
    answer = _call(_config(config_path), "GET", "/admin/stats")
    if as_json:
        _print_json(answer)
        return
    console = Console()
    state = "DOWN" if answer["down"] else "paused" if answer["paused"] else "publishing"
    console.print(
        f"venue {answer['venue']}: {state}, target {answer['rate']:,.0f} msg/s, "
        f"generating {answer['generated_per_s']:,.0f} msg/s, sending {answer['frames_per_s']:,.0f} "
        f"frames/s, {answer['connections']} connection(s), up {answer['uptime_s']:.0f} s"
    )
    hub = answer["hub"]
    console.print(
        f"frames sent {hub['frames_sent']:,}, slow consumers closed {hub['slow_consumers_closed']}, "
        f"handshakes rejected {hub['handshakes_rejected']}"
    )
    table = Table()
    for column in ("symbol", "trades", "bookTicker"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for symbol, count in answer["published"].items():
        table.add_row(symbol, f"{count:,}", f"{answer['bbo_published'][symbol]:,}")
    console.print(table)
