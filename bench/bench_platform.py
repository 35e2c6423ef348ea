"""A throw-away platform for benchmarks: temp data dir, free ports, driven through the real `trading` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from tests.support.ports import free_port

SYMBOLS = [
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "BNBUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "LTCUSDT",
    "AVAXUSDT",
    "LINKUSDT",
]


def _pinning(enabled: bool) -> dict[str, dict[str, list[int]]]:
    """HFT_BENCH_PIN=1: the producer side (collector, Valkey) on core 0, the consumer side on core 1."""
    if not enabled:
        return {}
    return {
        "collector": {"cpu_affinity": [0]},
        "redis": {"cpu_affinity": [0]},
        "recorder": {"cpu_affinity": [1]},
        "venue": {"cpu_affinity": [1]},
    }


def _components(environ: dict[str, str] | os._Environ[str]) -> dict[str, dict[str, Any]]:
    """Per-component settings from HFT_BENCH_ENGINE, HFT_BENCH_PIN, HFT_BENCH_NICE ("recorder=10,venue=5"),
    HFT_BENCH_RT ("collector=10,redis=10": SCHED_FIFO priorities) and HFT_BENCH_CPUS
    ("collector=0,recorder=1,venue=1,redis=0+1"). Any other setting: HFT_BENCH_SET
    ("collector.flush_ms=1,recorder.batch_max_ms=100", values in YAML)."""
    components: dict[str, dict[str, Any]] = {"engine": {"enabled": environ.get("HFT_BENCH_ENGINE") == "1"}}
    for name, settings in _pinning(environ.get("HFT_BENCH_PIN") == "1").items():
        components.setdefault(name, {}).update(settings)
    for item in filter(None, environ.get("HFT_BENCH_NICE", "").split(",")):
        name, _, value = item.partition("=")
        components.setdefault(name.strip(), {})["nice"] = int(value)
    for item in filter(None, environ.get("HFT_BENCH_RT", "").split(",")):  # "collector=10,redis=10"
        name, _, value = item.partition("=")
        components.setdefault(name.strip(), {})["realtime_priority"] = int(value)
    for item in filter(None, environ.get("HFT_BENCH_CPUS", "").split(",")):  # "collector=0,recorder=1"
        name, _, cores = item.partition("=")
        components.setdefault(name.strip(), {})["cpu_affinity"] = [int(c) for c in cores.split("+")]
    return components


class BenchPlatform:
    def __init__(self, root: Path, symbols: int) -> None:
        self.root = root
        self.data_dir = root / "var"
        self.tree: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "venue": {"symbols": SYMBOLS[:symbols]},
            "simulator": {"ws_port": free_port(), "rest_port": free_port(), "rate": 1000, "burst_factor": 1.0},
            "redis": {"port": free_port()},
            "recorder": {"query_port": free_port()},
            "api": {"port": free_port()},
            # The capture budgets are for the capture path; HFT_BENCH_ENGINE=1 adds the trading engine's load.
            "supervisor": {"components": _components(os.environ)},
        }
        for item in filter(None, os.environ.get("HFT_BENCH_SET", "").split(",")):  # "collector.flush_ms=1"
            path, _, value = item.partition("=")
            *sections, key = path.strip().split(".")
            node = self.tree
            for section in sections:
                node = node.setdefault(section, {})
            node[key] = yaml.safe_load(value)
        self.config_path = root / "bench.yaml"
        self.config_path.write_text(yaml.safe_dump(self.tree))
        self.env = {"HFT_CONFIG": str(self.config_path), "PATH": "/usr/bin:/bin"}
        self.redis_url = f"redis://127.0.0.1:{self.tree['redis']['port']}/0"
        self.rest = f"http://127.0.0.1:{self.tree['simulator']['rest_port']}"
        self.query_url = f"http://127.0.0.1:{self.tree['recorder']['query_port']}/query"

    def trading(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hftops.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def pids(self) -> dict[str, int]:
        out = self.trading("status", "--json")
        status = json.loads(out.stdout)
        return {name: int(c["pid"]) for name, c in status["components"].items() if c.get("pid")}

    def query(self, sql: str) -> list[list[Any]]:
        response = httpx.post(self.query_url, json={"sql": sql}, timeout=30)
        response.raise_for_status()
        return response.json()["rows"]
