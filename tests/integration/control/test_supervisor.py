"""The supervisor with real child processes: backoff, start limit, heartbeats, kills, emergency stop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from hftops.control.latch import latch_path, restarts_blocked
from hftops.control.runner import RunState
from hftops.control.shutdown_plan import ShutdownPlan
from tests.integration.control.conftest import Sleeps, events, make_config
from tests.integration.control.fakes import fake_env
from tests.support.processes import process_gone
from tests.support.waiting import async_wait_for


async def test_crash_loop_backs_off_exponentially_then_gives_up(tmp_path: Path, valkey, supervisors) -> None:
    marker = tmp_path / "starts"
    config = make_config(tmp_path, valkey.url, supervisor={"start_limit_burst": 4, "backoff_max_s": 60})
    sleeps = Sleeps()
    sup = supervisors(
        config,
        fake_env(collector=["--mode", "crash", "--after", "0.1", "--marker", str(marker)]),
        sleep=sleeps,
    )
    assert (await sup.start_pipeline("tester"))["ok"]
    collector = sup.runners["collector"]

    async def exhausted() -> bool:
        return collector.state is RunState.FAILED and "backoff exhausted" in collector.detail

    await async_wait_for(exhausted, timeout_s=20, what="collector failed (backoff exhausted)")
    assert sleeps.delays == [1, 2, 4]
    assert collector.restarts == 3
    assert len(events(config, "CRASH")) == 4
    assert [e["result"]["delay_s"] for e in events(config, "RESTART")] == [1, 2, 4]
    exhausted_entries = events(config, "BACKOFF_EXHAUSTED")
    assert len(exhausted_entries) == 1 and exhausted_entries[0]["result"]["failures"] == 4
    status = sup.components_status()["collector"]
    assert status["state"] == "failed" and status["detail"] == "failed (backoff exhausted)"
    starts = len(marker.read_text().splitlines())
    await asyncio.sleep(0.5)  # no restart storm: nothing is spawned any more
    assert len(marker.read_text().splitlines()) == starts == 4


async def test_controlled_stop_is_not_a_crash(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url, enabled=("collector", "recorder"))
    sup = supervisors(config, fake_env(collector=[], recorder=[]))
    assert (await sup.start_pipeline("tester"))["ok"]
    report = await sup.stop(ShutdownPlan(actor="tester"), include_api=False)
    assert report.exit_code == 0
    assert [s["component"] for s in report.steps] == ["recorder", "collector"]  # consumer first
    assert events(config, "CRASH") == [] and events(config, "RESTART") == []
    assert [e["event"] for e in events(config)][-5:] == [
        "SHUTDOWN_START",
        "RECORDER_STOP",
        "COLLECTOR_STOP",
        "SHUTDOWN_COMPLETE",
        "STATE_SNAPSHOT",
    ]
    assert not (Path(config.data_dir) / "run" / "collector.pid").exists()


async def test_drain_stops_the_producer_first(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url, enabled=("collector", "recorder"))
    sup = supervisors(config, fake_env(collector=[], recorder=[]))
    assert (await sup.start_pipeline("tester"))["ok"]
    report = await sup.stop(ShutdownPlan(actor="tester", drain=True, drain_timeout_s=5), include_api=False)
    assert [s["component"] for s in report.steps] == ["collector", "recorder"]
    assert report.drained is not None and report.drained["drained"]  # no streams: nothing left to drain


async def test_ignored_sigterm_is_killed_after_the_timeout(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(
        tmp_path, valkey.url, supervisor={"component_overrides": {"collector": {"stop_timeout_s": 1.0}}}
    )
    sup = supervisors(config, fake_env(collector=["--mode", "ignore-term"]))
    assert (await sup.start_pipeline("tester"))["ok"]
    pid = sup.runners["collector"].pid
    t0 = time.monotonic()
    report = await sup.stop(ShutdownPlan(actor="tester"), include_api=False)
    took = time.monotonic() - t0
    assert report.exit_code == 3 and report.forced == ["collector"]
    assert 0.9 <= report.steps[0]["duration_s"] <= 3.0 and took < 10
    forced = events(config, "FORCED_KILL")
    assert len(forced) == 1 and forced[0]["args"]["pid"] == pid
    assert process_gone(pid)


async def test_lost_heartbeat_is_treated_as_a_crash(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url, supervisor={"heartbeat_timeout_s": 1.0})
    sup = supervisors(config, fake_env(collector=["--mode", "hang", "--after", "0.2"]), sleep=Sleeps())
    assert (await sup.start_pipeline("tester"))["ok"]
    first = sup.runners["collector"].pid

    async def restarted() -> bool:
        runner = sup.runners["collector"]
        return runner.restarts >= 1 and runner.state is RunState.RUNNING and runner.pid != first

    await async_wait_for(restarted, timeout_s=15, what="collector restarted after its heartbeat stopped")
    lost = events(config, "HEARTBEAT_LOST")
    assert lost and lost[0]["args"]["pid"] == first and lost[0]["result"]["heartbeat_age_s"] > 1.0
    await sup.stop(ShutdownPlan(actor="tester"), include_api=False)


async def test_start_failure_rolls_back_and_names_the_component(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url, enabled=("collector", "recorder"))
    sup = supervisors(config, fake_env(collector=[], recorder=["--mode", "exit-now", "--exit-code", "7"]))
    result = await sup.start_pipeline("tester")
    assert not result["ok"] and result["failed"] == "recorder"
    assert "exited with code 7 before it was ready" in result["reason"]
    assert not sup.runners["collector"].alive
    assert events(config, "START_FAILED")[0]["result"]["failed"] == "recorder"


async def test_a_consumer_does_not_wait_for_the_producer(tmp_path: Path, valkey, supervisors) -> None:
    """The recorder needs Redis only: it is ready while the venue (and so the collector) is still starting."""
    markers = {name: tmp_path / f"{name}.starts" for name in ("venue", "collector", "recorder")}
    config = make_config(tmp_path, valkey.url, enabled=("venue", "collector", "recorder"))
    sup = supervisors(
        config,
        fake_env(
            venue=["--ready-after", "1.5", "--marker", str(markers["venue"])],
            collector=["--marker", str(markers["collector"])],
            recorder=["--marker", str(markers["recorder"])],
        ),
    )
    result = await sup.start_pipeline("tester")
    assert result["ok"] and result["started"] == ["recorder", "venue", "collector"]
    spawned = {name: float(path.read_text().split()[1]) for name, path in markers.items()}
    assert spawned["collector"] >= spawned["venue"] + 1.5  # the collector needs the venue ready
    assert events(config, "START")[0]["result"]["started"] == ["recorder", "venue", "collector"]
    await sup.stop(ShutdownPlan(actor="tester"), include_api=False)


async def test_a_failure_starts_nothing_more_and_rolls_back_what_started(tmp_path: Path, valkey, supervisors) -> None:
    collector_marker = tmp_path / "collector.starts"
    config = make_config(tmp_path, valkey.url, enabled=("venue", "collector", "recorder"))
    sup = supervisors(
        config,
        fake_env(
            venue=["--mode", "exit-now", "--exit-code", "7"],
            collector=["--marker", str(collector_marker)],
            recorder=["--ready-after", "1.0"],  # still starting when the venue fails: it finishes, then stops
        ),
    )
    result = await sup.start_pipeline("tester")
    assert not result["ok"] and result["failed"] == "venue"
    assert "exited with code 7 before it was ready" in result["reason"]
    assert result["rolled_back"] == ["recorder"]
    assert not sup.runners["recorder"].alive
    assert not collector_marker.exists()  # it needs the venue: never spawned
    assert events(config, "START_FAILED")[0]["result"]["failed"] == "venue"


async def test_emergency_stop_kills_within_a_second_and_blocks_restarts(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url, enabled=("collector", "recorder"))
    sup = supervisors(config, fake_env(collector=["--mode", "ignore-term"], recorder=[]), sleep=Sleeps())
    assert (await sup.start_pipeline("tester"))["ok"]
    pids = [sup.runners[n].pid for n in ("collector", "recorder")]
    t0 = time.monotonic()
    result = await sup.emergency_stop("alice")
    assert time.monotonic() - t0 < 1.0
    assert sorted(result["killed"]) == ["collector", "recorder"]
    for pid in pids:
        assert process_gone(pid)
    latch = json.loads(latch_path(sup.paths).read_text())
    assert latch["mode"] == "HALT" and latch["reason"] == "manual_operator" and latch["by"] == "alice"
    assert restarts_blocked(sup.paths)
    assert valkey.client().ping()  # Redis untouched
    await asyncio.sleep(0.3)
    assert events(config, "CRASH") == [] and not sup.runners["collector"].alive
    assert len(events(config, "EMERGENCY_STOP")) == 1
    assert (await sup.start_pipeline("alice"))["ok"]  # an explicit start resumes
    assert sup.runners["collector"].alive and not restarts_blocked(sup.paths)
    assert latch_path(sup.paths).exists()  # only `trading rearm` clears the HALT latch
    await sup.runners["collector"].kill()
