"""The on-disk cache of a calendar's sessions: a warm start answers from it without importing exchange_calendars,
and a damaged file, another exchange_calendars or an unwritable directory never changes an answer."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from hftops.ops.trading_days import TradingDays, calendars_fingerprint

DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(0, 365, 3)]


def answers(days: TradingDays) -> list[bool]:
    return [days.is_session(day) for day in DAYS]


@pytest.fixture(scope="module")
def truth() -> list[bool]:
    return answers(TradingDays("XTAI"))


def test_a_year_computed_once_is_answered_from_the_file(tmp_path: Path, truth: list[bool]) -> None:
    first = TradingDays("XTAI", tmp_path)
    assert answers(first) == truth and first.cache_hits == 0
    body = json.loads((tmp_path / "XTAI-2026.json").read_text())
    assert body["source"] == calendars_fingerprint() and "2026-11-20" in body["sessions"]
    second = TradingDays("XTAI", tmp_path)
    assert answers(second) == truth and second.cache_hits == 1


def test_a_warm_answer_does_not_import_exchange_calendars(tmp_path: Path, truth: list[bool]) -> None:
    TradingDays("XTAI", tmp_path).is_session(date(2026, 11, 20))  # writes the cache
    probe = (
        "import sys, datetime; from hftops.ops.trading_days import TradingDays; "
        f"d = TradingDays('XTAI', __import__('pathlib').Path({str(tmp_path)!r})); "
        "print(d.is_session(datetime.date(2026, 11, 20)), d.is_session(datetime.date(2026, 11, 21)), "
        "'exchange_calendars' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "False", "False", "False"]


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        json.dumps({"calendar": "XTAI", "year": 2026, "source": "another install", "sessions": ["2026-11-21"]}),
        json.dumps({"calendar": "XTAI", "year": 2026}),
        json.dumps({"calendar": "XTAI", "year": 2026, "source": calendars_fingerprint(), "sessions": ["someday"]}),
        json.dumps([1, 2]),
    ],
)
def test_a_damaged_or_foreign_file_is_computed_again(tmp_path: Path, truth: list[bool], damage: str) -> None:
    (tmp_path / "XTAI-2026.json").write_text(damage)
    days = TradingDays("XTAI", tmp_path)
    assert answers(days) == truth and days.cache_hits == 0
    assert json.loads((tmp_path / "XTAI-2026.json").read_text())["source"] == calendars_fingerprint()


def test_an_unwritable_cache_still_answers(tmp_path: Path, truth: list[bool]) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    assert answers(TradingDays("XTAI", blocked / "calendars")) == truth


def test_a_year_the_calendar_cannot_produce_is_not_cached(tmp_path: Path) -> None:
    days = TradingDays("NO-SUCH-CALENDAR", tmp_path)
    assert not days.is_session(date(2026, 11, 20)) and days.load_errors == 1  # fail closed
    assert not list(tmp_path.iterdir())
