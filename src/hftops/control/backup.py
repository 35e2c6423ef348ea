"""Config backups (`<data>/backups/config-<UTC time>.yaml`), made by every `trading start` and checked by
`trading pre-reboot`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import yaml

from hftops.config.paths import DataPaths
from hftops.config.schema import Config

_KEEP = 20


def backups_dir(paths: DataPaths) -> Path:
    return paths.root / "backups"


def _config_bytes(config: Config, environ: Mapping[str, str]) -> bytes:
    source = environ.get("HFT_CONFIG")
    if source and Path(source).is_file():
        return Path(source).read_bytes()
    tree = config.model_dump(mode="json")
    if tree.get("api", {}).get("token"):
        tree["api"]["token"] = "<redacted: set HFT_API_TOKEN>"
    return ("# effective configuration (no HFT_CONFIG file was used)\n" + yaml.safe_dump(tree)).encode()


def latest_backup(paths: DataPaths) -> Path | None:
    found = sorted(backups_dir(paths).glob("config-*.yaml"))
    return found[-1] if found else None


def backup_config(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    """Write a backup unless the newest one already holds the same bytes; returns the current backup."""
    environ = os.environ if environ is None else environ
    paths = DataPaths(config.data_dir)
    data = _config_bytes(config, environ)
    latest = latest_backup(paths)
    if latest is not None and hashlib.sha256(latest.read_bytes()).digest() == hashlib.sha256(data).digest():
        return latest
    target_dir = backups_dir(paths)
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = target_dir / f"config-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it may hold the API token
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    for stale in sorted(target_dir.glob("config-*.yaml"))[:-_KEEP]:
        stale.unlink()
    return path


def backup_matches(config: Config, environ: Mapping[str, str] | None = None) -> tuple[Path | None, bool]:
    environ = os.environ if environ is None else environ
    latest = latest_backup(DataPaths(config.data_dir))
    if latest is None:
        return None, False
    return latest, latest.read_bytes() == _config_bytes(config, environ)
