"""The position flattener in the running engine against the simulated venue (valkey, venue, collector and
engine are real processes): `trading flatten` closes positions with reduce-only market orders and reports
the fills the broker confirmed; a strategy's flatten leaves other strategies' positions; one flatten per
scope; retries after refused and partial fills; a venue that refuses to fill or reports wrong positions
ends in a failed report, a critical alert and HALT - whose own flatten then closes everything."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from hftops.api.app import create_app
from hftops.control.audit import AuditLog
from hftops.control.engine_link import EngineCommandError, engine_command
from hftops.control.flatten_client import request_flatten
from hftops.control.main import build_supervisor
from hftops.model.ops_events import FlattenReport
from hftops.model.streams import OpsKind, ops_stream
from tests.conftest import ValkeyHandle
from tests.integration.engine.helpers import ENGINE_OVERRIDES, World
from tests.support.cli import trading
from tests.support.platform import TestPlatform
from tests.support.telegram_stub import TelegramStub
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

HOLDER = "hftops.engine.strategies.position_holder:PositionHolder"
LIMITS = {"max_position_qty": "10", "max_order_qty": "10"}
OVERRIDES: dict[str, Any] = {
    **ENGINE_OVERRIDES,
    "venue": {"symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"]},
    "engine": {
        **ENGINE_OVERRIDES["engine"],
        "strategies": [
            {
                "id": "h1",
                "path": HOLDER,
                "symbols": ["BTCUSDT", "ETHUSDT"],
                "limits": LIMITS,
                "params": {"positions": {"BTCUSDT": "0.010", "ETHUSDT": "-0.200"}},
            },
            {
                "id": "h2",
                "path": HOLDER,
                "symbols": ["BTCUSDT", "SOLUSDT"],
                "limits": LIMITS,
                "params": {"positions": {"BTCUSDT": "0.005", "SOLUSDT": "3"}},
            },
        ],
    },
    # nothing but the flattener's own escalation may degrade the platform in these tests (no recorder runs)
    "autonomy": {"db_stale_s": 3600, "feed_gap_s": 600, "feed_gap_halt_s": 3600},
    "flatten": {"deadline_s": 10, "retry_max_s": 0.5},
}
OPEN = {"BTCUSDT": Decimal("0.015"), "ETHUSDT": Decimal("-0.2"), "SOLUSDT": Decimal("3")}
H1 = {"BTCUSDT": Decimal("0.010"), "ETHUSDT": Decimal("-0.200")}
TOKEN = "flatten-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramStub]:
    stub = TelegramStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("flatten")
    valkey = ValkeyHandle(root / "valkey")
    built = World(TestPlatform(root, {**OVERRIDES, "redis": {"url": valkey.url}}))
    try:
        yield built
    finally:
        built.close()
        valkey.stop(kill=True)


@pytest.fixture
def engine(world: World, telegram: TelegramStub) -> Iterator[World]:
    """The engine running with every holder's position open at the venue; flat and NORMAL again after."""
    world.checkpoint.unlink(missing_ok=True)  # each test's book starts from the broker's (flat) positions
    try:
        world.start_engine(**telegram.env())
        world.wait_ready(timeout_s=30.0)
        wait_for(lambda: held(world) == OPEN, 30, what=f"positions {OPEN} open at the venue")
        yield world
    finally:
        try:
            world.venue.admin("DELETE", "/admin/fault")
            wait_for(lambda: not (world.stats() or {}).get("flatten", {}).get("running"), 40, what="flatten done")
            with contextlib.suppress(EngineCommandError):  # refused when there is nothing to rearm
                command(world, "rearm", force=True)
            if held(world):
                request_flatten(world.config.redis_url, scope="all", operator="cleanup", deadline_s=30)
        finally:
            if world.engine is not None:  # also an engine that never became ready: never leave one behind
                assert world.stop_engine(timeout=20.0) == 0  # a loaded 2-core box can be slow to flush


def held(world: World) -> dict[str, Decimal]:
    return {s: q for s, q in world.venue_positions().items() if q != 0}


