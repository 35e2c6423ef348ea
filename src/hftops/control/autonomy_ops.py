"""`trading halt|rearm` and the API's halt/rearm: through the running engine (its command channel) when one
holds the autonomy state, else on the persisted state itself, which the next engine boot honours.

Who holds the state is decided by the engine's lock (`state/autonomy.lock`), not by guessing from a timeout:
an offline change holds that lock while it writes, so an engine starting meanwhile waits for it.
"""

from __future__ import annotations

from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control.engine_link import EngineCommandError, engine_command
from hftops.ops.autonomy_state import RearmRefused
from hftops.ops.autonomy_store import AutonomyStore
from hftops.ops.manual_rearm import EngineRunning, halt_offline, rearm_offline

COMMAND_TIMEOUT_S = 5.0


class AutonomyRefused(Exception):
    """Understood and refused (a condition still present, nothing to rearm, a missing operator or reason)."""


class AutonomyUnavailable(Exception):
    """An engine holds the state but did not answer; nothing was changed."""


def _store(config: Config) -> AutonomyStore:
    return AutonomyStore(DataPaths(config.data_dir).state)


def _through_engine(
    config: Config, store: AutonomyStore, cmd: str, args: dict[str, Any], operator: str, reason: str, timeout_s: float
) -> dict[str, Any]:
    try:
        return engine_command(config.redis_url, cmd, args, operator=operator, reason=reason, timeout_s=timeout_s)
    except EngineCommandError as exc:
        if exc.refused:
            raise AutonomyRefused(str(exc)) from exc
        raise AutonomyUnavailable(
            f"{exc}. The engine holds {store.lock_path}, so nothing was changed; "
            "retry, or stop the engine and run the command again"
        ) from exc


def halt(config: Config, operator: str, reason: str, *, timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
    store = _store(config)
    try:
        return halt_offline(store, operator, reason)
    except EngineRunning:
        pass
    except RearmRefused as exc:
        raise AutonomyRefused(str(exc)) from exc
    return _through_engine(config, store, "halt", {}, operator, reason, timeout_s)


def rearm(
    config: Config,
    operator: str,
    reason: str,
    *,
    strategy: str | None = None,
    force: bool = False,
    timeout_s: float = COMMAND_TIMEOUT_S,
) -> dict[str, Any]:
    store = _store(config)
    try:
        return rearm_offline(store, operator, reason, strategy, force)
    except EngineRunning:
        pass
    except RearmRefused as exc:
        raise AutonomyRefused(str(exc)) from exc
    args: dict[str, Any] = {"force": force}
    if strategy:
        args["strategy"] = strategy
    return _through_engine(config, store, "rearm", args, operator, reason, timeout_s)
