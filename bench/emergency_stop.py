"""`trading emergency-stop` under load: from the operator's command to every pipeline process gone.

Each round starts the `make run` platform (engine included), feeds it --rate msg/s for --load-s seconds, runs
`trading emergency-stop --yes` and waits for the venue, collector, recorder and engine processes to be gone
(Redis and the data stay), then stops what is left. Beside it, in the same rounds:

  ceiling - the bench itself SIGKILLs the same processes (no latch, no audit: the floor)
  naive   - the same command through typer and the full config load (what `trading emergency-stop` cost
            before its fast path)

Budget (issue #3): every pipeline process killed within 1 s, the HALT latch persisted first.

    .venv/bin/python bench/emergency_stop.py [--rate 20000] [--load-s 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_platform import BenchPlatform  # noqa: E402

PIPELINE = ("venue", "collector", "recorder", "engine")
NAIVE = (  # typer with every command module, and the validated config, before anything happens
    "from hftops.config.loader import load_config; load_config(); "
    "from hftops.cli.main import build_app; build_app()(['emergency-stop', '--yes'])"
)


def one_round(way: str, rate: int, load_s: float) -> float:
    """Seconds from the command (or the bench's own kill) to every pipeline process gone."""
    with tempfile.TemporaryDirectory(prefix="hftops-estop-") as tmp:
        platform = BenchPlatform(Path(tmp), 10)
        started = platform.trading("start")
        if started.returncode != 0:
            sys.exit(f"trading start failed:\n{started.stdout}\n{started.stderr}")
        try:
            httpx.post(f"{platform.rest}/admin/rate", json={"rate": rate}, timeout=10).raise_for_status()
            time.sleep(load_s)
            procs = [psutil.Process(pid) for name, pid in platform.pids().items() if name in PIPELINE]
            t0 = time.monotonic()
            if way == "ceiling":
                for proc in procs:
                    proc.send_signal(signal.SIGKILL)
                command = None
            else:
                argv = ["-m", "hftops.cli.main", "emergency-stop", "--yes"] if way == "figure" else ["-c", NAIVE]
                command = subprocess.Popen(
                    [sys.executable, *argv],
                    env=platform.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            _, alive = psutil.wait_procs(procs, timeout=15)
            elapsed = time.monotonic() - t0
            if alive:
                sys.exit(f"{way}: still alive after 15 s: {[p.pid for p in alive]}")
            if command is not None:
                out, err = command.communicate(timeout=60)
                if command.returncode != 0 or "HALT latch written" not in out:
                    sys.exit(f"{way}: emergency-stop exited {command.returncode}\n{out}\n{err}")
                latch = json.loads((platform.data_dir / "state" / "autonomy_latch.json").read_text())
                if latch.get("mode") != "HALT":
                    sys.exit(f"{way}: no HALT latch after the emergency stop: {latch}")
            return elapsed
        finally:
            platform.trading("stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--load-s", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["HFT_BENCH_ENGINE"] = "1"  # the make-run platform
    rows = {
        way: [one_round(way, args.rate, args.load_s) for _ in range(args.rounds)]
        for way in ("figure", "ceiling", "naive")
    }
    print(f"emergency-stop at {args.rate:,} msg/s: command -> venue, collector, recorder and engine gone (s)")
    print(f"  {'':8s} {'median':>7s} {'max':>7s}   rounds")
    for way, values in rows.items():
        print(
            f"  {way:8s} {statistics.median(values):7.2f} {max(values):7.2f}   " + ", ".join(f"{v:.2f}" for v in values)
        )
    worst = max(rows["figure"])
    verdict = "PASS" if worst <= 1.0 else "FAIL"
    print(f"budget: every pipeline process killed within 1 s: {verdict} (worst {worst:.2f} s)")


if __name__ == "__main__":
    main()
