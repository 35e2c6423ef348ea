"""`trading db ...`: the database fault switch for drills and tests (`db fault down|up|status`)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import typer

from hftops.config.loader import ConfigError, load_config
from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.store.faults import FaultSwitch

app = typer.Typer(no_args_is_help=True)
fault_app = typer.Typer(no_args_is_help=True, help="Make every insert fail as if the database were down.")
app.add_typer(fault_app, name="fault")

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
JSON_OPTION = typer.Option(False, "--json", help="print JSON")


def _config(config_path: Path | None) -> Config:
    try:
        return load_config(config_path) if config_path else load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc}", err=True)
        raise typer.Exit(2) from None


def _switch(config: Config) -> FaultSwitch:
    return FaultSwitch.for_paths(DataPaths(config.data_dir))


def _recorder_health(config: Config) -> dict[str, object] | None:
    try:
        answer: dict[str, object] = httpx.get(config.recorder_query_url + "/healthz", timeout=2.0).json()
        return answer
    except (httpx.HTTPError, ValueError):
        return None


@fault_app.command("down")
def down(
    reason: str = typer.Option("drill", "--reason", help="why (written into the switch file)"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Turn the fault on: inserts fail, the recorder writes its WAL and probes until `db fault up`."""
    switch = _switch(_config(config_path))
    switch.set_down(True, reason + "\n")
    typer.echo(f"database fault ON ({switch.path}); the recorder now writes its WAL. Undo: trading db fault up")


@fault_app.command("up")
def up(config_path: Path | None = CONFIG_OPTION) -> None:
    """Turn the fault off: the recorder's next probe succeeds and it replays the WAL."""
    switch = _switch(_config(config_path))
    was_down = switch.is_down()
    switch.set_down(False)
    typer.echo("database fault OFF" + ("" if was_down else " (it was not on)") + "; the recorder replays its WAL")


@fault_app.command("status")
def status(as_json: bool = JSON_OPTION, config_path: Path | None = CONFIG_OPTION) -> None:
    """Whether the fault switch is on, and what the recorder reports about the database and its WAL."""
    config = _config(config_path)
    switch = _switch(config)
    health = _recorder_health(config)
    report = {"fault": "down" if switch.is_down() else "up", "switch_file": str(switch.path), "recorder": health}
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    typer.echo(f"fault switch: {report['fault']} ({switch.path})")
    if health is None:
        typer.echo(f"recorder: not answering at {config.recorder_query_url}")
    else:
        typer.echo(
            f"recorder: db {health.get('db')}, disk guard {'ON' if health.get('disk_guard') else 'off'}, "
            f"wal {health.get('wal')}"
        )
