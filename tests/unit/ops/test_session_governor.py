"""SessionGovernor with a controlled clock: transitions as the clock moves, force-flat on schedule and after a
restart inside FORCE_FLAT, the override file for ad-hoc closures, and what status shows."""

from __future__ import annotations

from pathlib import Path

from hftops.model.phases import Phase
from hftops.ops.session_governor import SessionGovernor
from tests.unit.ops.session_support import (
    RecordingLog,
    WallClock,
    crypto_track,
    night_track,
    stock_track,
    taipei_ns,
)


def governor(
    clock: WallClock, calls: list[str] | None = None, override: Path | None = None, log: RecordingLog | None = None
) -> SessionGovernor:
    hook = calls.append if calls is not None else None
    return SessionGovernor(
        [crypto_track(), stock_track(), night_track()],
        clock,
        override,
        on_force_flat=hook,
        symbols=("BTCUSDT", "2330", "TXFL6"),
        log=log or RecordingLog(),
    )


def moves(events: list) -> list[tuple[str, str, str, str]]:  # type: ignore[type-arg]
    return [(e.track, e.from_phase, e.to_phase, e.cause) for e in events]


def test_boot_evaluates_every_track_then_transitions_follow_the_clock() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 8, 29, 59))
    calls: list[str] = []
    gov = governor(clock, calls)
    assert moves(gov.poll()) == [
        ("crypto", "INIT", "OPEN", "boot"),
        ("stock", "INIT", "CLOSED", "boot"),
        ("night", "INIT", "CLOSED", "boot"),
    ]
    assert gov.poll() == []  # nothing due: no event, no work
    clock.advance(seconds=1)
    (event,) = gov.poll()
    assert (event.track, event.to_phase, event.cause, event.trading_day) == (
        "stock",
        "PRE_OPEN",
        "schedule",
        "2026-11-20",
    )
    assert (event.next_phase, event.next_at_ns) == ("OPEN", taipei_ns(2026, 11, 20, 9))
    assert gov.phase_of("2330") is Phase.PRE_OPEN and not gov.is_open("2330")
    clock.set(taipei_ns(2026, 11, 20, 9))
    assert moves(gov.poll()) == [("stock", "PRE_OPEN", "OPEN", "schedule")]
    assert gov.is_open("2330") and gov.is_open("BTCUSDT") and gov.phase_of("TXFL6") is Phase.CLOSED
    assert gov.transitions[("stock", "OPEN")] == 1
    assert calls == []


def test_entering_force_flat_calls_the_hook_once() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 28, 59))
    calls: list[str] = []
    gov = governor(clock, calls)
    gov.poll()
    assert gov.track_phase("stock") is Phase.CLOSE_ONLY and calls == []
    clock.advance(seconds=1)
    assert moves(gov.poll()) == [("stock", "CLOSE_ONLY", "FORCE_FLAT", "schedule")]
    assert calls == ["stock"]
    clock.advance(seconds=30)
    assert gov.poll() == [] and calls == ["stock"]  # still FORCE_FLAT: not again
    clock.advance(seconds=30)
    assert moves(gov.poll()) == [("stock", "FORCE_FLAT", "CLOSED", "schedule")]
    assert calls == ["stock"] and gov.force_flat_calls == {"stock": 1}


def test_a_restart_inside_force_flat_flattens_again() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 29))
    first: list[str] = []
    gov = governor(clock, first)
    gov.poll()
    assert first == ["stock"]
    clock.advance(seconds=20)  # the engine restarts, still inside 13:29-13:30
    second: list[str] = []
    again = governor(clock, second)
    events = again.poll()
    assert ("stock", "INIT", "FORCE_FLAT", "boot") in moves(events)
    assert second == ["stock"]


def test_overnight_force_flat_after_midnight() -> None:
    clock = WallClock(taipei_ns(2026, 11, 21, 4, 58, 59))  # Saturday morning, Friday's night session
    calls: list[str] = []
    gov = governor(clock, calls)
    gov.poll()
    assert gov.track_phase("night") is Phase.CLOSE_ONLY
    clock.advance(seconds=1)
    (event,) = gov.poll()
    assert (event.track, event.to_phase, event.trading_day) == ("night", "FORCE_FLAT", "2026-11-20")
    assert calls == ["night"]
    clock.advance(minutes=1)
    (closed,) = gov.poll()
    # the next session opens on Monday (no session opens on Saturday or Sunday)
    assert (closed.to_phase, closed.next_phase, closed.next_at_ns) == (
        "CLOSED",
        "PRE_OPEN",
        taipei_ns(2026, 11, 23, 14, 50),
    )


