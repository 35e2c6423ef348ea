"""`python -m hftops.venue`: run the simulated venue, configured from HFT_CONFIG and HFT_* variables."""

from __future__ import annotations

import sys

import uvloop

from hftops.config import load_config
from hftops.config.loader import ConfigError
from hftops.config.paths import DataPaths
from hftops.lifecycle import exit_now
from hftops.logs import configure_logging
from hftops.venue.app import build_venue
from hftops.venue.ground_truth import GroundTruthError


async def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"venue: configuration error: {exc}", file=sys.stderr)
        return 2
    log = configure_logging(
        "venue", DataPaths(config.data_dir).log, config.log.level, config.log.max_bytes, config.log.backups
    )
    try:
        venue = build_venue(config)
    except GroundTruthError as exc:
        log.error("venue.ground_truth_unusable", error=str(exc))
        print(f"venue: {exc}", file=sys.stderr)
        return 1
    try:
        return await venue.run()
    except OSError as exc:
        message = (
            f"venue: cannot listen on {config.simulator.host} (ws port {config.simulator.ws_port}, "
            f"rest port {config.simulator.rest_port}): {exc}; free the port or change simulator.*_port"
        )
        log.error("venue.bind_failed", error=str(exc))
        print(message, file=sys.stderr)
        return 1


if __name__ == "__main__":
    exit_now(uvloop.run(main()))
