import json
from pathlib import Path

from hftops.control.logview import format_entry, tail


def _write(path: Path, entries: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"timestamp": ts, "event": ev, "level": "info"}) + "\n" for ts, ev in entries))


def test_entries_are_merged_in_time_order(tmp_path: Path) -> None:
    _write(tmp_path / "collector.log", [("2026-01-01T00:00:01Z", "c1"), ("2026-01-01T00:00:03Z", "c3")])
    _write(tmp_path / "recorder.log", [("2026-01-01T00:00:02Z", "r2"), ("2026-01-01T00:00:04Z", "r4")])
    (tmp_path / "recorder.out").write_text("not a log\n")
    assert [e["event"] for e in tail(tmp_path, None, 10)] == ["c1", "r2", "c3", "r4"]
    assert [e["event"] for e in tail(tmp_path, None, 2)] == ["c3", "r4"]
    assert [e["source"] for e in tail(tmp_path, "recorder", 10)] == ["recorder", "recorder"]


def test_rotated_files_come_first_and_garbage_is_kept(tmp_path: Path) -> None:
    _write(tmp_path / "venue.log.1", [("2026-01-01T00:00:01Z", "old")])
    _write(tmp_path / "venue.log", [("2026-01-01T00:00:02Z", "new")])
    with open(tmp_path / "venue.log", "a") as fh:
        fh.write("Traceback (most recent call last)\n")
    events = [e["event"] for e in tail(tmp_path, "venue", 10)]
    assert events[0].startswith("Traceback") or events[:2] == ["old", "new"]
    assert "old" in events and "new" in events and any(e.startswith("Traceback") for e in events)
    assert "venue" in format_entry(tail(tmp_path, "venue", 1)[0])


def test_follow_yields_new_entries_as_they_are_written(tmp_path: Path) -> None:
    from hftops.control.logview import follow

    _write(tmp_path / "collector.log", [("2026-01-01T00:00:01Z", "old")])
    stream = follow(tmp_path, None, poll_s=0.01)
    with open(tmp_path / "collector.log", "a") as fh:
        fh.write(json.dumps({"timestamp": "2026-01-01T00:00:05Z", "event": "new"}) + "\n")
        fh.write('{"timestamp": "2026-01-01T00:00:06Z", "event": "half')  # not complete yet: held back
    assert next(stream)["event"] == "new"
    with open(tmp_path / "collector.log", "a") as fh:
        fh.write('"}\n')
    assert next(stream)["event"] == "half"
