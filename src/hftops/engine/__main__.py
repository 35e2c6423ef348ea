"""`python -m hftops.engine`: the trading engine process."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from hftops.config import Config, load_config
from hftops.config.loader import ConfigError
from hftops.config.paths import DataPaths
from hftops.engine.loader import StrategyLoadError
from hftops.engine.service import build_engine
from hftops.execution import CredentialsError
from hftops.lifecycle import exit_now
from hftops.logs import configure_logging

COMPONENT = "engine"


async def run(config: Config) -> int:
    paths = DataPaths(config.data_dir)
    paths.ensure()
    log = configure_logging(COMPONENT, paths.log, config.log.level, config.log.max_bytes, config.log.backups)
    try:
        engine = build_engine(config, log=log)
    except (StrategyLoadError, CredentialsError, ValueError) as exc:
        log.error("engine_config_invalid", error=str(exc))
        print(f"engine: {exc}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, engine.stop)
    log.info(
        "engine_starting",
        venue=config.venue.name,
        symbols=list(config.venue.symbols),
        broker=config.broker_rest_url,
        redis=config.redis_url,
        strategies=[s.strategy_id for s in engine.strategies],
    )
    return await engine.run()


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return 2
    return uvloop.run(run(config))


if __name__ == "__main__":
    exit_now(main())
