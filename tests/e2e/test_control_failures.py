"""Stop timeouts, stale and reused PID files, a dead supervisor, crash loops, a failing start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil

from hftops.config.paths import DataPaths
from hftops.control.audit import AuditLog
from hftops.control.pidfiles import PidFiles
from tests.integration.control.fakes import managed_platform
from tests.support.cli import trading
from tests.support.processes import process_gone
from tests.support.waiting import wait_for


def _audit(platform, event: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e for e in AuditLog(DataPaths(platform.config.data_dir).audit).entries() if e["event"] == event]


def test_a_component_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    # The default stop timeout (10 s) is the contract operators rely on, so the test uses it unchanged.
    with managed_platform(tmp_path, {}, collector=["--mode", "ignore-term"]) as (platform, env):
        assert trading(platform, "start", env=env).returncode == 0
        pid = json.loads(trading(platform, "status", "--json", env=env).stdout)["components"]["collector"]["pid"]
        result = trading(platform, "stop", "--json", env=env)
        assert result.returncode == 3, result.stdout + result.stderr
        report = json.loads(result.stdout)
        step = next(s for s in report["steps"] if s["component"] == "collector")
        assert step["forced"] and 9.0 <= step["duration_s"] <= 11.0
        assert report["forced"] == ["collector"]
        forced = _audit(platform, "FORCED_KILL")
        assert len(forced) == 1 and forced[0]["args"]["pid"] == pid and forced[0]["args"]["component"] == "collector"
        assert process_gone(pid)
        assert trading(platform, "start", env=env).returncode == 0  # the next start works
        # emergency-stop does not wait for a SIGTERM that will be ignored
        assert trading(platform, "emergency-stop", "--yes", env=env).returncode == 0


def test_a_reused_pid_is_not_signalled_and_stale_files_are_cleaned(tmp_path: Path) -> None:
    with managed_platform(tmp_path) as (platform, env):
        paths = DataPaths(platform.config.data_dir).ensure()
        stranger = subprocess.Popen(["sleep", "60"])
        try:
            pidfiles = PidFiles(paths.run)
            record = pidfiles.write("collector", stranger.pid)
            pidfiles.path("collector").write_text(
                replace(
                    record,
                    create_time=record.create_time - 1000,
                    cmdline=(sys.executable, "-m", "hftops.pipeline.collector"),
                ).to_json()
            )
            stopped = trading(platform, "stop", env=env)
            assert stopped.returncode == 0 and "nothing is running" in stopped.stdout
            assert stranger.poll() is None, "an unrelated process was signalled"
            pidfiles.path("collector").write_text(replace(record, create_time=record.create_time - 1000).to_json())
            assert trading(platform, "start", env=env).returncode == 0
            assert stranger.poll() is None
            stale = _audit(platform, "STALE_PID_FILE")
            assert stale and stale[0]["args"] == {"component": "collector", "pid": stranger.pid}
            live = PidFiles(paths.run).live("collector")
            assert live is not None and live.pid != stranger.pid
        finally:
            stranger.kill()
            stranger.wait()


def test_stop_works_through_pid_files_when_the_supervisor_died(tmp_path: Path) -> None:
    with managed_platform(tmp_path) as (platform, env):
        assert trading(platform, "start", env=env).returncode == 0
        status = json.loads(trading(platform, "status", "--json", env=env).stdout)
        os.kill(status["supervisor"]["pid"], signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(status["supervisor"]["pid"]), timeout_s=5)
        orphaned = json.loads(trading(platform, "status", "--json", env=env).stdout)
        assert orphaned["exit_code"] == 1 and orphaned["supervisor"]["phase"] == "down"
        assert orphaned["components"]["collector"]["state"] == "running"
        assert orphaned["components"]["collector"]["watchdog"] == "unsupervised"
        refused = trading(platform, "start", env=env)
        assert refused.returncode == 1 and "without a supervisor" in refused.stderr
        stopped = trading(platform, "stop", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "PID files" in stopped.stdout
        for name in ("redis", "venue", "collector", "recorder"):
            pid = status["components"][name]["pid"]
            assert process_gone(pid)
        assert [e["event"] for e in AuditLog(DataPaths(platform.config.data_dir).audit).entries()][
            -1
        ] == "STATE_SNAPSHOT"


def test_crash_loop_backs_off_and_is_reported_exhausted(tmp_path: Path) -> None:
    overrides = {"supervisor": {"backoff_initial_s": 0.25, "start_limit_burst": 4, "start_limit_interval_s": 60}}
    with managed_platform(tmp_path, overrides, collector=["--mode", "crash", "--after", "0.05"]) as (
        platform,
        env,
    ):
        assert trading(platform, "start", env=env).returncode == 0

        def exhausted() -> bool:
            return bool(_audit(platform, "BACKOFF_EXHAUSTED"))

        wait_for(exhausted, timeout_s=20, what="BACKOFF_EXHAUSTED")
        crashes = _audit(platform, "CRASH")
        restarts = _audit(platform, "RESTART")
        assert len(crashes) == 4 and len(restarts) == 3

        def at(entry: dict) -> float:
            from datetime import datetime

            return datetime.fromisoformat(entry["at"]).timestamp()

        observed = [at(r) - at(c) for c, r in zip(crashes, restarts, strict=False)]
        for seen, expected in zip(observed, (0.25, 0.5, 1.0), strict=True):
            assert expected - 0.02 <= seen <= expected + 0.5, observed
        status = json.loads(trading(platform, "status", "--json", env=env).stdout)
        collector = status["components"]["collector"]
        assert collector["state"] == "failed" and collector["detail"] == "failed (backoff exhausted)"
        assert collector["restarts"] == 3 and status["exit_code"] == 1


def test_a_failed_start_names_the_component_and_shows_its_log(tmp_path: Path) -> None:
    with managed_platform(tmp_path, recorder=["--mode", "exit-now", "--exit-code", "9"]) as (platform, env):
        t0 = time.monotonic()
        result = trading(platform, "start", env=env)
        assert result.returncode == 1
        assert "recorder" in result.stderr and "exited with code 9" in result.stderr
        assert "recorder.out" in result.stderr
        assert time.monotonic() - t0 < 15
        status = json.loads(trading(platform, "status", "--json", env=env).stdout)
        assert status["exit_code"] == 2  # rolled back: nothing left running
