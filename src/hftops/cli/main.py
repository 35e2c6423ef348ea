"""The `trading` command (alias `hft`): one entry point; each command group lives in its own module."""

from __future__ import annotations

import typer

from hftops.cli import (
    autonomy_cmds,
    control_cmds,
    data_cmds,
    db_cmds,
    dlq_cmds,
    flatten_cmds,
    notify_cmds,
    trading_cmds,
    venue_cmds,
)

app = typer.Typer(
    name="trading",
    help="Operate the hftops platform: start/stop/status, capture checks, verification, drills.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

control_cmds.register(app)  # start, stop, restart, status, logs, emergency-stop, snapshot, audit, systemd, ...
data_cmds.register(app)  # check, query, verify
autonomy_cmds.register(app)  # halt, rearm, evidence list|show
flatten_cmds.register(app)  # flatten
trading_cmds.register(app)  # positions, orders, pnl, strategies
app.add_typer(venue_cmds.app, name="venue", help="The simulated venue: faults, ground truth, publishing.")
app.add_typer(db_cmds.app, name="db", help="The database: fault switch for drills and tests.")
app.add_typer(dlq_cmds.app, name="dlq", help="Dead-letter queue: status, show, replay.")
app.add_typer(notify_cmds.app, name="notify", help="Notifications: send a test through every channel.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
