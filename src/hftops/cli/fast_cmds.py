"""`trading stop` and `trading emergency-stop`, runnable without typer: the commands whose budget includes
their own start-up.

Under 20,000 msg/s every import costs about 3.5 times its idle time. typer (which imports pydantic), the
config schema and the command modules cost half a second or more there, before the supervisor even hears
the request: half a second of the 2 s stop budget, and most of the 1 s emergency-stop budget. `cli.main`
therefore hands these command lines to `fast_main` first. It understands exactly the options of the typer
commands (tests/unit/control/test_fast_cmds.py checks that they agree). Anything else, such as --help, a typo,
a bad value, or an emergency-stop that has to ask first, goes to typer, which explains it or asks. Both paths
run `run_stop` / `run_emergency_stop`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hftops.control.audit import OPERATOR_PATTERN, default_actor
from hftops.control.shutdown_plan import ShutdownPlan

FAST_STOP_WAIT_S = 30.0  # then the full path asks again with the config's whole stop budget
MIN_TIMEOUT_S = 0.1  # the typer options' `min`
# `trading stop`: option -> its field; options taking a value are in VALUE_OPTIONS
FLAG_OPTIONS = {"--drain": "drain", "--json": "as_json"}
VALUE_OPTIONS = {
    "--timeout": "timeout",
    "--drain-timeout": "drain_timeout",
    "--operator": "operator",
    "--config": "config_path",
    "-c": "config_path",
}


@dataclass(frozen=True)
class StopArgs:
    drain: bool = False
    as_json: bool = False
    timeout: float | None = None
    drain_timeout: float = 120.0
    operator: str | None = None
    config_path: Path | None = None


EMERGENCY_FLAGS = {"--yes": "yes", "-y": "yes"}
EMERGENCY_VALUES = {"--reason": "reason", "--operator": "operator", "--config": "config_path", "-c": "config_path"}


@dataclass(frozen=True)
class EmergencyArgs:
    yes: bool = False
    reason: str = "manual_operator"
    operator: str | None = None
    config_path: Path | None = None


def parse_options(
    argv: list[str], flags: dict[str, str], values: dict[str, str], minimums: dict[str, float]
) -> dict[str, Any] | None:
    """Option -> field, as typer would read it; None for anything typer should explain. Fields named in
    `minimums` are numbers at least that large, `operator` must be an audit actor, `config_path` a Path."""
    fields: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        name, has_value, inline = arg.partition("=")
        if name in flags and not has_value:
            fields[flags[name]] = True
            continue
        if name not in values or (not name.startswith("--") and has_value):
            return None
        value = inline if has_value else next(args, None)
        if value is None or (not has_value and value.startswith("-")):
            return None
        field = values[name]
        if field in minimums:
            try:
                number = float(value)
            except ValueError:
                return None
            if not number >= minimums[field]:  # also refuses NaN
                return None
            fields[field] = number
        elif field == "operator":
            if not re.fullmatch(OPERATOR_PATTERN, value):
                return None
            fields[field] = value
        elif field == "config_path":
            fields[field] = Path(value)
        else:
            fields[field] = value
    return fields


def parse_stop_args(argv: list[str]) -> StopArgs | None:
    """The options of `trading stop ...` (argv after `stop`), or None for anything typer should explain."""
    minimums = {"timeout": MIN_TIMEOUT_S, "drain_timeout": MIN_TIMEOUT_S}
    fields = parse_options(argv, FLAG_OPTIONS, VALUE_OPTIONS, minimums)
    return None if fields is None else StopArgs(**fields)


def parse_emergency_args(argv: list[str]) -> EmergencyArgs | None:
    """The options of `trading emergency-stop ...`, or None for anything typer should explain."""
    fields = parse_options(argv, EMERGENCY_FLAGS, EMERGENCY_VALUES, {})
    return None if fields is None else EmergencyArgs(**fields)


def fast_main(argv: list[str]) -> int | None:
    """Run a plain `stop` or `emergency-stop` command line (argv after the program name); None when typer
    should take it."""
    if argv[:1] == ["stop"]:
        stop_args = parse_stop_args(argv[1:])
        return None if stop_args is None else run_stop(stop_args)
    if argv[:1] == ["emergency-stop"]:
        emergency = parse_emergency_args(argv[1:])
        if emergency is None or (not emergency.yes and sys.stdin.isatty()):
            return None  # typer asks "Kill every pipeline process now?" first
        return run_emergency_stop(emergency)
    return None


def run_stop(args: StopArgs) -> int:
    """The ordered stop through the running supervisor, else the full path (config, PID files); prints the
    report and returns the exit code."""
    actor = args.operator or default_actor()
    plan = ShutdownPlan(actor=actor, drain=args.drain, timeout_s=args.timeout, drain_timeout_s=args.drain_timeout)
    if args.config_path is not None:
        os.environ["HFT_CONFIG"] = str(args.config_path.resolve())
    report = _stop_running_supervisor(plan)
    if report is not None:
        code, message, data = int(report["exit_code"]), "", report
    else:  # no supervisor answering (or an unusual config): the full path, PID files included
        import typer

        from hftops.cli.control_cmds import _load
        from hftops.control.operations import stop_platform

        try:
            config = _load(args.config_path, with_logging=False)
        except typer.Exit as exc:  # the config's problems are printed; its exit code (78) is the stop's
            return int(exc.exit_code)
        outcome = stop_platform(config, plan)
        code, message, data = outcome.code, outcome.message, outcome.data
    if args.as_json:
        print(json.dumps(data, indent=1, default=str))
    else:
        from hftops.control.verdicts import report_lines

        if message:
            print(message)
        if not data.get("nothing_running"):
            for line in report_lines(data):
                print(line)
    sys.stdout.flush()
    return code


def _stop_running_supervisor(plan: ShutdownPlan) -> dict[str, Any] | None:
    """The ordered stop through a running supervisor's control socket, found without validating the
    config (see config/locate.py); None when that is not possible, and the caller takes the full path."""
    from hftops.config.locate import locate_data_dir
    from hftops.config.paths import DataPaths
    from hftops.control.client import SupervisorClient

    data_dir = locate_data_dir(os.environ)
    if data_dir is None:
        return None
    client = SupervisorClient(DataPaths(data_dir))
    if not client.running():
        return None
    return client.shutdown(plan, FAST_STOP_WAIT_S)


def run_emergency_stop(args: EmergencyArgs) -> int:
    """HALT latch first, then the running supervisor kills every pipeline process; without one answering,
    the full path kills them by their PID files. Prints what was killed and returns the exit code."""
    from hftops.config.locate import locate_data_dir
    from hftops.config.paths import DataPaths
    from hftops.control.emergency import emergency_stop_through_supervisor

    actor = args.operator or default_actor()
    if args.config_path is not None:
        os.environ["HFT_CONFIG"] = str(args.config_path.resolve())
    data_dir = locate_data_dir(os.environ)
    result = None if data_dir is None else emergency_stop_through_supervisor(DataPaths(data_dir), actor, args.reason)
    code = 0
    if result is None:  # no supervisor answering (or an unusual config): the latch and the PID files
        import typer

        from hftops.cli.control_cmds import _load
        from hftops.control.operations import emergency_stop

        try:
            config = _load(args.config_path)
        except typer.Exit as exc:
            return int(exc.exit_code)
        outcome = emergency_stop(config, actor, args.reason)
        result, code = outcome.data, outcome.code
    print(
        f"HALT latch written; killed {result.get('killed')} in {result.get('duration_s')}s. "
        "Redis and the database are untouched; `trading start` resumes (the latch stays until "
        "`trading rearm`)."
    )
    sys.stdout.flush()
    return code
