"""`trading start|status|stop|restart|logs|snapshot` end to end: real supervisor, real valkey-server,
fake venue/collector/recorder processes (the real ones are exercised in test_control_pipeline.py)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil

from hftops.config.paths import DataPaths
from hftops.control.audit import AuditLog
from hftops.control.sched import realtime_allowed
from tests.integration.control.fakes import managed_platform
from tests.support.cli import TRADING, trading
from tests.support.processes import process_gone, without_realtime_privilege


def _events(platform) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["event"] for e in AuditLog(DataPaths(platform.config.data_dir).audit).entries()]


def test_start_status_double_start_stop(tmp_path: Path) -> None:
    components: dict[str, dict[str, object]] = {"collector": {"cpu_affinity": [0]}, "recorder": {"nice": 5}}
    realtime = realtime_allowed(10)[0]  # CAP_SYS_NICE (CI runs as root); without: tests/unit/control/test_sched.py
    if realtime:
        components["redis"] = {"realtime_priority": 10}  # the real valkey-server, which starts threads at boot
    overrides = {"supervisor": {"components": components}}
    with managed_platform(tmp_path, overrides) as (platform, env):
        t0 = time.monotonic()
        started = trading(platform, "start", env=env, timeout=60)
        assert started.returncode == 0, started.stderr
        assert time.monotonic() - t0 < 10
        paths = DataPaths(platform.config.data_dir)
        assert sorted(p.name for p in paths.run.glob("*.pid")) == [
            "collector.pid",
            "recorder.pid",
            "redis.pid",
            "supervisor.pid",
            "venue.pid",
        ]
        assert oct(paths.run.stat().st_mode & 0o777) == oct(0o700)
        assert list((paths.root / "backups").glob("config-*.yaml"))

        result = trading(platform, "status", "--json", "--no-ledger", env=env)
        status = json.loads(result.stdout)
        assert result.returncode == 0, status
        assert {"components", "streams", "tables", "ledger"} <= status.keys()
        comps = status["components"]
        for name in ("redis", "venue", "collector", "recorder", "api"):
            assert comps[name]["state"] == "running", comps[name]
            assert {"state", "pid", "uptime_s", "rss_bytes", "cpu_affinity", "restarts"} <= comps[name].keys()
            assert psutil.pid_exists(comps[name]["pid"])
        assert comps["collector"]["cpu_affinity"] == [0]
        assert psutil.Process(comps["recorder"]["pid"]).nice() == 5  # and every thread it started inherits it
        assert {t.id for t in psutil.Process(comps["recorder"]["pid"]).threads()} and all(
            os.getpriority(os.PRIO_PROCESS, t.id) == 5 for t in psutil.Process(comps["recorder"]["pid"]).threads()
        )
        inherited = os.getpriority(os.PRIO_PROCESS, 0)  # nice 0 keeps the supervisor's (a host may run all at -10)
        assert psutil.Process(comps["collector"]["pid"]).nice() == inherited
        # Each component leads a session; where the kernel shares the CPU between session autogroups first,
        # the group carries the niceness too (else a niced recorder took as much CPU as one at 0).
        autogroup = Path(f"/proc/{comps['recorder']['pid']}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[-2:] == ["nice", "5"]
            assert Path(f"/proc/{comps['collector']['pid']}/autogroup").read_text().split()[-2:] == ["nice", "0"]
        assert comps["recorder"]["scheduling"] == "nice 5" and comps["collector"]["scheduling"] == f"nice {inherited}"
        if realtime:  # every thread, also those started before the supervisor could set the first one
            valkey = psutil.Process(comps["redis"]["pid"])
            assert len(valkey.threads()) > 1
            assert all(
                os.sched_getscheduler(t.id) == os.SCHED_FIFO and os.sched_getparam(t.id).sched_priority == 10
                for t in valkey.threads()
            )
            assert comps["redis"]["scheduling"] == "fifo 10"
        assert comps["engine"]["state"] == "disabled"
        assert status["redis"]["reachable"]

        again = trading(platform, "start", env=env)
        assert again.returncode == 1
        assert "already running" in again.stderr and str(comps["collector"]["pid"]) in again.stderr
        assert (
            json.loads(trading(platform, "status", "--json", env=env).stdout)["components"]["collector"]["pid"]
            == comps["collector"]["pid"]
        )  # no second consumer/producer

        restarted = trading(platform, "restart", env=env)  # ordered stop, then start
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        fresh = json.loads(trading(platform, "status", "--json", "--no-ledger", env=env).stdout)["components"]
        assert fresh["collector"]["state"] == "running" and fresh["collector"]["pid"] != comps["collector"]["pid"]
        for name in ("redis", "venue", "collector", "recorder"):
            pid = comps[name]["pid"]
            assert process_gone(pid)

        stopped = trading(platform, "stop", env=env)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "before:" in stopped.stdout and "after:" in stopped.stdout
        assert not list(paths.run.glob("*.pid"))
        assert not (paths.run / "supervisor.sock").exists()  # no control socket left that nobody answers
        stops = [e for e in _events(platform) if e.endswith("_STOP")]
        assert stops[-5:] == ["API_STOP", "RECORDER_STOP", "COLLECTOR_STOP", "VENUE_STOP", "REDIS_STOP"]
        assert _events(platform)[-2:] == ["SHUTDOWN_COMPLETE", "STATE_SNAPSHOT"]
        assert (paths.snapshots / "latest.json").exists()
        assert trading(platform, "status", "--no-ledger", env=env).returncode == 2
        assert trading(platform, "audit", "verify", env=env).returncode == 0


def test_a_realtime_priority_the_user_cannot_set_fails_the_start_naming_the_key_and_rolls_back(tmp_path: Path) -> None:
    overrides = {"supervisor": {"components": {"collector": {"realtime_priority": 5}}}}
    with managed_platform(tmp_path, overrides) as (platform, env):
        started = subprocess.run(
            [*TRADING, "start"], env=env, capture_output=True, text=True, timeout=120,
            preexec_fn=without_realtime_privilege,
        )  # fmt: skip
        assert started.returncode != 0
        out = started.stdout + started.stderr
        assert "supervisor.components.collector.realtime_priority 5 cannot be applied" in out, out
        assert "ulimit -r 5" in out and "remove the key" in out, out
        status = json.loads(trading(platform, "status", "--json", "--no-ledger", env=env).stdout)
        assert all(c["state"] != "running" for n, c in status["components"].items() if n != "api"), status


def test_logs_snapshot_and_emergency_stop_through_the_cli(tmp_path: Path) -> None:
    with managed_platform(tmp_path) as (platform, env):
        assert trading(platform, "start", env=env).returncode == 0
        logs = trading(platform, "logs", "all", "-n", "20", env=env)
        assert logs.returncode == 0 and "supervisor" in logs.stdout and "component ready" in logs.stdout
        assert trading(platform, "logs", "nosuch", env=env).returncode == 2

        snap = trading(platform, "snapshot", "--json", env=env)
        data = json.loads(snap.stdout)
        assert data["processes"]["collector"]["rss_bytes"] > 0
        assert "open_files" in data["processes"]["collector"] and "connections" in data["processes"]["redis"]
        assert "HugePages_Total" in data["hugepages"]

        status = json.loads(trading(platform, "status", "--json", env=env).stdout)
        t0 = time.monotonic()
        halted = trading(platform, "emergency-stop", "--operator", "dave", env=env)
        assert halted.returncode == 0, halted.stderr
        assert time.monotonic() - t0 < 3  # the kill itself is bounded by 1 s; the rest is CLI start-up
        for name in ("venue", "collector", "recorder"):
            pid = status["components"][name]["pid"]
            assert process_gone(pid)
        latch = json.loads((DataPaths(platform.config.data_dir).state / "autonomy_latch.json").read_text())
        assert latch["mode"] == "HALT" and latch["by"] == "dave"
        after = json.loads(trading(platform, "status", "--json", env=env).stdout)
        assert after["components"]["redis"]["state"] == "running"  # Redis and data intact
        assert after["components"]["collector"]["state"] == "emergency_stopped"
        assert after["exit_code"] == 1
        assert "EMERGENCY_STOP" in _events(platform)

        resumed = trading(platform, "start", "--operator", "dave", env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(trading(platform, "status", "--json", env=env).stdout)["exit_code"] == 0


def test_foreground_start_and_ctrl_c_stop_in_order(tmp_path: Path) -> None:
    """`make run`: the supervisor in the terminal with a live view; Ctrl-C = `trading stop`."""
    import os
    import pty
    import select
    import signal
    import sys

    from tests.support.waiting import wait_for

    with managed_platform(tmp_path) as (platform, env):
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.execve(sys.executable, [sys.executable, "-m", "hftops.cli.main", "start", "--foreground"], env)
        output = bytearray()

        def read() -> bytes:
            while select.select([fd], [], [], 0.05)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output.extend(chunk)
            return bytes(output)

        try:
            wait_for(lambda: b"platform ready" in read(), timeout_s=30, what="foreground start ready")
            status = trading(platform, "status", "--json", "--no-ledger", env=env)
            assert status.returncode == 0
            assert trading(platform, "start", env=env).returncode == 1  # the foreground one counts too
            os.kill(pid, signal.SIGINT)
            exited: list[int] = []

            def gone() -> bool:
                read()  # keep draining the terminal so the child never blocks on output
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    exited.append(os.waitstatus_to_exitcode(status))
                return bool(exited)

            wait_for(gone, timeout_s=30, what="foreground supervisor exited")
            assert exited == [0]
        finally:
            read()
            os.close(fd)
        text = bytes(output).decode(errors="replace")
        assert "stopped recorder" in text and "stopped redis" in text
        assert text.index("stopped recorder") < text.index("stopped collector") < text.index("stopped redis")
        assert "SHUTDOWN_COMPLETE" in _events(platform)
