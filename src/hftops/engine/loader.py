"""Builds strategies and limit specs from the `engine` config section (strategies by dotted path)."""

from __future__ import annotations

import importlib

from hftops.config.schema import Config, LimitsConfig, StrategyConfig
from hftops.engine.gates.limits import LimitSpec
from hftops.engine.state import EngineState
from hftops.engine.strategy import Strategy, StrategyContext


class StrategyLoadError(Exception):
    """A strategy that cannot be loaded; the message names the strategy id, the path and the fix."""


def resolve_strategy_class(path: str) -> type[Strategy]:
    """`pkg.module:Class` or `pkg.module.Class` -> the class, which must subclass Strategy."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise StrategyLoadError(f"strategy path {path!r} must look like package.module:ClassName")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyLoadError(f"strategy path {path!r}: cannot import {module_name}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type) or not issubclass(cls, Strategy):
        raise StrategyLoadError(f"strategy path {path!r}: {attr} is not a subclass of hftops.engine.strategy.Strategy")
    return cls


def active_strategy_configs(config: Config) -> list[StrategyConfig]:
    """Enabled strategies; the built-in demo defaults keep only the symbols this platform captures."""
    explicit = "strategies" in config.engine.model_fields_set
    captured = set(config.venue.symbols)
    active = []
    for spec in config.engine.strategies:
        if not spec.enabled:
            continue
        if not explicit:
            symbols = tuple(s for s in spec.symbols if s in captured)
            if not symbols:
                continue
            spec = spec.model_copy(update={"symbols": symbols})
        active.append(spec)
    return active


def load_strategies(config: Config, state: EngineState) -> list[Strategy]:
    strategies = []
    for spec in active_strategy_configs(config):
        cls = resolve_strategy_class(spec.path)
        try:
            strategies.append(cls(spec.id, spec.symbols, spec.params, StrategyContext(spec.id, state)))
        except (TypeError, ValueError, KeyError) as exc:
            raise StrategyLoadError(
                f"strategy {spec.id} ({spec.path}): bad params {spec.params}: {exc}; fix engine.strategies[{spec.id}]"
            ) from exc
    return strategies


def limit_spec(limits: LimitsConfig) -> LimitSpec:
    return LimitSpec(
        max_position_qty=limits.max_position_qty,
        max_notional=limits.max_notional,
        max_order_qty=limits.max_order_qty,
        price_band_bps=limits.price_band_bps,
        max_orders_per_s=limits.max_orders_per_s,
        order_burst=limits.order_burst,
    )


def limit_specs(config: Config) -> tuple[dict[str, LimitSpec], LimitSpec]:
    """(per-strategy overrides, default) for `build_gate_chain`."""
    default = limit_spec(config.engine.limits)
    overrides = {s.id: limit_spec(s.limits) for s in config.engine.strategies if s.limits is not None}
    return overrides, default
