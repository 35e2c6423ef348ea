"""The `tracks:` section: defaults are valid, every bad value is refused at load naming its key (also through
`trading check`), and the YAML pitfalls (unquoted times and stock codes) are handled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hftops.config import ConfigError, load_config
from hftops.config.tracks import TrackConfig, TrackMatcher, product_roots
from hftops.model.phases import Phase

STOCK = {
    "name": "stock",
    "calendar": "XTAI",
    "timezone": "Asia/Taipei",
    "symbols": ["2330", "2317"],
    "schedule": [
        {"phase": "pre_open", "at": "08:30"},
        {"phase": "open", "at": "09:00"},
        {"phase": "close_only", "at": "13:25"},
        {"phase": "force_flat", "at": "13:29"},
        {"phase": "closed", "at": "13:30"},
    ],
}


def _load(tmp_path: Path, tracks: object) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tracks": tracks}))
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        return exc.problems
    return []


def test_default_tracks_validate_and_cover_the_default_symbols() -> None:
    config = load_config(environ={})
    names = [t.name for t in config.tracks]
    assert names == ["crypto", "stock", "futures"]
    for track in config.tracks:  # the defaults are built unvalidated: prove they would pass
        assert TrackConfig.model_validate(track.model_dump()) == track
    matcher = TrackMatcher(config.tracks)
    assert {s: matcher.tracks_of(s) for s in config.venue.symbols} == {
        "BTCUSDT": ("crypto",),
        "ETHUSDT": ("crypto",),
        "SOLUSDT": ("crypto",),
        "BNBUSDT": ("crypto",),
        "XRPUSDT": ("crypto",),
        "2330": ("stock",),
        "2317": ("stock",),
        "TXFL6": ("futures",),
        "MXFL6": ("futures",),
    }


def test_loading_the_defaults_does_not_import_exchange_calendars() -> None:
    code = (
        "import sys; from hftops.config import load_config; load_config(environ={}); "
        "print('exchange_calendars' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_issue_example_loads_with_unquoted_stock_codes(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    text = yaml.safe_dump({"tracks": [STOCK]}).replace("'2330'", "2330").replace("'2317'", "2317")
    assert "- 2330" in text
    path.write_text(text)
    config = load_config(path, environ={})
    assert config.tracks[0].symbols == ("2330", "2317")
    assert [p for p, _ in config.tracks[0].offsets()] == [
        Phase.PRE_OPEN,
        Phase.OPEN,
        Phase.CLOSE_ONLY,
        Phase.FORCE_FLAT,
        Phase.CLOSED,
    ]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            {"schedule": [{"phase": "opne", "at": "09:00"}, {"phase": "closed", "at": "10:00"}]},
            "tracks.0.schedule.0.phase",
            "unknown phase 'opne'",
        ),
        (
            {"schedule": [{"phase": "init", "at": "09:00"}, {"phase": "closed", "at": "10:00"}]},
            "tracks.0.schedule.0.phase",
            "init",
        ),
        (
            {"schedule": [{"phase": "open", "at": "9am"}, {"phase": "closed", "at": "10:00"}]},
            "tracks.0.schedule.0.at",
            "HH:MM",
        ),
        (
            {"schedule": [{"phase": "open", "at": "24:00"}, {"phase": "closed", "at": "10:00"}]},
            "tracks.0.schedule.0.at",
            "HH:MM",
        ),
        ({"calendar": "XTAX"}, "tracks.0.calendar", "unknown calendar 'XTAX'"),
        ({"timezone": "Asia/Taipie"}, "tracks.0.timezone", "unknown time zone"),
        ({"symbols": []}, "tracks.0.symbols", "at least one"),
        ({"symbols": ["btcusdt"]}, "tracks.0.symbols", "upper-case"),
        (
            {"schedule": [{"phase": "open", "at": "09:00"}, {"phase": "close_only", "at": "13:00"}]},
            "tracks.0",
            "must end with phase closed",
        ),
        (
            {"schedule": [{"phase": "open", "at": "09:00"}, {"phase": "closed", "at": "09:00"}]},
            "tracks.0",
            "schedule[1] at 09:00 does not follow",
        ),
        # a second wrap past midnight: a session longer than a day
        (
            {
                "schedule": [
                    {"phase": "open", "at": "09:00"},
                    {"phase": "close_only", "at": "08:00"},
                    {"phase": "closed", "at": "07:00"},
                ]
            },
            "tracks.0",
            "schedule[2]",
        ),
        (
            {"schedule": [{"phase": "open", "at": "09:00"}, {"phase": "closed", "at": "09:30"}], "bogus": 1},
            "tracks.0.bogus",
            "unknown key",
        ),
    ],
)
def test_bad_track_is_refused_naming_the_key(tmp_path: Path, change: dict[str, object], key: str, words: str) -> None:
    problems = _load(tmp_path, [{**STOCK, **change}])
    assert any(p.startswith(key + ":") and words in p for p in problems), problems


def test_unquoted_time_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tracks": [STOCK]}).replace("'13:25'", "13:25"))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert any("tracks.0.schedule.2.at" in p and 'quote it, e.g. at: "13:25"' in p for p in err.value.problems)


def test_duplicate_track_names_are_refused(tmp_path: Path) -> None:
    problems = _load(tmp_path, [STOCK, {**STOCK, "symbols": ["2454"]}])
    assert any(p.startswith("tracks:") and "['stock'] appear more than once" in p for p in problems), problems


def test_overnight_schedule_validates_and_places_entries_on_the_next_day(tmp_path: Path) -> None:
    night = {
        **STOCK,
        "name": "night",
        "schedule": [
            {"phase": "pre_open", "at": "14:50"},
            {"phase": "open", "at": "15:00"},
            {"phase": "close_only", "at": "04:55"},
            {"phase": "closed", "at": "05:00"},
        ],
    }
    assert _load(tmp_path, [night]) == []
    track = TrackConfig.model_validate(night)
    assert [m for _, m in track.offsets()] == [890, 900, 1440 + 295, 1440 + 300]


def test_empty_schedule_is_open_all_day() -> None:
    track = TrackConfig.model_validate({"name": "c", "symbols": ["*USDT"]})
    assert track.calendar == "24/7"
    assert track.offsets() == ((Phase.OPEN, 0), (Phase.CLOSED, 1440))


def test_product_roots_of_contract_codes() -> None:
    assert product_roots("TXFL6") == ("TXF", "TX")
    assert product_roots("MXFA7") == ("MXF", "MX")
    assert product_roots("2330") == ()
    assert product_roots("BTCUSDT") == ()
    assert product_roots("TXFM6") == ()  # M is not a futures delivery month letter


def test_trading_check_names_a_bad_track_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var"), "tracks": [{**STOCK, "calendar": "NOPE"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "tracks.0.calendar" in result.stderr and "unknown calendar 'NOPE'" in result.stderr, result.stderr


def test_trading_check_warns_about_symbols_in_no_track_and_bad_reconnect_hours(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var"), "venue": {"symbols": ["BTCUSDT", "2454"]}}))
    env = {"PATH": "/usr/bin:/bin", "HFT_RECONNECT_HOURS": "8:30-13:35"}
    result = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    out = result.stdout
    assert "venue.symbols ['2454'] are in no track" in out, out
    assert "HFT_RECONNECT_HOURS='8:30-13:35': expected HH:MM-HH:MM" in out
    assert "stock (XTAI Asia/Taipei 08:30-13:30): 2330, 2317" in out
    assert result.returncode == 1


def test_tracks_from_the_environment() -> None:
    config = load_config(environ={"HFT_TRACKS": '[{name: crypto, calendar: "24/7", symbols: ["*USDT"]}]'})
    assert [(t.name, t.symbols) for t in config.tracks] == [("crypto", ("*USDT",))]
    with pytest.raises(ConfigError, match=r"tracks.0.calendar: .*unknown calendar '24/8'"):
        load_config(environ={"HFT_TRACKS": '[{name: c, calendar: "24/8", symbols: ["*USDT"]}]'})
