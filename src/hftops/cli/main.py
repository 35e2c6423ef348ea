"""The `trading` command (alias `hft`): one entry point; each command group lives in its own module.

Only the module of the command being run is imported: `trading stop` under load must not spend half a
second importing the Redis client, the engine views and every other group first. `trading`, `--help` and
an unknown command import them all (the full help, typer's own "no such command"). A plain `trading stop`
and a plain `trading emergency-stop` do not import typer at all (see cli/fast_cmds.py).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# command -> the module whose register() attaches it (tests/unit/cli check this against the modules)
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "start",
            "stop",
            "restart",
            "status",
            "logs",
            "emergency-stop",
            "snapshot",
            "pre-reboot",
            "post-reboot-check",
            "audit",
            "systemd",
        ),
        "control_cmds",
    ),
    **dict.fromkeys(("check", "query", "verify"), "data_cmds"),
    **dict.fromkeys(("halt", "rearm", "evidence"), "autonomy_cmds"),
    "flatten": "flatten_cmds",
    **dict.fromkeys(("positions", "orders", "pnl", "strategies"), "trading_cmds"),
    "venue": "venue_cmds",
    "db": "db_cmds",
    "dlq": "dlq_cmds",
    "notify": "notify_cmds",
}
GROUP_HELP = {
    "venue": "The simulated venue: faults, ground truth, publishing.",
    "db": "The database: fault switch for drills and tests.",
    "dlq": "Dead-letter queue: status, show, replay.",
    "notify": "Notifications: send a test through every channel.",
}
MODULE_ORDER = (
    "control_cmds",
    "data_cmds",
    "autonomy_cmds",
    "flatten_cmds",
    "trading_cmds",
    "venue_cmds",
    "db_cmds",
    "dlq_cmds",
    "notify_cmds",
)


def build_app(modules: tuple[str, ...] = MODULE_ORDER) -> typer.Typer:
    """The root app with the commands of `modules` (all of them by default)."""
    import typer

    app = typer.Typer(
        name="trading",
        help="Operate the hftops platform: start/stop/status, capture checks, verification, drills.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)  # a group even when it holds one command: `trading flatten ...` keeps its name
    for name in modules:
        module = importlib.import_module(f"hftops.cli.{name}")
        if hasattr(module, "register"):
            module.register(app)
        else:  # a sub-command group: `trading venue ...`
            group = next(cmd for cmd, mod in COMMAND_MODULES.items() if mod == name)
            app.add_typer(module.app, name=group, help=GROUP_HELP[group])
    return app


def _root() -> None:
    """Operate the hftops platform: start/stop/status, capture checks, verification, drills."""


def _modules_for(argv: list[str]) -> tuple[str, ...]:
    """The one module the command line needs, or all of them when it names no known command."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    module = COMMAND_MODULES.get(first) if first is not None else None
    return (module,) if module is not None else MODULE_ORDER


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] in (["stop"], ["emergency-stop"]):  # typer and pydantic alone would eat their budgets under load
        from hftops.cli.fast_cmds import fast_main

        code = fast_main(argv)
        if code is not None:
            sys.exit(code)
    build_app(_modules_for(argv))()


def __getattr__(name: str) -> Any:
    if name == "app":  # `from hftops.cli.main import app` (tests, CliRunner): the full app
        return build_app()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
