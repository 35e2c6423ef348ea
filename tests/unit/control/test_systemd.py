import shutil
import subprocess
from pathlib import Path

import pytest

from hftops.config.schema import Config
from hftops.control import systemd


def _config(tmp_path: Path, realtime: bool = False) -> Config:
    collector: dict[str, object] = {"cpu_affinity": [0], "stop_timeout_s": 7.5, "nice": 3}
    components: dict[str, dict[str, object]] = {"collector": collector}
    if realtime:
        collector["realtime_priority"] = 10
        components["redis"] = {"realtime_priority": 10}
    return Config.model_validate({"data_dir": str(tmp_path / "var"), "supervisor": {"components": components}})


def _units(tmp_path: Path, user: bool, realtime: bool = False) -> list[systemd.UnitFile]:
    cfg = tmp_path / "hftops.yaml"
    cfg.write_text("{}\n")
    return systemd.generate(_config(tmp_path, realtime), user=user, config_path=cfg)


def _values(unit: systemd.UnitFile) -> dict[str, str]:
    return {f"{s}.{k}": v for s, items in systemd.parse_unit(unit.text).items() for k, v in items}


def test_one_unit_per_process_component_plus_a_target(tmp_path: Path) -> None:
    units = _units(tmp_path, user=True)
    assert [u.name for u in units] == [
        "hftops-redis.service",
        "hftops-venue.service",
        "hftops-collector.service",
        "hftops-recorder.service",
        "hftops-engine.service",
        "hftops.target",
    ]
    known = {u.name for u in units}
    for unit in units:
        assert systemd.check_unit(unit.name, unit.text, known) == []
    collector = _values(units[2])
    assert collector["Service.Type"] == "notify"
    assert collector["Service.WatchdogSec"] == "15"
    assert collector["Service.TimeoutStopSec"] == "8"
    assert collector["Service.CPUAffinity"] == "0"
    assert collector["Service.Nice"] == "3"
    assert collector["Unit.After"] == "hftops-redis.service hftops-venue.service"
    assert collector["Unit.Requires"] == "hftops-redis.service"
    assert "HFT_CONFIG=" in collector["Service.Environment"] or any(
        "HFT_CONFIG=" in line for line in units[2].text.splitlines()
    )
    recorder = _values(units[3])
    # start order recorder after collector => systemd stops the recorder (consumer) first
    assert "hftops-collector.service" in recorder["Unit.After"]
    assert _values(units[0])["Service.Type"] == "simple"  # valkey without libsystemd: PING probe instead
    assert _values(units[-1])["Install.WantedBy"] == "default.target"


def test_the_strict_reader_catches_mistakes(tmp_path: Path) -> None:
    unit = _units(tmp_path, user=True)[2]
    known = {"hftops-redis.service", "hftops-venue.service"}
    broken = unit.text.replace("StartLimitBurst=3", "StartLimitBurst=9").replace("Type=notify", "Typo=notify")
    problems = systemd.check_unit(unit.name, broken, known)
    assert any("StartLimitBurst" in p for p in problems)
    assert any("unknown key Typo" in p for p in problems)


def test_quote_escapes_specifiers_and_spaces() -> None:
    assert systemd.quote("/a b/%h$x") == '"/a b/%%h$$x"'
    assert systemd.quote("") == '""'
    assert systemd.quote("--port") == "--port"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    units = _units(tmp_path, user=False, realtime=True)
    out = tmp_path / "units"
    paths = systemd.write_units(units, out)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *[str(p) for p in paths]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify only warns about many mistakes; any line naming one of our files is a failure
    ours = [line for line in (result.stdout + result.stderr).splitlines() if str(out) in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_a_niced_unit_gets_the_matching_cpu_weight_and_the_recorder_yields_by_default(tmp_path: Path) -> None:
    # Nice= weighs only inside a unit's own cgroup; CPUWeight= is what the kernel compares between units.
    assert [systemd.cpu_weight(n) for n in (-20, 0, 3, 10, 19)] == [8668, 100, 51, 11, 1]
    units = {u.name: _values(u) for u in _units(tmp_path, user=True)}
    collector, recorder = units["hftops-collector.service"], units["hftops-recorder.service"]
    assert (collector["Service.Nice"], collector["Service.CPUWeight"]) == ("3", "51")
    assert (recorder["Service.Nice"], recorder["Service.CPUWeight"]) == ("5", "33")  # the default
    assert "Service.Nice" not in units["hftops-engine.service"]
    assert "Service.CPUWeight" not in units["hftops-redis.service"]


def test_a_realtime_component_runs_on_sched_fifo_under_systemd_too(tmp_path: Path) -> None:
    units = _units(tmp_path, user=False, realtime=True)
    collector = _values(next(u for u in units if u.name == "hftops-collector.service"))
    assert (collector["Service.CPUSchedulingPolicy"], collector["Service.CPUSchedulingPriority"]) == ("fifo", "10")
    recorder = _values(next(u for u in units if u.name == "hftops-recorder.service"))
    assert "Service.CPUSchedulingPolicy" not in recorder
    assert "Service.Nice" not in recorder  # behind a realtime collector the recorder no longer yields
    unit = next(u for u in units if u.name == "hftops-collector.service")
    broken = unit.text.replace("CPUSchedulingPriority=10", "CPUSchedulingPriority=120").replace(
        "CPUSchedulingPolicy=fifo", "CPUSchedulingPolicy=realtime"
    )
    problems = systemd.check_unit(unit.name, broken, {u.name for u in units})
    assert any("CPUSchedulingPriority '120'" in p for p in problems), problems
    assert any("CPUSchedulingPolicy 'realtime'" in p for p in problems), problems