def command(world: World, cmd: str, **args: Any) -> dict[str, Any]:
    return engine_command(world.config.redis_url, cmd, args, operator="pytest", reason="test", timeout_s=10)


def reports(world: World) -> list[FlattenReport]:
    entries = world.redis.xrange(ops_stream(OpsKind.FLATTEN))
    return [msgspec.msgpack.decode(fields[b"d"], type=FlattenReport) for _, fields in entries]


def report(world: World, job_id: str) -> FlattenReport:
    return wait_for(lambda: next((r for r in reports(world) if r.id == job_id), None), 30, what=f"report {job_id}")


def rows(rep: FlattenReport) -> dict[tuple[str, str], Any]:
    return {(s.symbol, s.strategy_id): s for s in rep.symbols}


def autonomy(world: World) -> dict[str, Any]:
    return (world.stats() or {}).get("autonomy") or {}


def test_flatten_all_reports_the_fills_the_broker_confirmed(engine: World) -> None:
    result = trading(engine.platform, "flatten", "--operator", "alice", "--deadline", "30", "--reason", "drill")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout.splitlines()[0] and "3 position(s) confirmed flat by the broker" in result.stdout
    assert held(engine) == {}

    rep = reports(engine)[-1]
    assert rep.ok and rep.scope == "all" and rep.trigger == "manual" and rep.operator == "alice"
    lines = rows(rep)
    assert set(lines) == {("BTCUSDT", ""), ("ETHUSDT", ""), ("SOLUSDT", "")}
    for symbol, qty in OPEN.items():
        line = lines[(symbol, "")]
        assert Decimal(line.start_qty) == qty and Decimal(line.filled) == abs(qty) == Decimal(line.submitted)
        assert Decimal(line.remaining) == 0 and not line.failed
        assert f"{symbol:<12} -" in result.stdout
    # every flatten order was a reduce-only MARKET order; BTC's net was split over the two holders
    flatten_orders = [o for o in engine.venue_orders()["orders"] if o["reduceOnly"]]
    assert {o["type"] for o in flatten_orders} == {"MARKET"} and len(flatten_orders) == 4
    assert {o["clientOrderId"].split("-")[0] for o in flatten_orders if o["symbol"] == "BTCUSDT"} == {"h1", "h2"}
    wait_for(
        lambda: all(Decimal(q) == 0 for q in (engine.stats() or {}).get("net", {"x": "1"}).values()),
        10,
        what="the engine's book flat too",
    )
    audit = [e for e in AuditLog(Path(engine.config.data_dir) / "audit").entries() if e["event"] == "FLATTEN"]
    assert audit[-1]["actor"] == "alice" and audit[-1]["result"]["job"] == rep.id
    assert audit[-1]["args"]["reason"] == "drill"


def test_strategy_scope_leaves_other_strategies_positions(engine: World) -> None:
    result = trading(engine.platform, "flatten", "--scope", "strategy", "--id", "h1", "--operator", "bob")
    assert result.returncode == 0, result.stdout + result.stderr
    assert held(engine) == {"BTCUSDT": Decimal("0.005"), "SOLUSDT": Decimal("3")}  # h2's, untouched
    rep = reports(engine)[-1]
    assert rep.ok and (rep.scope, rep.scope_id) == ("strategy", "h1")
    assert {k: Decimal(v.filled) for k, v in rows(rep).items()} == {
        ("BTCUSDT", "h1"): Decimal("0.010"),
        ("ETHUSDT", "h1"): Decimal("0.200"),
    }
    stats = wait_for(
        lambda: (
            (s := engine.stats()) and not any(p["strategy"] == "h1" and Decimal(p["qty"]) for p in s["positions"]) and s
        ),
        10,
        what="h1 flat in the book",
    )
    h2 = {p["symbol"]: Decimal(p["qty"]) for p in stats["positions"] if p["strategy"] == "h2"}
    assert h2 == {"BTCUSDT": Decimal("0.005"), "SOLUSDT": Decimal("3")}


