"""The trading engine as operators see it: its live `ops:stats` snapshot (positions, orders, PnL, strategies),
the broker's own positions, the last checkpoint, and the stored order history. Used by `trading positions|
orders|pnl|strategies` and by the `engine` section of `trading status`.

Every part degrades to a sentence saying what is missing and how to fix it; nothing here raises for a
component that is down.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import redis

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control.pidfiles import PidFiles
from hftops.control.registry import build_registry
from hftops.model.components import ENGINE
from hftops.model.streams import STATS_HASH

STATS_STALE_S = 5.0  # the engine publishes its stats every second; older than this, it is not answering
EXIT_OK, EXIT_DEGRADED, EXIT_NOT_RUNNING = 0, 1, 2


@dataclass
class EngineReading:
    running: bool  # an engine process is alive (PID file, identity-checked)
    pid: int | None
    stats: dict[str, Any] | None  # its last `ops:stats` snapshot, possibly stale
    age_s: float | None
    problem: str  # "" when the live view is usable; else what is wrong and what to do

    @property
    def live(self) -> bool:
        return not self.problem

    def header(self) -> dict[str, Any]:
        stats = self.stats or {}
        return {
            "running": self.running,
            "live": self.live,
            "pid": self.pid,
            "state": stats.get("state") if self.live else ("not running" if not self.running else "not answering"),
            "stats_age_s": None if self.age_s is None else round(self.age_s, 3),
            "problem": self.problem or None,
        }


def _stats_age(stats: Mapping[str, Any] | None, now: float) -> float | None:
    stamp = (stats or {}).get("time_ns")
    return max(0.0, now - int(stamp) / 1e9) if isinstance(stamp, int) else None


def engine_problem(enabled: str | None, running: bool, stats: Mapping[str, Any] | None, age: float | None) -> str:
    """`enabled`: None when the engine is a configured component, else why it is skipped."""
    if enabled is not None:
        return (
            f"the engine is not part of this platform ({enabled}); set supervisor.components.engine.enabled: "
            "true and run `trading start`"
        )
    if not running:
        return "the engine is not running; start it with `trading start` (see `trading logs engine` for why it stopped)"
    if stats is None:
        return "the engine runs but has published no stats yet (still starting?); try again in a few seconds"
    if age is None or age > STATS_STALE_S:
        shown = "unknown" if age is None else f"{age:.0f}s"
        return (
            f"the engine's last stats are {shown} old (it publishes every second): it is not answering; "
            "see `trading logs engine`"
        )
    return ""


def read_engine(config: Config, *, now: Callable[[], float] = time.time) -> EngineReading:
    """Running = a live PID file (the supervisor's), or fresh stats from an engine not stopping (an engine
    under systemd or started by hand writes no PID file, but it does publish its stats every second)."""
    registry = build_registry(config)
    skipped = None if registry.get(ENGINE) is not None else registry.skipped.get(ENGINE, "disabled")
    if skipped is not None:
        return EngineReading(False, None, None, None, engine_problem(skipped, False, None, None))
    record = PidFiles(DataPaths(config.data_dir).run).live(ENGINE)
    pid = record.pid if record else None
    try:
        stats = _engine_stats(config)
    except redis.RedisError as exc:
        if record is None:  # say that first: Redis being down too is then a consequence
            return EngineReading(False, None, None, None, engine_problem(None, False, None, None))
        problem = f"redis not reachable at {config.redis_url} ({exc}); the engine's live view lives there"
        return EngineReading(True, pid, None, None, problem)
    age = _stats_age(stats, now())
    if record is None:
        publishing = stats is not None and age is not None and age <= STATS_STALE_S
        if not publishing or (stats or {}).get("state") == "stopping":
            return EngineReading(False, None, stats, age, engine_problem(None, False, None, None))
        pid = (stats or {}).get("pid")
    return EngineReading(True, pid, stats, age, engine_problem(None, True, stats, age))


def _engine_stats(config: Config) -> dict[str, Any] | None:
    client = redis.Redis.from_url(config.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0)
    try:
        raw = client.hget(STATS_HASH, ENGINE)
    finally:
        client.close()
    try:
        stats = json.loads(raw) if raw else None
    except ValueError:
        return None
    return stats if isinstance(stats, dict) else None


# -- the broker's view -------------------------------------------------------------------------------------


def broker_positions(config: Config, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`GET /fapi/v2/positionRisk` with the configured keys: {"available", "error", "positions": {symbol: ...}}."""
    try:
        rows = asyncio.run(_position_risk(config, os.environ if environ is None else environ))
    except Exception as exc:  # BrokerError, CredentialsError, transport: all say what failed
        return {"available": False, "error": f"broker at {config.broker_rest_url}: {exc}", "positions": {}}
    wanted = set(config.venue.symbols)
    positions = {
        r.symbol: {
            "qty": _text(r.positionAmt),
            "entry_price": _text(r.entryPrice),
            "mark_price": _text(r.markPrice),
            "unrealized_pnl": _text(r.unRealizedProfit),
        }
        for r in rows
        if r.symbol in wanted or r.positionAmt != 0
    }
    return {"available": True, "error": None, "positions": dict(sorted(positions.items()))}


