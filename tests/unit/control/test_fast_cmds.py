"""`trading stop` and `trading emergency-stop` without typer: the fast parser agrees with the typer commands,
and a plain command line reaching a running supervisor imports neither typer nor pydantic."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import typer

from hftops.cli.fast_cmds import (
    EMERGENCY_FLAGS,
    EMERGENCY_VALUES,
    FLAG_OPTIONS,
    VALUE_OPTIONS,
    EmergencyArgs,
    StopArgs,
    parse_emergency_args,
    parse_stop_args,
)
from hftops.cli.main import build_app
from hftops.config.paths import DataPaths
from hftops.control.instance_lock import CONTROL_SOCKET, InstanceLock
from hftops.control.latch import latch_path


def _typer_options(command: str) -> list[Any]:
    """A command's options as typer builds them (typer vendors its own click: duck-typed here)."""
    group: Any = typer.main.get_command(build_app(("control_cmds",)))
    return [p for p in group.commands[command].params if "--help" not in p.opts]


def test_the_fast_emergency_parser_knows_exactly_the_typer_commands_options() -> None:
    params = _typer_options("emergency-stop")
    assert {opt for p in params if p.is_flag for opt in p.opts} == set(EMERGENCY_FLAGS)
    assert {opt for p in params if not p.is_flag for opt in p.opts} == set(EMERGENCY_VALUES)
    fields = {**EMERGENCY_FLAGS, **EMERGENCY_VALUES}
    defaults = {fields[p.opts[0]]: p.default for p in params}
    assert EmergencyArgs() == EmergencyArgs(**defaults)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--yes"], EmergencyArgs(yes=True)),
        (["-y", "--reason", "feed_gap_halt", "--operator=ops"], EmergencyArgs(True, "feed_gap_halt", "ops")),
        (["-c", "x.yaml"], EmergencyArgs(config_path=Path("x.yaml"))),
        (["--help"], None),
        (["--yes=1"], None),
        (["-y=1"], None),
        (["--reason"], None),
        (["--operator", "no spaces allowed"], None),
    ],
)
def test_emergency_command_lines(argv: list[str], expected: EmergencyArgs | None) -> None:
    assert parse_emergency_args(argv) == expected


def test_the_fast_parser_knows_exactly_the_typer_commands_options() -> None:
    params = _typer_options("stop")
    flags = {opt for p in params if p.is_flag for opt in p.opts}
    valued = {opt for p in params if not p.is_flag for opt in p.opts}
    assert flags == set(FLAG_OPTIONS)
    assert valued == set(VALUE_OPTIONS)
    defaults = {VALUE_OPTIONS.get(p.opts[0], FLAG_OPTIONS.get(p.opts[0])): p.default for p in params}
    assert defaults == {
        "drain": False,
        "as_json": False,
        "timeout": None,
        "drain_timeout": 120.0,
        "operator": None,
        "config_path": None,
    }
    assert StopArgs() == StopArgs(**defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], StopArgs()),
        (["--drain", "--json"], StopArgs(drain=True, as_json=True)),
        (["--timeout", "2.5", "--drain-timeout=30"], StopArgs(timeout=2.5, drain_timeout=30.0)),
        (["--operator", "ops@desk-1", "-c", "x.yaml"], StopArgs(operator="ops@desk-1", config_path=Path("x.yaml"))),
        (["--config=/etc/hft.yaml"], StopArgs(config_path=Path("/etc/hft.yaml"))),
    ],
)
def test_plain_command_lines_are_parsed(argv: list[str], expected: StopArgs) -> None:
    assert parse_stop_args(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--drian"],
        ["extra"],
        ["--timeout"],
        ["--timeout", "--drain"],
        ["--timeout", "soon"],
        ["--timeout", "0"],
        ["--timeout", "nan"],
        ["--drain=yes"],
        ["--operator", "two words"],
        ["-c=x.yaml"],
        ["--", "--drain"],
    ],
)
def test_anything_else_goes_to_typer_which_explains_it(argv: list[str]) -> None:
    assert parse_stop_args(argv) is None


def test_typer_explains_what_the_fast_parser_left_to_it(tmp_path: Path) -> None:
    env = {**os.environ, "HFT_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    env.pop("HFT_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "hftops.cli.main", "stop", "--timeout", "soon"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Invalid value for '--timeout'" in result.stderr


REPORT = {"exit_code": 0, "duration_s": 0.5, "steps": [], "ledger_after": {"available": True, "balanced": True}}
KILLED = {"killed": {"collector": 4242}, "duration_s": 0.01, "via": "supervisor"}


class _Supervisor(BaseHTTPRequestHandler):
    """Answers a shutdown with a report and then lets go of the instance lock, like the real one; answers an
    emergency stop with what it killed, noting whether the HALT latch was already on disk."""

    protocol_version = "HTTP/1.1"
    lock: InstanceLock
    paths: DataPaths
    asked: list[tuple[str, dict[str, object], bool]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.asked.append((self.path, body, latch_path(self.paths).exists()))
        raw = json.dumps(KILLED if self.path == "/api/emergency-stop" else REPORT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()
        if self.path == "/local/shutdown":
            self.lock.release()


Asked = list[tuple[str, dict[str, object], bool]]


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[DataPaths, Asked]]:
    paths = DataPaths(tmp_path / "var")
    paths.run.mkdir(parents=True)
    lock = InstanceLock(paths.run)
    assert lock.acquire()
    asked: Asked = []
    handler = type("Handler", (_Supervisor,), {"lock": lock, "asked": asked, "paths": paths})
    server = socketserver.UnixStreamServer(str(paths.run / CONTROL_SOCKET), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield paths, asked
    server.shutdown()
    server.server_close()
    lock.release()


def _trading(paths: DataPaths, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with the import listing on; (result, modules it imported)."""
    env = {**os.environ, "HFT_DATA_DIR": str(paths.root)}
    env.pop("HFT_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hftops.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "hftops.control.client" in imported  # the import listing is what we think it is
    return result, imported


HEAVY = {"typer", "pydantic", "click", "yaml", "psutil", "redis", "httpx"}


def test_a_plain_emergency_stop_writes_the_latch_first_then_reaches_the_supervisor(
    supervisor: tuple[DataPaths, Asked],
) -> None:
    paths, asked = supervisor
    result, imported = _trading(paths, "emergency-stop", "--yes", "--operator", "ops", "--reason", "feed_gap_halt")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HALT latch written; killed {'collector': 4242}" in result.stdout
    body = {"confirm": True, "operator": "ops", "reason": "feed_gap_halt"}
    assert asked == [("/api/emergency-stop", body, True)]  # the latch was on disk before the request
    latch = json.loads(latch_path(paths).read_text())
    assert (latch["mode"], latch["reason"], latch["by"]) == ("HALT", "feed_gap_halt", "ops")
    assert not HEAVY & imported


def test_a_plain_stop_reaches_the_supervisor_without_typer(supervisor: tuple[DataPaths, Asked]) -> None:
    paths, asked = supervisor
    result, imported = _trading(paths, "stop", "--json", "--operator", "ops", "--drain")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == REPORT
    body = {"operator": "ops", "drain": True, "timeout_s": None, "drain_timeout_s": 120.0}
    assert [(path, sent) for path, sent, _ in asked] == [("/local/shutdown", body)]
    assert not HEAVY & imported
