"""The engine's composition root wires the flattener and the margin monitor to the autonomy controller and
the notifier, puts the flattener's gate in the chain in DESIGN order and answers the `flatten` command."""

from __future__ import annotations

from pathlib import Path

from hftops.config.schema import Config
from hftops.engine.service import build_engine


async def test_engine_wires_flattening_and_margin(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "data_dir": str(tmp_path),
            "venue": {"symbols": ["BTCUSDT"]},
            "tracks": [{"name": "crypto", "calendar": "24/7", "symbols": ["*USDT"]}],
        }
    )
    engine = build_engine(config, environ={})
    try:
        assert engine.flattener.autonomy is engine.autonomy and engine.flattener.notifier is engine.notifier
        assert engine.margin.autonomy is engine.autonomy and engine.margin.notifier is engine.notifier
        assert engine.margin.config == config.margin and engine.flattener.config == config.flatten
        assert "flatten" in engine.commands.handlers
        names = list(engine.chain.names)
        assert (
            names.index("session")
            < names.index("flatten")
            < names.index("flatten_active")
            < names.index("autonomy_mode")
        )
        stats = engine.stats()
        assert stats["flatten"]["running"] == [] and stats["margin"]["level"] == "ok"
    finally:
        await engine.redis.aclose()
        await engine.execution.rest.aclose()
