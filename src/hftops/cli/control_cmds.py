"""Commands of the `trading` CLI that control the platform: start, stop, restart, status, logs,
emergency-stop, snapshot, pre-reboot, post-reboot-check, audit, systemd."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from hftops.config.paths import DataPaths
from hftops.control.audit import OPERATOR_PATTERN, AuditLog, default_actor
from hftops.model.components import COMPONENT_NAMES

if TYPE_CHECKING:  # the config schema (pydantic) loads inside _load: `trading stop` may not need it at all
    from rich.console import Console

    from hftops.config.schema import Config

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="config file (default: $HFT_CONFIG, else defaults)")
OPERATOR_OPTION = typer.Option(None, "--operator", help="who runs this (audit actor; default: the OS user)")
EXIT_CONFIG = 78  # EX_CONFIG

audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
systemd_app = typer.Typer(no_args_is_help=True, help="systemd units for the components.")


def _console() -> Console:
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def _load(config_path: Path | None, *, with_logging: bool = True) -> Config:
    """Load the config; a --config path is exported as HFT_CONFIG so the supervisor and children see it.

    `with_logging=False` (stop): the command configures logging itself if it ends up logging at all.
    """
    from hftops.config.loader import ConfigError, load_config
    from hftops.control.operations import cli_logging

    try:
        if config_path is not None:
            os.environ["HFT_CONFIG"] = str(config_path.resolve())
        config = load_config()
    except ConfigError as exc:
        typer.echo(f"config INVALID: {exc.source}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(EXIT_CONFIG) from exc
    if with_logging:
        cli_logging(config)
    return config


def _operator(operator: str | None) -> str:
    who = operator or default_actor()
    if not re.fullmatch(OPERATOR_PATTERN, who):
        typer.echo(f"--operator {who!r}: use 1-64 letters, digits, '_', '.', '@' or '-'", err=True)
        raise typer.Exit(2)
    return who


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


# -- start / stop / restart -------------------------------------------------------------------------


def start(
    foreground: bool = typer.Option(False, "--foreground", "-f", help="run here with a live view (make run)"),
    operator: str | None = OPERATOR_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Start every component in dependency order; returns once all are ready (or names the failed one)."""
    config = _load(config_path)
    if foreground:
        raise typer.Exit(_start_foreground(config, _operator(operator)))
    from hftops.control.daemon import last_log_lines
    from hftops.control.operations import start_platform

    outcome = start_platform(config, _operator(operator))
    if outcome.code == 0:
        typer.echo(outcome.message)
        return
    typer.echo(outcome.message, err=True)
    component = outcome.data.get("component")
    if component:
        for line in last_log_lines(DataPaths(config.data_dir).log, component):
            typer.echo(line, err=True)
    raise typer.Exit(outcome.code)


def _start_foreground(config: Config, operator: str) -> int:
    import uvloop

    from hftops.control.backup import backup_config
    from hftops.control.foreground import ForegroundHooks
    from hftops.control.main import run_supervisor
    from hftops.control.operations import start_platform

    paths = DataPaths(config.data_dir).ensure()
    from hftops.control.client import SupervisorClient

    if SupervisorClient(paths).running():  # same refusal/resume rules as the daemon start
        outcome = start_platform(config, operator)
        typer.echo(outcome.message, err=outcome.code != 0)
        return outcome.code
    backup_config(config)
    hooks = ForegroundHooks(_console(), paths.log)
    return uvloop.run(run_supervisor(config, operator=operator, hooks=hooks, foreground=True))


def stop(
    drain: bool = typer.Option(False, "--drain", help="stop the producer first and let the recorder drain"),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, help="seconds per step before SIGKILL (default: stop_timeout_s, 10)"
    ),
    drain_timeout: float = typer.Option(120.0, "--drain-timeout", min=0.1, help="give up draining after this"),
    operator: str | None = OPERATOR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="the stop report as JSON"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Ordered shutdown: API, engine, recorder (consumer), collector (producer), venue, Redis last.

    Exit 0 clean and balanced; 3 something had to be killed; 4 the ledger does not balance; 5 not drained.
    """
    from hftops.cli.fast_cmds import StopArgs, run_stop

    _operator(operator)  # a bad --operator is refused here with its reason
    args = StopArgs(drain, as_json, timeout, drain_timeout, operator, config_path)
    raise typer.Exit(run_stop(args))


def restart(
    timeout: float | None = typer.Option(None, "--timeout", min=0.1, help="seconds per stop step before SIGKILL"),
    operator: str | None = OPERATOR_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Ordered stop, then start. Exits with the start's failure, else the stop's code."""
    from hftops.control.operations import start_platform, stop_platform
    from hftops.control.shutdown_plan import ShutdownPlan
    from hftops.control.verdicts import report_lines

    config = _load(config_path)
    who = _operator(operator)
    stopped = stop_platform(config, ShutdownPlan(actor=who, timeout_s=timeout, reason="restart"))
    for line in report_lines(stopped.data) if not stopped.data.get("nothing_running") else []:
        typer.echo(line)
    started = start_platform(config, who)
    typer.echo(started.message, err=started.code != 0)
    raise typer.Exit(started.code or stopped.code)