async def _position_risk(config: Config, environ: Mapping[str, str]) -> list[Any]:
    from hftops.execution.rest import BinanceFuturesRest
    from hftops.execution.signing import load_credentials

    broker = config.broker
    simulated = config.venue.kind == "simulated" and broker.rest_url is None
    credentials = load_credentials(broker.api_key_env, broker.api_secret_env, environ, allow_dev_default=simulated)
    rest = BinanceFuturesRest(
        config.broker_rest_url,
        credentials,
        recv_window_ms=broker.recv_window_ms,
        timeout_s=broker.timeout_s,
        max_attempts=1,
    )
    try:
        return list(await rest.position_risk())
    finally:
        await rest.aclose()


def _text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


# -- the last checkpoint ---------------------------------------------------------------------------------


def last_checkpoint(config: Config) -> dict[str, Any]:
    from hftops.engine.checkpoint import CheckpointCorrupt, checkpoint_path, load_checkpoint

    path = checkpoint_path(DataPaths(config.data_dir).state)
    try:
        body = load_checkpoint(path)
    except CheckpointCorrupt as exc:
        return {"path": str(path), "available": False, "error": str(exc)}
    if body is None:
        return {"path": str(path), "available": False, "error": "no checkpoint written yet"}
    positions = [
        {
            "strategy": p.strategy_id,
            "symbol": p.symbol,
            "qty": _text(p.qty),
            "avg_price": _text(p.avg_price),
            "realized_pnl": _text(p.realized_pnl),
            "fees": _text(p.fees),
            "cost_known": p.cost_known,
        }
        for p in body.positions
    ]
    return {
        "path": str(path),
        "available": True,
        "error": None,
        "written_at": datetime.fromtimestamp(body.written_ns / 1e9, UTC).isoformat(),
        "trading_date": body.trading_date.isoformat(),
        "peak_equity": _text(body.peak_equity),
        "positions": positions,
    }


# -- reports ---------------------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def _net(rows: list[dict[str, Any]]) -> dict[str, str]:
    net: dict[str, Decimal] = {}
    for row in rows:
        net[row["symbol"]] = net.get(row["symbol"], Decimal(0)) + (_dec(row["qty"]) or Decimal(0))
    return {symbol: _text(qty) for symbol, qty in sorted(net.items())}


def positions_report(
    reading: EngineReading, broker: dict[str, Any], checkpoint: dict[str, Any] | None
) -> tuple[dict[str, Any], int]:
    """Per symbol the engine's net quantity beside the broker's; per strategy and symbol the position.
    Exit 0 when every symbol matches, 1 on a mismatch or no broker answer, 2 when the engine is not live."""
    stats = reading.stats or {}
    rows: list[dict[str, Any]] = list(stats.get("positions") or []) if reading.live else []
    engine_net: dict[str, str] | None = dict(stats.get("net") or {}) if reading.live else None
    saved = (checkpoint or {}).get("positions") if checkpoint and checkpoint.get("available") else None
    checkpoint_net = _net(saved) if saved is not None else None
    held = broker.get("positions") or {}
    symbols = sorted({*(engine_net or {}), *held, *(checkpoint_net or {}), *(r["symbol"] for r in rows)})
    per_symbol = {}
    for symbol in symbols:
        mine = None if engine_net is None else engine_net.get(symbol, "0")
        theirs = held.get(symbol, {}).get("qty", "0") if broker.get("available") else None
        match = None if mine is None or theirs is None else _dec(mine) == _dec(theirs)
        entry = {"engine_qty": mine, "broker_qty": theirs, "match": match}
        if engine_net is None and checkpoint_net is not None:
            entry["checkpoint_qty"] = checkpoint_net.get(symbol, "0")
        per_symbol[symbol] = entry
    report = {
        "engine": reading.header(),
        "source": "engine" if reading.live else ("checkpoint" if saved is not None else "none"),
        "symbols": per_symbol,
        "positions": rows if reading.live else (saved or []),
        "broker": broker,
        "checkpoint": checkpoint,
    }
    if not reading.live:
        code = EXIT_NOT_RUNNING
    elif not broker.get("available") or any(v["match"] is False for v in per_symbol.values()):
        code = EXIT_DEGRADED
    else:
        code = EXIT_OK
    report["all_match"] = code == EXIT_OK
    return report, code


