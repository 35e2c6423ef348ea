"""While a flatten job runs, its scope takes only cancels and flatten orders; requests are validated before
anything starts, naming what is wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hftops.config.flatten_margin import FlattenConfig
from hftops.model.orders import GateDecision, Intent, IntentKind, RejectReason, Side
from hftops.ops.flatten_gate import FlattenActiveGate
from hftops.ops.flatten_job import FlattenJob
from hftops.ops.position_flattener import PositionFlattener


def job(scope: str, scope_id: str = "", symbols: frozenset[str] | None = None) -> FlattenJob:
    return FlattenJob(
        id="fl1",
        scope=scope,
        scope_id=scope_id,
        trigger="manual",
        operator="",
        deadline_s=120,
        started_ns=0,
        started_mono=0.0,
        symbols=symbols,
    )


def intent(kind: IntentKind, strategy: str = "mm1", symbol: str = "BTCUSDT") -> Intent:
    return Intent(
        kind=kind,
        strategy_id=strategy,
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal("0.01"),
        client_order_id="c1" if kind is not IntentKind.NEW else None,
    )


async def test_a_running_flatten_refuses_new_orders_in_its_scope_only() -> None:
    running: dict[tuple[str, str], FlattenJob] = {}
    gate = FlattenActiveGate(running)
    assert gate.check(intent(IntentKind.NEW), None).accepted  # nothing running
    running[("strategy", "mm1")] = job("strategy", "mm1")
    refused = gate.check(intent(IntentKind.NEW), None)
    assert refused.decision is GateDecision.REJECT and refused.reason is RejectReason.FLATTEN_ONLY
    assert "flatten fl1 of strategy mm1 is running" in refused.detail
    assert gate.check(intent(IntentKind.AMEND), None).decision is GateDecision.REJECT
    assert gate.check(intent(IntentKind.CANCEL), None).accepted
    assert gate.check(intent(IntentKind.FORCE_FLAT), None).accepted
    assert gate.check(intent(IntentKind.NEW, strategy="mom1"), None).accepted  # another strategy trades on

    running.clear()
    running[("track", "stock")] = job("track", "stock", frozenset({"2330"}))
    assert not gate.check(intent(IntentKind.NEW, symbol="2330"), None).accepted
    assert gate.check(intent(IntentKind.NEW, symbol="BTCUSDT"), None).accepted
    running[("all", "")] = job("all")
    assert not gate.check(intent(IntentKind.NEW, strategy="mom1", symbol="ETHUSDT"), None).accepted


@pytest.mark.parametrize(
    ("scope", "scope_id", "trigger", "deadline", "message"),
    [
        (
            "everything",
            "",
            "manual",
            None,
            "unknown flatten scope 'everything'; use one of ['all', 'strategy', 'track']",
        ),
        ("all", "mm1", "manual", None, "scope all takes no id"),
        ("strategy", "", "manual", None, "scope strategy needs an id"),
        ("all", "", "panic", None, "unknown flatten trigger 'panic'"),
        ("all", "", "manual", 0, "deadline_s must be > 0"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    scope: str, scope_id: str, trigger: str, deadline: float | None, message: str
) -> None:
    flattener = PositionFlattener(port=None, config=FlattenConfig.model_validate({}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        flattener.request(scope, scope_id, trigger=trigger, deadline_s=deadline)
    assert flattener.running() == [] and flattener.counters["requested"] == 0
