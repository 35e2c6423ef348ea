"""`python -m hftops.control`: the detached supervisor process that `trading start` launches."""

from __future__ import annotations

import argparse
import sys

import uvloop

from hftops.config.loader import ConfigError, load_config
from hftops.control.audit import default_actor
from hftops.control.daemon import FAILED_FIELD
from hftops.control.main import SupervisorHooks, run_supervisor
from hftops.control.shutdown import ShutdownReport
from hftops.control.supervisor import Supervisor
from hftops.lifecycle import exit_now, sd_notify


class NotifyParentHooks(SupervisorHooks):
    """The detached supervisor tells the `trading start` that launched it how the start went."""

    def ready(self, sup: Supervisor) -> None:
        sd_notify("READY=1\nSTATUS=every component is ready")

    def failed(self, component: str, reason: str) -> None:
        sd_notify(f"STATUS={reason}\n{FAILED_FIELD}={component}")

    def stopped(self, report: ShutdownReport | None) -> None:
        sd_notify("STOPPING=1")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m hftops.control")
    parser.add_argument("--operator", default=None)
    args = parser.parse_args()
    hooks = NotifyParentHooks()
    try:
        config = load_config()
    except ConfigError as exc:
        hooks.failed("config", str(exc))
        print(exc, file=sys.stderr)
        return 1
    return uvloop.run(run_supervisor(config, operator=args.operator or default_actor(), hooks=hooks))


if __name__ == "__main__":
    exit_now(main())
