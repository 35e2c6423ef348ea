"""`python -m hftops.pipeline.recorder`: the recorder process (HFT_CONFIG names the configuration)."""

from __future__ import annotations

import sys

import uvloop

from hftops.config.loader import ConfigError, load_config
from hftops.config.paths import DataPaths
from hftops.lifecycle import exit_now
from hftops.logs import configure_logging
from hftops.model.components import RECORDER


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"recorder: {exc}", file=sys.stderr)
        return 2
    paths = DataPaths(config.data_dir).ensure()
    log = configure_logging(RECORDER, paths.log, config.log.level, config.log.max_bytes, config.log.backups)
    from hftops.pipeline.recorder.service import build_recorder

    try:
        recorder = build_recorder(config, log=log)
        return uvloop.run(recorder.run())
    except Exception as exc:
        log.exception("recorder_failed", error=str(exc))
        print(f"recorder: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    exit_now(main())
