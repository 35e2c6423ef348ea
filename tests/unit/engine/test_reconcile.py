from __future__ import annotations

import pytest

from hftops.engine.positions import PositionBook
from hftops.engine.reconcile import (
    BrokerPosition,
    DriftMonitor,
    ReconAction,
    ReconReason,
    apply_startup_reconciliation,
    decide_symbol,
    reconcile_startup,
    startup_recon_settings,
)
from hftops.model.orders import MANUAL_STRATEGY, Side
from tests.unit.engine.fakes import D, FakeClock, fill

T = D(10)


@pytest.mark.parametrize(
    ("local", "broker", "action", "reason"),
    [
        ("5", "5", ReconAction.MATCH, ReconReason.EQUAL),
        ("5", "7", ReconAction.ADOPT_BROKER, ReconReason.WITHIN_THRESHOLD),
        ("5", "15", ReconAction.ADOPT_BROKER, ReconReason.WITHIN_THRESHOLD),  # |diff| == threshold adopts
        ("5", "15.001", ReconAction.REFUSE, ReconReason.DIFF_ABOVE_THRESHOLD),
        ("-3", "-1", ReconAction.ADOPT_BROKER, ReconReason.WITHIN_THRESHOLD),
        ("3", "0", ReconAction.ADOPT_BROKER, ReconReason.WITHIN_THRESHOLD),  # broker flat, small local
        ("30", "0", ReconAction.REFUSE, ReconReason.DIFF_ABOVE_THRESHOLD),
        ("2", "-1", ReconAction.REFUSE, ReconReason.SIGN_MISMATCH),  # small but opposite sides
        ("0", "50", ReconAction.ADOPT_MANUAL, ReconReason.BROKER_ONLY),
    ],
)
def test_decisions(local: str, broker: str, action: ReconAction, reason: ReconReason) -> None:
    d = decide_symbol("BTCUSDT", D(local), D(broker), T)
    assert (d.action, d.reason) == (action, reason)
    assert d.detail.startswith("BTCUSDT:")


def test_refusal_says_exactly_why() -> None:
    result = reconcile_startup({"BTCUSDT": D(20)}, {"BTCUSDT": BrokerPosition(symbol="BTCUSDT", qty=D(5))}, T)
    assert not result.ok
    (refusal,) = result.refusals
    assert "engine 20, broker 5" in refusal.detail and "|diff| 15 > 10" in refusal.detail
    assert "HFT_STARTUP_RECON_QTY_THRESHOLD" in refusal.detail
    with pytest.raises(ValueError, match="refused trading"):
        apply_startup_reconciliation(PositionBook(), result, {})


def test_reconcile_and_apply_adoptions() -> None:
    book = PositionBook()
    book.apply_fill(fill("mm1", "BTCUSDT", Side.BUY, "4", "100"))
    book.apply_fill(fill("mom1", "ETHUSDT", Side.SELL, "2", "50"))
    book.apply_fill(fill("mom1", "SOLUSDT", Side.BUY, "1", "10"))
    book.apply_fill(fill("mom1", "SOLUSDT", Side.SELL, "1", "11"))  # flat locally: not a decision
    broker = {
        "BTCUSDT": BrokerPosition(symbol="BTCUSDT", qty=D(3), entry_price=D(100)),
        "ETHUSDT": BrokerPosition(symbol="ETHUSDT", qty=D(-2), entry_price=D(50)),
        "XRPUSDT": BrokerPosition(symbol="XRPUSDT", qty=D(-7), entry_price=D("0.5")),
        "BNBUSDT": BrokerPosition(symbol="BNBUSDT", qty=D(0)),
    }
    result = reconcile_startup(book.net(), broker, T)
    assert result.ok
    assert [(d.symbol, d.action) for d in result.decisions] == [
        ("BTCUSDT", ReconAction.ADOPT_BROKER),
        ("ETHUSDT", ReconAction.MATCH),
        ("XRPUSDT", ReconAction.ADOPT_MANUAL),
    ]
    apply_startup_reconciliation(book, result, broker)
    assert book.net_qty("BTCUSDT") == D(3) and book.qty("mm1", "BTCUSDT") == D(4)
    assert book.qty(MANUAL_STRATEGY, "BTCUSDT") == D(-1)
    manual = book.get(MANUAL_STRATEGY, "XRPUSDT")
    assert manual is not None and manual.qty == D(-7) and manual.avg_price == D("0.5") and not manual.cost_known
    assert reconcile_startup(book.net(), broker, T).decisions[0].action is ReconAction.MATCH


def test_settings_from_environment() -> None:
    assert startup_recon_settings({}) == (True, D(10))
    assert startup_recon_settings({"HFT_STARTUP_RECON_ENABLED": "0", "HFT_STARTUP_RECON_QTY_THRESHOLD": "2.5"}) == (
        False,
        D("2.5"),
    )
    for bad in ("-1", "ten", "nan"):
        with pytest.raises(ValueError, match="HFT_STARTUP_RECON_QTY_THRESHOLD"):
            startup_recon_settings({"HFT_STARTUP_RECON_QTY_THRESHOLD": bad})


def test_drift_is_debounced_reported_once_and_resolved() -> None:
    clock = FakeClock()
    monitor = DriftMonitor(persist_checks=3, clock=clock)
    local = {"BTCUSDT": D(1)}
    assert monitor.observe(local, {"BTCUSDT": D(2)}) == []
    since = clock.ns
    clock.advance(5)
    assert monitor.observe(local, {"BTCUSDT": D(2)}) == []
    clock.advance(5)
    (report,) = monitor.observe(local, {"BTCUSDT": D(2)})
    assert (report.symbol, report.checks, report.since_ns, report.resolved) == ("BTCUSDT", 3, since, False)
    assert monitor.observe(local, {"BTCUSDT": D(2)}) == []  # reported once per episode
    assert monitor.drifting == {"BTCUSDT"}
    (resolved,) = monitor.observe(local, {"BTCUSDT": D(1)})
    assert resolved.resolved and monitor.drifting == frozenset()


def test_transient_drift_is_not_reported() -> None:
    monitor = DriftMonitor(persist_checks=2, clock=FakeClock())
    assert monitor.observe({"X": D(1)}, {"X": D(0)}) == []
    assert monitor.observe({"X": D(1)}, {"X": D(1)}) == []  # fill arrived: streak reset
    assert monitor.observe({"X": D(1)}, {"X": D(0)}) == []


def test_broker_query_failures_are_not_drift() -> None:
    monitor = DriftMonitor(persist_checks=2, clock=FakeClock())
    assert monitor.observe({"X": D(1)}, {}) == []  # broker-side missing symbol = flat: drift check 1
    for _ in range(5):
        monitor.query_failed()
    assert monitor.query_failures == 5 and monitor.drifting == frozenset()
    (report,) = monitor.observe({"X": D(1)}, {})  # failures neither counted nor reset the streak
    assert report.checks == 2
