"""`trading check`, `query` and `verify` as an operator runs them: a real subprocess, exit codes, messages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hftops.store.chdb_store import ChdbStore, chdb_locked
from hftops.store.ddl import TRADE_INSERT_COLUMNS
from tests.support.http_stub import JsonEndpoints
from tests.support.platform import TestPlatform as Platform
from tests.support.ports import free_port

TRADING = str(Path(sys.executable).parent / "trading")


def run(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRADING, *args], env=platform.env(), capture_output=True, text=True, timeout=60)


def test_check_good_config(platform: Platform) -> None:
    result = run(platform, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"config OK: {platform.config_path}" in result.stdout
    assert str(platform.data_dir) in result.stdout
    assert f"recorder.query_port {platform.config.recorder.query_port}" in result.stdout
    assert "embedded valkey-server" in result.stdout and "embedded chDB" in result.stdout


def test_check_names_every_bad_key(platform: Platform, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    tree = {"venue": {"symbols": ["btc"], "colour": "red"}, "simulator": {"rate": -5}}
    bad.write_text(yaml.safe_dump(tree))
    result = run(platform, "check", "--config", str(bad))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"config INVALID: {bad}" in output
    for key in ("venue.symbols", "venue.colour", "simulator.rate"):
        assert key in output
    assert "unknown key" in output


def test_check_env_override_is_validated(platform: Platform) -> None:
    env = platform.env(HFT_RECORDER__QUERY_PROT="1")
    result = subprocess.run([TRADING, "check"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "HFT_RECORDER__QUERY_PROT" in result.stderr


def test_check_port_clash_and_data_dir(platform: Platform) -> None:
    platform.update({"api": {"port": platform.config.simulator.ws_port}})
    result = run(platform, "check")
    assert result.returncode == 1
    assert "simulator.ws_port and api.port: all use port" in result.stdout

    platform.update({"api": {"port": free_port()}})
    (platform.root / "afile").write_text("")
    platform.update({"data_dir": str(platform.root / "afile")})
    result = run(platform, "check")
    assert result.returncode == 1
    assert "data_dir:" in result.stdout and "not a directory" in result.stdout


def test_check_warns_about_a_port_in_use(platform: Platform) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", platform.config.recorder.query_port))
        holder.listen()
        result = run(platform, "check")
    assert result.returncode == 0
    assert f"warning: recorder.query_port: port {platform.config.recorder.query_port}" in result.stdout


def test_check_explain_lists_every_key(platform: Platform) -> None:
    result = run(platform, "check", "--explain")
    assert result.returncode == 0
    assert "recorder.query_port = 9103  [int]  (env HFT_RECORDER__QUERY_PORT)" in result.stdout
    assert "venue.ws_url = None" in result.stdout
    assert "supervisor.components.<name>.enabled = True" in result.stdout


def test_query_refuses_writes(platform: Platform) -> None:
    result = run(platform, "query", "DROP TABLE market_trades")
    assert result.returncode == 1
    assert "query refused" in result.stderr and "'DROP'" in result.stderr


def test_verify_with_nothing_running_says_what_to_start(platform: Platform) -> None:
    result = run(platform, "verify", "--json")
    assert result.returncode == 2
    out = json.loads(result.stdout)
    assert out["balanced"] is False
    assert "venue not reachable" in out["unknown"]["published"]
    assert "cannot verify" in result.stderr


# -- query and verify against a real embedded store, recorder not running ------------------------------


@pytest.fixture
def stopped_platform(platform: Platform, valkey: Any) -> Iterator[tuple[Platform, JsonEndpoints]]:
    """Recorder down: chDB on disk (read directly), Valkey up, the venue's ground truth served."""
    platform.update({"redis": {"url": valkey.url}})
    store = ChdbStore(platform.data_dir / "clickhouse", platform.config.clickhouse.database)
    store.open()
    store.insert(
        "market_trades",
        TRADE_INSERT_COLUMNS,
        b"".join(
            b'["sim","BTCUSDT",%d,"100.5","0.01",false,1790000000000,1,1,%d,%d,1]\n' % (i, i, i) for i in range(1, 101)
        ),
        token="t1",
    )
    store.close()
    assert not chdb_locked(platform.data_dir / "clickhouse")
    venue = JsonEndpoints(
        {
            "/admin/ground-truth": {
                "venue": "sim",
                "symbols": {"BTCUSDT": {"first_id": 1, "last_id": 100, "published": 100}},
            }
        }
    )
    venue.serve(platform.config.simulator.rest_port)
    try:
        yield platform, venue
    finally:
        venue.close()


def test_query_reads_the_store_directly_when_the_recorder_is_down(stopped_platform: Any) -> None:
    platform, _ = stopped_platform
    sql = "SELECT symbol, count() AS n, max(trade_id) AS hi FROM market_trades GROUP BY symbol"
    result = run(platform, "query", sql, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [["BTCUSDT", 100, 100]]
    table = run(platform, "query", sql)
    assert "BTCUSDT" in table.stdout and "1 row(s)" in table.stdout
    csv_out = run(platform, "query", sql, "--format", "csv")
    assert csv_out.stdout.splitlines() == ["symbol,n,hi", "BTCUSDT,100,100"]
    bad = run(platform, "query", "SELECT nope FROM market_trades")
    assert bad.returncode == 1 and "query failed" in bad.stderr and "nope" in bad.stderr


def test_verify_balanced_then_missing(stopped_platform: Any) -> None:
    platform, venue = stopped_platform
    result = run(platform, "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    ledger = json.loads(result.stdout)
    assert ledger["balanced"] is True
    assert ledger["symbols"]["sim:BTCUSDT"]["stored"] == 100
    human = run(platform, "verify")
    assert human.returncode == 0 and human.stdout.strip().endswith("ledger balanced")

    venue.routes["/admin/ground-truth"]["symbols"]["BTCUSDT"].update(last_id=150, published=150)
    result = run(platform, "verify")
    assert result.returncode == 1
    assert "ledger NOT balanced: BTCUSDT missing 101-150 (50 ids)" in result.stdout
