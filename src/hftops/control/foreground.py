"""`trading start --foreground` (what `make run` runs): the supervisor in this process with a live
status view; Ctrl-C stops the platform exactly like `trading stop`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.live import Live

from hftops.control.daemon import last_log_lines
from hftops.control.main import SupervisorHooks
from hftops.control.render import status_view
from hftops.control.shutdown import ShutdownReport
from hftops.control.supervisor import Supervisor
from hftops.control.verdicts import report_lines

_REFRESH_S = 1.0


class ForegroundHooks(SupervisorHooks):
    def __init__(self, console: Console, log_dir: Path) -> None:
        self.console = console
        self.log_dir = log_dir
        self.failure: tuple[str, str] | None = None

    def ready(self, sup: Supervisor) -> None:
        self.console.print(
            f"[green]platform ready[/green]: {', '.join(sup.runners)}  (Ctrl-C stops it in order; "
            f"API http://{sup.config.api.host}:{sup.config.api.port}/)"
        )

    def failed(self, component: str, reason: str) -> None:
        self.failure = (component, reason)
        self.console.print(f"[red]start failed[/red]: {component}: {reason}")
        for line in last_log_lines(self.log_dir, component):
            self.console.print(line, highlight=False, markup=False)

    async def watch(self, sup: Supervisor) -> None:
        with Live(console=self.console, refresh_per_second=2, transient=True) as live:
            while True:
                live.update(status_view(await sup.status(with_ledger=False)))
                await asyncio.sleep(_REFRESH_S)

    def stopped(self, report: ShutdownReport | None) -> None:
        if report is not None:
            for line in report_lines(report.to_dict()):
                self.console.print(line, highlight=False, markup=False)
