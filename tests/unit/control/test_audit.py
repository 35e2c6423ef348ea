import itertools
import json
import multiprocessing
from pathlib import Path

from hftops.control.audit import AuditLog


def _filled(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path)
    for i in range(n):
        log.append("START", actor="alice", args={"i": i}, result={"ok": True})
    return log


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines(keepends=True)


def test_chain_links_each_entry_to_the_previous(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    entries = list(log.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    result = log.verify()
    assert result.ok and result.entries == 6


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["actor"] = "mallory"
    lines[2] = json.dumps(entry) + "\n"
    log.path.write_text("".join(lines))
    result = log.verify()
    assert not result.ok and result.line == 3 and "edited" in result.problem


def test_a_deleted_line_is_named(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = _lines(log)
    del lines[3]
    log.path.write_text("".join(lines))
    result = log.verify()
    assert not result.ok and result.line == 4 and "deleted" in result.problem


def test_reordered_lines_are_named(tmp_path: Path) -> None:
    log = _filled(tmp_path)
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("".join(lines))
    result = log.verify()
    assert not result.ok and result.line == 2


def test_deleting_the_last_line_then_appending_is_caught(tmp_path: Path) -> None:
    log = _filled(tmp_path, 3)
    lines = _lines(log)
    log.path.write_text("".join(lines[:2]) + "garbage\n")
    assert log.verify().line == 3


def _writer(path: str, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.append("RESTART", actor="proc", args={"i": i})


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    log = AuditLog(tmp_path)
    result = log.verify()
    assert result.ok, result.describe()
    assert result.entries == 160
