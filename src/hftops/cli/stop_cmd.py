"""`trading stop`, runnable without typer: the one command whose budget includes its own start-up.

Under 20,000 msg/s every import costs about 3.5 times its idle time. typer (which imports pydantic) and the
command modules cost half a second of the 2 s stop budget there, before the supervisor even hears the
request. `cli.main` therefore hands a `stop` command line to `fast_stop` first. It understands exactly the
options of the typer command (`tests/unit/control/test_stop_cmd.py` checks that the two agree). Anything
else, such as --help, a typo or a bad value, goes to typer, which explains it. Both paths run `run_stop`.
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
# option -> its field; options taking a value are in VALUE_OPTIONS
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


def parse_stop_args(argv: list[str]) -> StopArgs | None:
    """The options of `trading stop ...` (argv after `stop`), or None for anything typer should explain."""
    fields: dict[str, Any] = {}
    args = iter(argv)
    for arg in args:
        name, has_value, inline = arg.partition("=")
        if name in FLAG_OPTIONS and not has_value:
            fields[FLAG_OPTIONS[name]] = True
            continue
        if name not in VALUE_OPTIONS or (name == "-c" and has_value):
            return None
        value = inline if has_value else next(args, None)
        if value is None or (not has_value and value.startswith("-")):
            return None
        field = VALUE_OPTIONS[name]
        if field in ("timeout", "drain_timeout"):
            try:
                number = float(value)
            except ValueError:
                return None
            if not number >= MIN_TIMEOUT_S:  # also refuses NaN
                return None
            fields[field] = number
        elif field == "operator":
            if not re.fullmatch(OPERATOR_PATTERN, value):
                return None
            fields[field] = value
        else:
            fields[field] = Path(value)
    return StopArgs(**fields)


def fast_stop(argv: list[str]) -> int | None:
    """Run `trading stop` from its plain command line; None when typer should take it."""
    args = parse_stop_args(argv)
    return None if args is None else run_stop(args)


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