# -- status / logs ----------------------------------------------------------------------------------


def status(
    as_json: bool = typer.Option(False, "--json", help="machine-readable status"),
    watch: bool = typer.Option(False, "--watch", "-w", help="refresh until Ctrl-C"),
    interval: float = typer.Option(2.0, "--interval", min=0.2, help="seconds between refreshes (--watch)"),
    ledger: bool = typer.Option(True, "--ledger/--no-ledger", help="check the ledger too (slower)"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Components, data flow and ledger. Exit 0 healthy, 1 degraded, 2 stopped."""
    from hftops.control.operations import current_status
    from hftops.control.render import status_view

    config = _load(config_path)
    if watch and not as_json:
        from rich.live import Live

        console = _console()
        code = 2
        try:
            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    snapshot = current_status(config, with_ledger=ledger)
                    code = snapshot["exit_code"]
                    live.update(status_view(snapshot))
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass
        raise typer.Exit(code)
    snapshot = current_status(config, with_ledger=ledger)
    if as_json:
        _print_json(snapshot)
    else:
        _console().print(status_view(snapshot))
    raise typer.Exit(snapshot["exit_code"])


def logs(
    component: str = typer.Argument("all", help=f"one of {', '.join(COMPONENT_NAMES)}, supervisor, or all"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing new entries"),
    lines: int = typer.Option(50, "-n", "--lines", min=0, help="entries to show first"),
    as_json: bool = typer.Option(False, "--json", help="raw JSON lines"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Merged, time-ordered logs of every component (JSON lines under <data>/log)."""
    from hftops.control import logview

    config = _load(config_path)
    log_dir = DataPaths(config.data_dir).log
    which = None if component == "all" else component
    known = set(logview.log_files(log_dir, None)) | {*COMPONENT_NAMES, "supervisor"}
    if which is not None and which not in known:
        typer.echo(f"unknown component {component!r}; choose from: all, {', '.join(sorted(known))}", err=True)
        raise typer.Exit(2)

    def show(entry: dict[str, Any]) -> None:
        typer.echo(json.dumps(entry, default=str) if as_json else logview.format_entry(entry))

    for entry in logview.tail(log_dir, which, lines):
        show(entry)
    if follow:
        try:
            for entry in logview.follow(log_dir, which):
                show(entry)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass


# -- emergency stop / snapshot / reboot -------------------------------------------------------------


def emergency_stop(
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask (a terminal asks once)"),
    reason: str = typer.Option("manual_operator", "--reason", help="reason code written into the HALT latch"),
    operator: str | None = OPERATOR_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """EMERGENCY: write the HALT latch, then SIGKILL every pipeline process (Redis and data stay intact).
    Automatic restarts stay blocked until an explicit `trading start`."""
    from hftops.cli.fast_cmds import EmergencyArgs, run_emergency_stop

    _operator(operator)  # a bad --operator is refused here with its reason
    if not yes and sys.stdin.isatty() and not typer.confirm("Kill every pipeline process now?", default=False):
        raise typer.Exit(1)
    raise typer.Exit(run_emergency_stop(EmergencyArgs(True, reason, operator, config_path)))


def snapshot(
    as_json: bool = typer.Option(False, "--json", help="print the snapshot"),
    operator: str | None = OPERATOR_OPTION,
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Save a JSON snapshot (counts, processes, memory, open files, huge pages) under <data>/snapshots."""
    from hftops.control.operations import snapshot as take

    config = _load(config_path)
    outcome = take(config, _operator(operator))
    if as_json:
        _print_json(outcome.data)
    else:
        typer.echo(f"snapshot saved: {outcome.message}")


def pre_reboot(
    timeout: float | None = typer.Option(None, "--timeout", min=0.1, help="seconds per stop step before SIGKILL"),
    drain_timeout: float = typer.Option(300.0, "--drain-timeout", min=0.1),
    operator: str | None = OPERATOR_OPTION,
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Before a reboot: status, counts, drain-stop, verify, snapshot, config backup, then the checklist."""
    from hftops.control.reboot import pre_reboot as run
    from hftops.control.render import status_view
    from hftops.control.verdicts import report_lines

    config = _load(config_path)
    console = _console()
    if not as_json:
        from hftops.control.operations import current_status

        console.print(status_view(current_status(config, with_ledger=False)))
        typer.echo("drain-stopping ...")
    checks, data = run(config, _operator(operator), timeout, drain_timeout)
    if as_json:
        _print_json({"ok": checks.ok, "checklist": checks.items, **data})
    else:
        for line in report_lines(data["stop"]) if data["stop"].get("steps") else []:
            typer.echo(line)
        typer.echo("\nready-to-reboot checklist:")
        for verdict, item, detail in checks.items:
            typer.echo(f"  [{verdict:>4}] {item}" + (f": {detail}" if detail else ""))
        typer.echo("\nREADY TO REBOOT" if checks.ok else "\nNOT READY: fix the FAIL items above")
    raise typer.Exit(0 if checks.ok else 1)


def post_reboot_check(
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """After a reboot (starts nothing): compare the saved snapshot with what the database holds."""
    from hftops.control.reboot import post_reboot_check as run

    config = _load(config_path)
    outcome = run(config)
    if as_json:
        _print_json({"exit_code": outcome.code, "message": outcome.message, **outcome.data})
    else:
        if outcome.data.get("snapshot"):
            typer.echo(f"snapshot {outcome.data['snapshot']} taken {outcome.data.get('taken_at')}")
        for line in outcome.data.get("lines", []):
            typer.echo(f"  {line}")
        typer.echo(outcome.message or ("post-reboot check: OK" if outcome.code == 0 else "post-reboot check: FAILED"))
    raise typer.Exit(outcome.code)


# -- audit ------------------------------------------------------------------------------------------


@audit_app.command("show")
def audit_show(
    lines: int = typer.Option(20, "-n", "--lines", min=1),
    as_json: bool = typer.Option(False, "--json"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """The last audit entries."""
    config = _load(config_path)
    for entry in AuditLog(DataPaths(config.data_dir).audit).tail(lines):
        if as_json:
            typer.echo(json.dumps(entry))
        else:
            args = json.dumps(entry.get("args"), default=str) if entry.get("args") else ""
            result = json.dumps(entry.get("result"), default=str)
            typer.echo(
                f"{entry['seq']:>6} {entry['at'][:23]} {entry['event']:<20} {entry['actor']:<16} "
                f"{args} -> {result[:300]}"
            )


@audit_app.command("verify")
def audit_verify(config_path: Path | None = CONFIG_OPTION) -> None:
    """Check the hash chain; names the first edited, deleted or reordered line. Exit 1 if broken."""
    config = _load(config_path)
    log = AuditLog(DataPaths(config.data_dir).audit)
    result = log.verify()
    typer.echo(f"{log.path}: {result.describe()}", err=not result.ok)
    raise typer.Exit(0 if result.ok else 1)


# -- systemd ----------------------------------------------------------------------------------------


@systemd_app.command("generate")
def systemd_generate(
    user: bool = typer.Option(False, "--user", help="user units (~/.config/systemd/user)"),
    directory: Path | None = typer.Option(None, "--dir", help="write here instead of the systemd directory"),
    config_path: Path | None = CONFIG_OPTION,
) -> None:
    """Write one unit per component plus hftops.target (Type=notify, WatchdogSec, start limits, order)."""
    from hftops.control import systemd

    config = _load(config_path)
    source = os.environ.get("HFT_CONFIG")
    units = systemd.generate(config, user=user, config_path=Path(source) if source else None)
    target = directory or systemd.default_dir(user)
    try:
        written = systemd.write_units(units, target)
    except PermissionError as exc:
        typer.echo(f"cannot write {target}: {exc.strerror}; use --user, --dir DIR, or run as root", err=True)
        raise typer.Exit(1) from exc
    for path in written:
        typer.echo(f"wrote {path}")
    scope = "--user " if user else ""
    typer.echo(f"then: systemctl {scope}daemon-reload && systemctl {scope}start {systemd.TARGET}")
    if not source:
        typer.echo("note: no HFT_CONFIG file was used; the units run on defaults plus HFT_DATA_DIR", err=True)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("restart")(restart)
    app.command("status")(status)
    app.command("logs")(logs)
    app.command("emergency-stop")(emergency_stop)
    app.command("snapshot")(snapshot)
    app.command("pre-reboot")(pre_reboot)
    app.command("post-reboot-check")(post_reboot_check)
    app.add_typer(audit_app, name="audit")
    app.add_typer(systemd_app, name="systemd")
