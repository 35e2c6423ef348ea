"""A stand-in component for supervisor tests: speaks the process contract (READY=1, WATCHDOG=1, exit 0 on
SIGTERM) and can misbehave on request: ignore SIGTERM, crash after ready, stop its heartbeat, never be ready.

Run as `python fake_component.py NAME [--mode MODE] [--after SECONDS] [--exit-code N]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from hftops.lifecycle import notify_ready, notify_watchdog

MODES = ("normal", "ignore-term", "crash", "hang", "no-ready", "exit-now", "slow-term")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument("--after", type=float, default=0.3, help="seconds after ready before crash/hang")
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--marker", default=None, help="append one line per start to this file")
    parser.add_argument("--ready-after", type=float, default=0.0, help="seconds of start-up before READY=1")
    args = parser.parse_args()
    if args.marker:
        with open(args.marker, "a") as fh:
            fh.write(f"{os.getpid()} {time.time()}\n")
    if args.mode == "exit-now":
        return args.exit_code
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    if args.mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
    if args.ready_after:
        time.sleep(args.ready_after)
    if args.mode != "no-ready":
        notify_ready(f"{args.name} fake ready")
    ready_at = time.monotonic()
    while True:
        if stopping:
            if args.mode == "slow-term":
                time.sleep(args.after)
            return 0
        elapsed = time.monotonic() - ready_at
        if args.mode == "crash" and elapsed >= args.after:
            return args.exit_code
        if not (args.mode == "hang" and elapsed >= args.after):
            notify_watchdog()
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
