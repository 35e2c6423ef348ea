"""`python -m hftops.control`: the detached supervisor process that `trading start` launches."""

from __future__ import annotations

import argparse
import sys

import uvloop

from hftops.config.loader import ConfigError, load_config
from hftops.control.audit import default_actor
from hftops.control.daemon import NotifyParentHooks
from hftops.control.main import run_supervisor
from hftops.lifecycle import exit_now


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