PNL_KEYS = ("realized_pnl", "unrealized_pnl", "fees", "equity", "peak_equity")


def pnl_report(reading: EngineReading, last_stored: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    stats = reading.stats or {}
    live = {key: stats.get(key) for key in PNL_KEYS} if reading.live else None
    return {"engine": reading.header(), "pnl": live, "last_stored": last_stored}, (
        EXIT_OK if reading.live else EXIT_NOT_RUNNING
    )


def strategies_report(reading: EngineReading, config: Config) -> tuple[dict[str, Any], int]:
    if reading.live:
        strategies = list((reading.stats or {}).get("strategies") or [])
        return {"engine": reading.header(), "strategies": strategies}, EXIT_OK
    from hftops.engine.loader import active_strategy_configs

    configured = [
        {
            "id": s.id,
            "class": s.path,
            "symbols": list(s.symbols),
            "params": {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in s.params.items()},
            "state": "not running",
        }
        for s in active_strategy_configs(config)
    ]
    return {"engine": reading.header(), "strategies": configured}, EXIT_NOT_RUNNING


def engine_section(components: Mapping[str, Any], flow: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The `engine` key of `trading status`: strategies, open orders, positions, equity of the running engine."""
    component = components.get(ENGINE) or {}
    state = component.get("state", "unknown")
    if state != "running":
        return {"running": False, "state": state, "detail": component.get("detail") or ""}
    stats = (flow.get("stats") or {}).get(ENGINE)
    age = _stats_age(stats, time.time() if now is None else now)
    problem = engine_problem(None, True, stats, age)
    if problem:
        return {"running": True, "state": "not answering", "detail": problem}
    assert stats is not None
    return {
        "running": True,
        "state": stats.get("state"),
        "ready_to_trade": stats.get("ready_to_trade"),
        "refusing_reason": stats.get("refusing_reason"),
        "stats_age_s": None if age is None else round(age, 3),
        "strategies": [
            {
                "id": s.get("id"),
                "state": s.get("state"),
                "symbols": s.get("symbols"),
                "open_orders": s.get("open_orders"),
            }
            for s in stats.get("strategies") or []
        ],
        "open_orders": stats.get("open_orders"),
        "positions": [p for p in stats.get("positions") or [] if _dec(p.get("qty"))],
        "net": stats.get("net"),
        **{key: stats.get(key) for key in PNL_KEYS},
    }


# -- stored history (the recorder's tables) ----------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


ORDER_COLUMNS = (
    "client_order_id",
    "strategy",
    "symbol",
    "side",
    "type",
    "qty",
    "price",
    "filled_qty",
    "avg_fill_price",
    "status",
    "updated",
    "reason",
)
# The latest update of each order: by time, then by how far along the state machine it is, then filled qty.
_LATEST = (
    "(time, multiIf(status IN ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED'), 3, status = 'PARTIALLY_FILLED', 2, "
    "status = 'ACK', 1, 0), filled_qty)"
)


def recent_orders(config: Config, limit: int = 20) -> dict[str, Any]:
    """The last `limit` orders from the `orders` table, each in its latest state."""
    from hftops.control.dataflow import query_rows

    sql = (
        f"SELECT client_order_id, any(strategy_id), any(symbol), any(side), any(order_type), any(qty), any(price), "
        f"argMax(filled_qty, {_LATEST}), argMax(avg_fill_price, {_LATEST}), argMax(status, {_LATEST}), "
        f"toString(max(time)) AS updated, argMax(reason, {_LATEST}) FROM orders "
        f"WHERE venue = {_quote(config.venue.name)} GROUP BY client_order_id ORDER BY updated DESC LIMIT {int(limit)}"
    )
    try:
        rows = query_rows(config, sql, direct=True)
    except Exception as exc:  # the reader's errors name the recorder / store and the fix
        return {"available": False, "error": f"orders table not readable: {exc}", "orders": []}
    return {"available": True, "error": None, "orders": [dict(zip(ORDER_COLUMNS, row, strict=True)) for row in rows]}


def last_stored_pnl(config: Config) -> dict[str, Any] | None:
    """The newest row of the `pnl` table (what the engine last said), None when there is none or no reader."""
    from hftops.control.dataflow import query_rows

    sql = (
        "SELECT toString(time), realized_pnl, unrealized_pnl, fees, equity, peak_equity FROM pnl "
        f"WHERE venue = {_quote(config.venue.name)} ORDER BY time DESC LIMIT 1"
    )
    try:
        rows = query_rows(config, sql, direct=True)
    except Exception:  # no recorder and no database yet: there is simply nothing stored to show
        return None
    if not rows:
        return None
    return dict(zip(("time", *PNL_KEYS), rows[0], strict=True))
