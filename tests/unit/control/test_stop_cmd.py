"""`trading stop` without typer: the fast parser agrees with the typer command, and a plain stop of a running
supervisor imports neither typer nor pydantic."""

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

from hftops.cli.main import build_app
from hftops.cli.stop_cmd import FLAG_OPTIONS, VALUE_OPTIONS, StopArgs, parse_stop_args
from hftops.config.paths import DataPaths
from hftops.control.instance_lock import CONTROL_SOCKET, InstanceLock


def _typer_stop_options() -> list[Any]:
    """The stop command's options as typer builds them (typer vendors its own click: duck-typed here)."""
    group: Any = typer.main.get_command(build_app(("control_cmds",)))
    return [p for p in group.commands["stop"].params if "--help" not in p.opts]


def test_the_fast_parser_knows_exactly_the_typer_commands_options() -> None:
    params = _typer_stop_options()
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


class _Supervisor(BaseHTTPRequestHandler):
    """Answers a shutdown request with a report and then lets go of the instance lock, like the real one."""

    protocol_version = "HTTP/1.1"
    lock: InstanceLock
    asked: list[dict[str, object]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        raw = json.dumps(REPORT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()
        self.lock.release()


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[DataPaths, list[dict[str, object]]]]:
    paths = DataPaths(tmp_path / "var")
    paths.run.mkdir(parents=True)
    lock = InstanceLock(paths.run)
    assert lock.acquire()
    asked: list[dict[str, object]] = []
    handler = type("Handler", (_Supervisor,), {"lock": lock, "asked": asked})
    server = socketserver.UnixStreamServer(str(paths.run / CONTROL_SOCKET), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield paths, asked
    server.shutdown()
    server.server_close()
    lock.release()


def test_a_plain_stop_reaches_the_supervisor_without_typer(
    supervisor: tuple[DataPaths, list[dict[str, object]]],
) -> None:
    paths, asked = supervisor
    env = {**os.environ, "HFT_DATA_DIR": str(paths.root)}
    env.pop("HFT_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hftops.cli.main", "stop", "--json", "--operator", "ops", "--drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == REPORT
    assert asked == [{"operator": "ops", "drain": True, "timeout_s": None, "drain_timeout_s": 120.0}]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "hftops.control.client" in imported  # the import listing is what we think it is
    assert not {"typer", "pydantic", "click", "yaml", "psutil", "redis", "httpx"} & imported
