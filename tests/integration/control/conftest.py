"""In-process supervisor fixtures: real valkey, real child processes (the fake component), injected sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hftops.config.schema import Config
from hftops.control.audit import AuditLog
from hftops.control.main import build_supervisor
from hftops.control.supervisor import Supervisor
from tests.support.ports import free_port


def make_config(
    tmp_path: Path,
    redis_url: str,
    *,
    enabled: tuple[str, ...] = ("collector",),
    supervisor: dict[str, Any] | None = None,
    token: str | None = None,
) -> Config:
    components: dict[str, Any] = {
        name: {"enabled": name in enabled} for name in ("venue", "collector", "recorder", "engine")
    }
    components["api"] = {"enabled": "api" in enabled}
    sup = {"heartbeat_timeout_s": 5, "ready_timeout_s": 10, "backoff_initial_s": 1, **(supervisor or {})}
    for name, extra in (sup.pop("component_overrides", None) or {}).items():
        components[name] = {**components.get(name, {}), **extra}
    return Config.model_validate(
        {
            "data_dir": str(tmp_path / "var"),
            "venue": {"symbols": ["BTCUSDT"]},
            "redis": {"url": redis_url},
            "simulator": {"ws_port": free_port(), "rest_port": free_port()},
            "recorder": {"query_port": free_port()},
            "api": {"port": free_port(), "token": token},
            "supervisor": {**sup, "components": components},
        }
    )


class Sleeps:
    """Injected backoff sleep: records each delay, then yields without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _no_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


@pytest.fixture
async def supervisors() -> AsyncIterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []

    def make(config: Config, env: dict[str, str], **kwargs: Any) -> Supervisor:
        sup = build_supervisor(config, environ=env, **kwargs)
        made.append(sup)
        return sup

    yield make
    for sup in made:  # never leave children behind, whatever the test did
        for runner in sup.runners.values():
            if runner.alive:
                await runner.kill() if runner.name != "api" else await runner.stop(2)
        await sup.close()


def events(config: Config, name: str | None = None) -> list[dict[str, Any]]:
    entries = list(AuditLog(Path(config.data_dir) / "audit").entries())
    return [e for e in entries if name is None or e["event"] == name]