def test_a_clock_jump_replays_the_missed_transitions_without_a_stale_force_flat() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 24))
    calls: list[str] = []
    gov = governor(clock, calls)
    gov.poll()
    clock.set(taipei_ns(2026, 11, 20, 13, 31))  # the loop stalled across the close
    assert [m[2] for m in moves(gov.poll())] == ["CLOSE_ONLY", "FORCE_FLAT", "CLOSED"]
    assert calls == []  # FORCE_FLAT is over: the market is closed, there is nothing to flatten into


def test_a_clock_stepping_back_is_judged_afresh() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 14))
    gov = governor(clock)
    gov.poll()
    clock.set(taipei_ns(2026, 11, 20, 10))
    assert moves(gov.poll()) == [("stock", "CLOSED", "OPEN", "schedule")]


def test_override_file_closes_a_trading_day_and_reopens_when_removed(tmp_path: Path) -> None:
    override = tmp_path / "session_overrides.yaml"
    clock = WallClock(taipei_ns(2026, 11, 20, 10))
    log = RecordingLog()
    gov = governor(clock, override=override, log=log)
    gov.poll()
    assert gov.is_open("2330")
    override.write_text("closures:\n  - {date: 2026-11-20, tracks: [stock], reason: typhoon}\n")
    clock.advance(seconds=1)
    assert moves(gov.poll()) == [("stock", "OPEN", "CLOSED", "override")]
    assert gov.phase_of("2330") is Phase.CLOSED and gov.is_open("BTCUSDT")
    assert gov.snapshot()["stock"]["next_at"] == "2026-11-23T08:30:00+08:00"
    assert gov.stats()["overrides"]["closures"] == [{"date": "2026-11-20", "tracks": ["stock"], "reason": "typhoon"}]
    override.unlink()
    clock.advance(seconds=1)
    assert moves(gov.poll()) == [("stock", "CLOSED", "OPEN", "override")]


def test_override_by_calendar_closes_a_future_day_and_the_next_transition_skips_it(tmp_path: Path) -> None:
    override = tmp_path / "session_overrides.yaml"
    override.write_text("closures:\n  - date: '2026-11-23'\n    calendar: XTAI\n    reason: typhoon\n")
    clock = WallClock(taipei_ns(2026, 11, 21, 10))  # Saturday
    gov = governor(clock, override=override)
    gov.poll()
    snap = gov.snapshot()
    assert snap["stock"]["next_at"] == "2026-11-24T08:30:00+08:00"  # Monday closed: Tuesday's pre-open
    assert snap["night"]["next_at"] == "2026-11-24T14:50:00+08:00"
    assert snap["crypto"] == {**snap["crypto"], "phase": "OPEN", "next_phase": None, "next_at": None}


def test_a_bad_override_file_keeps_the_previous_closures_and_is_counted(tmp_path: Path) -> None:
    override = tmp_path / "session_overrides.yaml"
    override.write_text("closures:\n  - {date: 2026-11-20, tracks: [stock]}\n")
    clock = WallClock(taipei_ns(2026, 11, 20, 10))
    log = RecordingLog()
    gov = governor(clock, override=override, log=log)
    gov.poll()
    assert gov.phase_of("2330") is Phase.CLOSED
    override.write_text("closures:\n  - {date: 2026-11-20, tracks: [stok]}\n")
    clock.advance(seconds=1)
    assert gov.poll() == []
    assert gov.phase_of("2330") is Phase.CLOSED  # a typo does not reopen the market
    stats = gov.stats()["overrides"]
    assert stats["errors"] == 1 and "closures[0].tracks: unknown track(s) ['stok']" in stats["error"]
    assert len(log.events("session_overrides_invalid")) == 1
    clock.advance(seconds=1)
    gov.poll()
    assert gov.stats()["overrides"]["errors"] == 1  # reported once, not at every poll


def test_snapshot_has_the_status_shape() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 12))
    gov = governor(clock)
    gov.poll()
    snap = gov.snapshot()
    assert set(snap) == {"crypto", "stock", "night"}
    assert {k: snap["stock"][k] for k in ("phase", "next_phase", "next_at")} == {
        "phase": "OPEN",
        "next_phase": "CLOSE_ONLY",
        "next_at": "2026-11-20T13:25:00+08:00",
    }
    assert snap["stock"]["since"] == "2026-11-20T09:00:00+08:00"  # the scheduled open, not the boot
    assert snap["stock"]["trading_day"] == "2026-11-20"


def test_a_hook_that_raises_does_not_stop_the_clock() -> None:
    clock = WallClock(taipei_ns(2026, 11, 20, 13, 29))

    def broken(track: str) -> None:
        raise RuntimeError("flattener down")

    gov = SessionGovernor([stock_track()], clock, on_force_flat=broken, log=RecordingLog())
    gov.poll()
    assert gov.callback_errors == 1
    clock.advance(minutes=1)
    assert moves(gov.poll()) == [("stock", "FORCE_FLAT", "CLOSED", "schedule")]
