"""Health condition -> autonomy transition (budget <= 1 s): the real engine's monitor, beside a ceiling and a
naive baseline, all on the same Valkey.

A trial: the bench writes an unhealthy recorder figure (WAL backlog above its threshold) into `ops:stats`,
exactly as the recorder would, and times how long until the engine's AutonomyTransition to
PLATFORM_REDUCE_ONLY is readable on `ops:events:autonomy`; then it clears the figure and waits for the
recovery (cooldown 0), and waits a random fraction of a cycle so trials do not lock onto the monitor's phase.

  figure   - the engine (in this process, real Valkey and simulated venue) with the default eval interval
  fastest  - the same engine with the smallest interval the config allows (0.1 s)
  ceiling  - a tight loop reading the same hash and publishing a marker: the cost of the mechanism itself
  naive    - the same engine evaluating once per second (the slowest the issue allows)

Usage: .venv/bin/python bench/autonomy_transition.py [--trials 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import yaml

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready
from hftops.config import load_config
from hftops.engine.service import build_engine
from hftops.logs import configure_logging
from hftops.model.streams import STATS_HASH, OpsKind, ops_stream

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.ports import free_port  # noqa: E402

THRESHOLD = 1000
STREAM = ops_stream(OpsKind.AUTONOMY)


def recorder_doc(wal_bytes: int) -> str:
    return json.dumps(
        {
            "component": "recorder",
            "time": time.time(),
            "db": {"healthy": True},
            "wal": {"bytes": wal_bytes},
            "disk_guard": {"active": False},
        }
    )


async def next_entry(client: aioredis.Redis, stream: str, last: str, want: bytes) -> str:
    """Block until an entry whose kind is `want` arrives after `last`; returns its id."""
    while True:
        answer = await client.xread({stream: last}, count=10, block=5000)
        if not answer:
            raise TimeoutError(f"nothing on {stream} within 5 s")
        for entry_id, fields in answer[0][1]:
            last = entry_id.decode()
            if fields.get(b"kind") == want:
                return last


async def trial(
    client: aioredis.Redis,
    last: str,
    interval_s: float,
    stream: str = STREAM,
    degraded: bytes = b"PLATFORM_REDUCE_ONLY",
    recovered: bytes = b"NORMAL",
) -> tuple[float, str]:
    t0 = time.perf_counter()
    await client.hset(STATS_HASH, "recorder", recorder_doc(THRESHOLD * 5))
    last = await next_entry(client, stream, last, degraded)
    latency = time.perf_counter() - t0
    await client.hset(STATS_HASH, "recorder", recorder_doc(0))
    last = await next_entry(client, stream, last, recovered)
    await asyncio.sleep(random.uniform(0, interval_s))
    return latency, last


async def run_trials(
    client: aioredis.Redis, n: int, interval_s: float, one: Callable[[str], Awaitable[tuple[float, str]]]
) -> list[float]:
    info = await client.xinfo_stream(STREAM) if await client.exists(STREAM) else None
    last = info["last-generated-id"].decode() if info else "0-0"
    out = []
    for _ in range(n):
        latency, last = await one(last)
        out.append(latency)
    return out


async def ceiling_loop(client: aioredis.Redis, stop: asyncio.Event, stream: str) -> None:
    """The floor of the mechanism: read the hash in a tight loop, publish on every change of verdict."""
    bad = False
    while not stop.is_set():
        raw = await client.hget(STATS_HASH, "recorder")
        now_bad = bool(raw) and json.loads(raw)["wal"]["bytes"] > THRESHOLD
        if now_bad != bad:
            bad = now_bad
            await client.xadd(stream, {"kind": b"PLATFORM_REDUCE_ONLY" if bad else b"NORMAL"})


def summary(name: str, samples: list[float]) -> tuple[str, float, float, float, int]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return name, statistics.median(ordered) * 1000, p99 * 1000, ordered[-1] * 1000, len(ordered)


def platform(root: Path) -> tuple[Path, dict[str, Any]]:
    tree = {
        "data_dir": str(root / "var"),
        "venue": {"symbols": ["BTCUSDT", "ETHUSDT"]},
        "simulator": {"ws_port": free_port(), "rest_port": free_port(), "rate": 200},
        "redis": {"url": f"redis://127.0.0.1:{free_port()}/0"},
        "engine": {"strategies": []},
        "autonomy": {
            "cooldown_s": 0,
            "boot_grace_s": 0,
            "wal_backlog_max_bytes": THRESHOLD,
            "db_stale_s": 1e6,
            "feed_gap_s": 1e6,
            "feed_gap_halt_s": 1e6,
            "memory_available_min_bytes": 0,
            "broker_unavailable_s": 1e6,
            "redis_unhealthy_s": 1e6,
        },
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path, tree


async def main_async(trials: int) -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-autonomy-"))
    config_path, tree = platform(root)
    config = load_config(config_path, environ={})
    configure_logging("engine", root / "log", "warning", 10 * 1024**2, 2)  # the table, not the engine's chatter
    port = int(tree["redis"]["url"].rsplit(":", 1)[1].split("/")[0])
    valkey = start_valkey(ValkeySpec(port=port, data_dir=root / "valkey"), log_path=root / "valkey.log")
    venue = subprocess.Popen(
        [sys.executable, "-m", "hftops.venue"],
        env={"HFT_CONFIG": str(config_path), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(config.redis_url)
        await wait_http(f"{config.rest_base_url}/fapi/v1/time")
        client = aioredis.Redis.from_url(config.redis_url)
        rows = []
        engine = build_engine(config, environ={})
        task = asyncio.create_task(engine.run())
        while not engine.started:
            await asyncio.sleep(0.05)
        monitor = engine.autonomy_wiring.monitor
        for name, interval in (
            ("figure (engine, default interval)", config.autonomy.eval_interval_s),
            ("engine, fastest interval", 0.1),
            ("naive (engine, evaluating once a second)", 1.0),
        ):
            monitor.cfg = monitor.cfg.model_copy(update={"eval_interval_s": interval})
            samples = await run_trials(client, trials, interval, lambda last, i=interval: trial(client, last, i))
            rows.append((*summary(f"{name} {interval:g} s", samples), interval))
        engine.stop()
        await task
        stop = asyncio.Event()
        marker = "bench:autonomy:ceiling"
        loop = asyncio.create_task(ceiling_loop(aioredis.Redis.from_url(config.redis_url), stop, marker))
        samples = []
        last = "0-0"
        for _ in range(trials):
            latency, last = await trial(client, last, 0.01, stream=marker)
            samples.append(latency)
        stop.set()
        await loop
        rows.append((*summary("ceiling (tight poll + XADD, same Valkey)", samples), 0.0))
        print_table(rows)
        await client.aclose()
        worst = max(r[2] for r in rows[:1])
        return 0 if worst <= 1000 else 1
    finally:
        venue.terminate()
        venue.wait(10)
        valkey.terminate()
        valkey.wait(10)


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} did not answer")


def print_table(rows: list[tuple[str, float, float, float, int, float]]) -> None:
    print("\nhealth condition -> autonomy transition (budget: <= 1000 ms)")
    print(f"{'path':<52} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'trials':>7}")
    for name, p50, p99, worst, n, _interval in rows:
        print(f"{name:<52} {p50:>8.1f} {p99:>8.1f} {worst:>8.1f} {n:>7}")
    figure, ceiling, naive = rows[0], rows[-1], rows[2]
    print(
        f"\nfigure p99 {figure[2]:.0f} ms = {figure[2] / max(ceiling[2], 0.001):.0f}x the ceiling's p99, "
        f"{naive[2] / max(figure[2], 0.001):.1f}x better than the naive once-a-second evaluation"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    return asyncio.run(main_async(args.trials))


if __name__ == "__main__":
    sys.exit(main())
