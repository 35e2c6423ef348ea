"""Which components the supervisor runs, in what order, and how each is started and judged ready."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hftops.bus.valkey_server import ValkeySpec
from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.model.components import API, COLLECTOR, COMPONENT_NAMES, ENGINE, RECORDER, REDIS, VENUE

# Test-only hook: `HFT_TEST_COMPONENT_ARGV_<NAME>='["python", "fake.py"]'` replaces a component's command
# line (and enables an optional component such as the engine). Tests use it to run components that ignore
# SIGTERM, crash at once or stop their heartbeat; operators never need it.
TEST_ARGV_ENV_PREFIX = "HFT_TEST_COMPONENT_ARGV_"


class Readiness(StrEnum):
    NOTIFY = "notify"  # READY=1 over the component's NOTIFY_SOCKET, then WATCHDOG=1 heartbeats
    REDIS_PING = "redis_ping"  # answers PING and has finished loading its AOF; heartbeat = PING
    IN_PROCESS = "in_process"  # served inside the supervisor itself (the control API)


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    description: str
    readiness: Readiness
    argv: tuple[str, ...] = ()
    module: str | None = None

    @property
    def is_process(self) -> bool:
        return self.readiness is not Readiness.IN_PROCESS


@dataclass(frozen=True)
class Registry:
    """The enabled components in start order, and why any known component is not run."""

    components: tuple[ComponentSpec, ...]
    skipped: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(self.components)

    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.components)

    def get(self, name: str) -> ComponentSpec | None:
        return next((spec for spec in self.components if spec.name == name), None)

    def stop_order(self) -> tuple[ComponentSpec, ...]:
        return tuple(reversed(self.components))


def python_argv(module: str) -> tuple[str, ...]:
    return (sys.executable, "-m", module)


def _module_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


@dataclass(frozen=True)
class _PythonEntry:
    name: str
    module: str
    description: str
    # None: always run; otherwise returns why it is skipped for this config (or None to run it).
    skip_reason: Callable[[Config], str | None] | None = None
    optional: bool = False  # skipped while its module is not installed (components of later issues)


# One entry per Python component, in start order. Adding a component is one line here (and its name in
# hftops.model.components).
_PYTHON_COMPONENTS: tuple[_PythonEntry, ...] = (
    _PythonEntry(
        VENUE,
        "hftops.venue",
        "simulated Binance-compatible venue",
        lambda c: None if c.venue.kind == "simulated" else f"venue.kind is {c.venue.kind!r}",
    ),
    _PythonEntry(COLLECTOR, "hftops.pipeline.collector", "producer: venue -> Redis streams"),
    _PythonEntry(RECORDER, "hftops.pipeline.recorder", "consumer: Redis streams -> ClickHouse"),
    _PythonEntry(ENGINE, "hftops.engine", "strategies, gates, broker adapter", optional=True),
)


def redis_spec(config: Config) -> ComponentSpec:
    argv = ValkeySpec(
        port=config.redis.port,
        data_dir=DataPaths(config.data_dir).redis,
        host=config.redis.host,
        appendfsync=config.redis.appendfsync,
    ).argv()
    return ComponentSpec(REDIS, "bundled valkey-server (AOF on)", Readiness.REDIS_PING, tuple(argv))


def _test_argv(name: str, environ: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = environ.get(TEST_ARGV_ENV_PREFIX + name.upper())
    if not raw:
        return None
    argv = json.loads(raw)
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"{TEST_ARGV_ENV_PREFIX}{name.upper()} must be a JSON list of strings")
    return tuple(argv)


def build_registry(config: Config, environ: Mapping[str, str] | None = None) -> Registry:
    """The components this config runs, in dependency order (hftops.model.components)."""
    environ = os.environ if environ is None else environ
    specs: list[ComponentSpec] = []
    skipped: dict[str, str] = {}
    if config.redis.url is None:
        specs.append(redis_spec(config))
    else:
        skipped[REDIS] = "redis.url is set: an external Redis is used"
    for entry in _PYTHON_COMPONENTS:
        override = _test_argv(entry.name, environ)
        reason = entry.skip_reason(config) if entry.skip_reason else None
        if reason is None and entry.optional and override is None and not _module_installed(entry.module):
            reason = f"{entry.module} is not installed yet"
        if reason is not None:
            skipped[entry.name] = reason
            continue
        specs.append(
            ComponentSpec(
                entry.name,
                entry.description,
                Readiness.NOTIFY,
                python_argv(entry.module),
                module=entry.module,
            )
        )
    specs.append(ComponentSpec(API, f"control API on {config.api.host}:{config.api.port}", Readiness.IN_PROCESS))

    enabled: list[ComponentSpec] = []
    for spec in specs:
        if not config.component(spec.name).enabled:
            skipped[spec.name] = f"supervisor.components.{spec.name}.enabled is false"
            continue
        override = _test_argv(spec.name, environ)
        enabled.append(replace(spec, argv=override) if override and spec.is_process else spec)
    enabled.sort(key=lambda spec: COMPONENT_NAMES.index(spec.name))
    return Registry(tuple(enabled), skipped)