def test_track_scope_flattens_the_symbols_the_session_governor_names(engine: World) -> None:
    unknown = trading(engine.platform, "flatten", "--scope", "track", "--id", "nope")
    assert unknown.returncode == 3 and "unknown track 'nope'" in unknown.stderr and "crypto" in unknown.stderr
    result = trading(engine.platform, "flatten", "--scope", "track", "--id", "crypto")
    assert result.returncode == 0, result.stdout + result.stderr
    rep = reports(engine)[-1]
    assert rep.ok and (rep.scope, rep.scope_id) == ("track", "crypto") and {s.symbol for s in rep.symbols} == set(OPEN)
    assert held(engine) == {}


def test_one_flatten_per_scope_and_fills_counted_not_submissions(engine: World) -> None:
    engine.venue.admin("POST", "/admin/fault", {"fault": "cap_fills", "qty": "0"})  # accepted, never filled
    first = request_flatten(engine.config.redis_url, scope="all", operator="carol", deadline_s=30, wait=False)
    with pytest.raises(EngineCommandError) as refused:
        request_flatten(engine.config.redis_url, scope="all", operator="dave", wait=False)
    assert refused.value.refused and "already running" in str(refused.value) and first.job_id in str(refused.value)
    expired = lambda: [o for o in engine.venue_orders()["orders"] if o["reduceOnly"] and o["status"] == "EXPIRED"]  # noqa: E731
    wait_for(lambda: len(expired()) >= 6, 20, what="two rounds of flatten orders expiring unfilled")
    assert held(engine) == OPEN  # submitted, not filled: nothing is reported flat
    wait_for(
        lambda: [j["id"] for j in (engine.stats() or {})["flatten"]["running"]] == [first.job_id],
        5,
        what="the first job still running, alone",
    )
    engine.venue.admin("DELETE", "/admin/fault")
    rep = report(engine, first.job_id)
    assert rep.ok and held(engine) == {}
    for (symbol, _), line in rows(rep).items():
        assert Decimal(line.filled) == abs(OPEN[symbol]) < Decimal(line.submitted), line
        assert "expired with" in line.detail


