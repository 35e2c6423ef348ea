"""`make bench`: every performance figure of DESIGN.md, one script after another, each printing its own
table beside the same run's ceiling and naive baseline. Run on an otherwise idle machine.

    .venv/bin/python bench/run_all.py            # everything (about 15 minutes)
    .venv/bin/python bench/run_all.py pipeline   # only the named benches
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHES: dict[str, list[str]] = {
    "venue": ["venue_rate.py", "--rates", "20000,60000,100000,200000"],
    "collector": ["collector_hop.py", "--rates", "20000,50000", "--noise", "1"],
    "recorder": ["recorder_outage.py", "--outage", "30"],
    "recorder_path": ["recorder_path.py", "--rows", "1,4,16"],
    "pipeline": ["pipeline_e2e.py", "--rates", "20000,50000,80000,100000", "--duration", "60"],
    "pipeline_rt": [
        "pipeline_e2e.py",
        "--rates",
        "20000,50000",
        "--duration",
        "60",
        "--realtime",
        "collector=10,redis=10",
    ],
    "control": ["stop_under_load.py", "--rate", "20000", "--rounds", "3"],
    "emergency": ["emergency_stop.py", "--rate", "20000", "--rounds", "3"],
    "gates": ["gate_chain.py"],
    "tick_to_order": ["tick_to_order.py", "--ticks", "3000", "--hop-ticks", "500"],
    "orders": ["orders_per_sec.py", "--orders", "3000", "--concurrency", "16"],
    "flatten": ["halt_flatten.py", "--rounds", "5"],
    "autonomy": ["autonomy_transition.py", "--trials", "40"],
}


def main() -> int:
    chosen = sys.argv[1:] or list(BENCHES)
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        print(f"unknown bench {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        script, *args = BENCHES[name]
        print(f"\n######## {name}: {script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script), *args], cwd=HERE.parent)
        print(f"######## {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