def test_retry_after_a_partial_fill(engine: World) -> None:
    engine.venue.admin("POST", "/admin/fault", {"fault": "cap_fills", "qty": "0.004", "count": 1})
    result = trading(engine.platform, "flatten", "--scope", "strategy", "--id", "h1", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rep = msgspec.convert(json.loads(result.stdout), FlattenReport)
    lines = rows(rep)
    retried = [line for line in lines.values() if Decimal(line.submitted) > abs(Decimal(line.start_qty))]
    assert len(retried) == 1 and "expired with" in retried[0].detail  # the capped order's rest was sent again
    assert {k[0]: Decimal(v.filled) for k, v in lines.items()} == {s: abs(q) for s, q in H1.items()}
    assert held(engine) == {"BTCUSDT": Decimal("0.005"), "SOLUSDT": Decimal("3")}


def test_venue_refusing_to_fill_escalates_to_halt_whose_flatten_closes_everything(
    engine: World, telegram: TelegramStub
) -> None:
    before = len(reports(engine))
    engine.venue.admin("POST", "/admin/fault", {"fault": "reject_orders"})
    result = trading(engine.platform, "flatten", "--deadline", "2", "--operator", "erin")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout.splitlines()[0]
    rep = reports(engine)[-1]
    assert not rep.ok and "3 of 3 positions not confirmed flat by the broker within 2 s" in rep.detail
    for (symbol, _), line in rows(rep).items():
        assert line.failed and Decimal(line.filled) == 0 and Decimal(line.remaining) == abs(OPEN[symbol])
        assert Decimal(line.submitted) > 0 and "-2010" in line.detail
    state = wait_for(lambda: (a := autonomy(engine)).get("mode") == "HALT" and a, 10, what="HALT")
    assert "flatten_failed" in json.dumps(state["reasons"])
    wait_for(
        lambda: any("FLATTEN FAILED" in t and "escalating to HALT" in t for t in telegram.texts()),
        10,
        what="the critical alert",
    )
    # HALT flattens everything by itself: once the venue fills again, that flatten succeeds
    engine.venue.admin("DELETE", "/admin/fault")
    halt = wait_for(
        lambda: next((r for r in reports(engine)[before:] if r.trigger == "halt" and r.ok), None),
        30,
        what="HALT's own flatten reporting success",
    )
    assert halt.scope == "all" and held(engine) == {}
    command(engine, "rearm")
    wait_for(lambda: autonomy(engine).get("mode") == "NORMAL", 10, what="NORMAL after rearm")


def test_wrong_broker_positions_are_never_confirmed(engine: World) -> None:
    # the broker reports 0.05 ETH more short than the venue really holds: what it reports is never flat
    before = len(reports(engine))
    engine.venue.admin("POST", "/admin/fault", {"fault": "position_drift", "symbol": "ETHUSDT", "qty": "-0.050"})
    job = request_flatten(engine.config.redis_url, scope="all", operator="frank", deadline_s=2)
    rep = job.report
    assert rep is not None and not rep.ok
    lines = rows(rep)
    eth = lines[("ETHUSDT", "")]
    assert eth.failed and Decimal(eth.remaining) > 0 and "-2022" in eth.detail  # reduce-only refused
    assert not lines[("BTCUSDT", "")].failed and not lines[("SOLUSDT", "")].failed
    wait_for(lambda: autonomy(engine).get("mode") == "HALT", 10, what="HALT on the unconfirmed flatten")
    engine.venue.admin("DELETE", "/admin/fault")
    wait_for(
        lambda: any(r.trigger == "halt" and r.ok for r in reports(engine)[before:]),
        30,
        what="HALT's flatten confirming flat once the broker reports the truth",
    )
    assert held(engine) == {}


def test_halt_flattens_every_position(engine: World) -> None:
    before = len(reports(engine))
    command(engine, "halt")
    wait_for(lambda: held(engine) == {}, 10, what="every position flat at the venue after HALT")
    rep = wait_for(
        lambda: next((r for r in reports(engine)[before:] if r.trigger == "halt"), None),
        10,
        what="HALT's flatten report",
    )
    assert rep.ok and {s.symbol for s in rep.symbols} == set(OPEN)
    assert command(engine, "rearm")["mode"] == "NORMAL"


async def test_api_flatten_needs_the_token_and_is_audited_once(engine: World) -> None:
    sup = build_supervisor(engine.config, environ={})
    app = create_app(sup, token=TOKEN)
    audit = AuditLog(Path(engine.config.data_dir) / "audit")

    def api_entries() -> list[dict[str, Any]]:
        return [e for e in audit.entries() if e["event"] == "API_CALL_FLATTEN"]

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            denied = await client.post("/api/flatten", json={"scope": "all"})
            assert denied.status_code == 401 and held(engine) == OPEN and api_entries() == []
            bad = await client.post("/api/flatten", json={"scope": "everything"}, headers=AUTH)
            assert bad.status_code == 422 and api_entries() == []
            refused = await client.post("/api/flatten", json={"scope": "strategy"}, headers=AUTH)
            assert refused.status_code == 409 and "needs an id" in refused.json()["error"]
            done = await client.post(
                "/api/flatten",
                json={"scope": "strategy", "id": "h2", "wait": True, "operator": "grace", "reason": "api drill"},
                headers=AUTH,
            )
            assert done.status_code == 200, done.text
            body = done.json()
            assert body["report"]["ok"] and body["report"]["trigger"] == "api"
            assert {s["symbol"] for s in body["report"]["symbols"]} == {"BTCUSDT", "SOLUSDT"}
            assert held(engine) == H1
            accepted = await client.post("/api/flatten", json={}, headers=AUTH)
            assert accepted.status_code == 202 and accepted.json()["accepted"]["scope"] == "all"
            report(engine, accepted.json()["accepted"]["id"])
    finally:
        await sup.close()
    entries = api_entries()
    assert [e["result"]["status"] for e in entries] == [409, 200, 202]  # one per accepted call, none for 401/422
    assert entries[1]["actor"].startswith("grace@") and entries[1]["result"]["ok"] is True
    assert entries[1]["args"]["reason"] == "api drill"
