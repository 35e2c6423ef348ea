"""Maximum publish rate of the simulated venue with one consuming WebSocket client.

Starts `python -m hftops.venue` as a real process, connects one client (this process) to the combined stream
of every symbol's aggTrade + bookTicker, and steps the venue's rate up. At each step it prints what the client
received, what the venue generated and the venue's CPU. The figure is the highest rate the client received
in full (>= 95 %) without the venue cutting it off as a slow consumer.

Beside it, the same client against:
  ceiling  - a server that writes one pre-built frame blob in a loop (what one Python client can receive)
  naive    - a server that dict-encodes and `await ws.send()`s each message (the obvious implementation)

Usage: .venv/bin/python bench/venue_rate.py [--seconds 4] [--rates 20000,40000,...] [--symbols 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import psutil
import uvloop
import websockets
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.ports import free_port  # noqa: E402

from bench.bench_platform import SYMBOLS  # noqa: E402


async def consume(url: str, seconds: float) -> tuple[float, bool]:
    """(messages/s received over `seconds`, whether the connection stayed open)."""
    received = 0
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        deadline = time.monotonic() + 0.5  # let the pipe fill before counting
        while time.monotonic() < deadline:
            await ws.recv()
        start = time.monotonic()
        end = start + seconds
        try:
            while time.monotonic() < end:
                await ws.recv()
                received += 1
        except websockets.ConnectionClosed:
            return received / (time.monotonic() - start), False
        return received / (time.monotonic() - start), True


# ------------------------------------------------------------------------------ reference servers

_FRAME_DATA = (
    b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1700000000000,"s":"BTCUSDT","a":123456,'
    b'"p":"60000.10","q":"0.010","f":123456,"l":123456,"T":1700000000000,"m":false}}'
)


async def serve_ceiling(port: int) -> None:
    from hftops.venue.wire import frame_all

    blob = b"".join(frame_all([_FRAME_DATA] * 200))

    async def handler(ws: websockets.asyncio.server.ServerConnection) -> None:
        transport = ws.transport
        while ws.state is websockets.protocol.State.OPEN:
            if transport.get_write_buffer_size() < 1 << 20:
                transport.write(blob)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.001)  # do not spin: the client needs the other core

    async with websockets.serve(handler, "127.0.0.1", port, compression=None):
        await asyncio.Future()


async def serve_naive(port: int) -> None:
    encode = msgspec.json.encode

    async def handler(ws: websockets.asyncio.server.ServerConnection) -> None:
        trade_id = 0
        try:
            while True:
                trade_id += 1
                now = time.time_ns() // 1_000_000
                await ws.send(
                    encode(
                        {
                            "stream": "btcusdt@aggTrade",
                            "data": {
                                "e": "aggTrade",
                                "E": now,
                                "s": "BTCUSDT",
                                "a": trade_id,
                                "p": "60000.10",
                                "q": "0.010",
                                "f": trade_id,
                                "l": trade_id,
                                "T": now,
                                "m": False,
                            },
                        }
                    ),
                    text=True,
                )
        except websockets.ConnectionClosed:
            pass

    async with websockets.serve(handler, "127.0.0.1", port, compression=None):
        await asyncio.Future()


def reference(kind: str, seconds: float) -> tuple[float, float]:
    """(messages/s the client received, server CPU in cores) against a reference server."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, f"--serve-{kind}", str(port)])
    try:
        deadline = time.monotonic() + 10
        proc = psutil.Process(server.pid)
        while True:
            try:
                proc.cpu_percent()
                rate, _ = uvloop.run(consume(f"ws://127.0.0.1:{port}/", seconds))
                return rate, proc.cpu_percent() / 100
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(5)


# ------------------------------------------------------------------------------ the venue


def run_venue_steps(rates: list[int], seconds: float, symbols: list[str]) -> list[dict[str, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="venue-bench-"))
    ws_port, rest_port = free_port(), free_port()
    config = {
        "data_dir": str(tmp / "var"),
        "venue": {"symbols": symbols},
        "simulator": {"ws_port": ws_port, "rest_port": rest_port, "rate": 1000, "burst_factor": 1.0},
        "log": {"level": "warning"},
    }
    (tmp / "hftops.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_") and k != "NOTIFY_SOCKET"}
    env["HFT_CONFIG"] = str(tmp / "hftops.yaml")
    venue = subprocess.Popen([sys.executable, "-m", "hftops.venue"], env=env, cwd=tmp)
    rest = f"http://127.0.0.1:{rest_port}"
    streams = "/".join(f"{s.lower()}@aggTrade/{s.lower()}@bookTicker" for s in symbols)
    url = f"ws://127.0.0.1:{ws_port}/stream?streams={streams}"
    results = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{rest}/fapi/v1/ping", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or venue.poll() is not None:
                    raise SystemExit("the venue did not start; see its log under " + str(tmp / "var/log")) from None
                time.sleep(0.1)
        proc = psutil.Process(venue.pid)
        for rate in rates:
            httpx.post(f"{rest}/admin/rate", json={"rate": rate}, timeout=5).raise_for_status()
            slow_before = httpx.get(f"{rest}/admin/stats", timeout=5).json()["hub"]["slow_consumers_closed"]
            proc.cpu_percent()
            received, stayed = uvloop.run(consume(url, seconds))
            cpu = proc.cpu_percent() / 100
            stats = httpx.get(f"{rest}/admin/stats", timeout=5).json()
            slow = stats["hub"]["slow_consumers_closed"] - slow_before
            ok = stayed and not slow and received >= 0.95 * rate
            results.append(
                {
                    "rate": rate,
                    "received": received,
                    "generated": stats["generated_per_s"],
                    "cpu": cpu,
                    "ok": ok,
                }
            )
            verdict = "" if ok else "  <- not sustained"
            if slow or not stayed:
                verdict += " (cut off as a slow consumer)"
            print(
                f"  target {rate:>8,}/s  received {received:>9,.0f}/s  venue generated "
                f"{stats['generated_per_s']:>9,.0f}/s  venue CPU {cpu:4.2f} core{verdict}",
                flush=True,
            )
        rss = proc.memory_info().rss
        print(f"  venue RSS at the end: {rss / 2**20:.0f} MB; ground truth {sum(stats['published'].values()):,} trades")
    finally:
        venue.terminate()
        code = venue.wait(10)
        print(f"  venue exit code after SIGTERM: {code}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rates", default="20000,40000,60000,80000,100000,150000,200000,250000,300000")
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-naive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        uvloop.run(serve_ceiling(args.serve_ceiling))
        return
    if args.serve_naive:
        uvloop.run(serve_naive(args.serve_naive))
        return
    rates = [int(r) for r in args.rates.split(",")]
    print(f"venue publish rate, one client, {args.symbols} symbols (aggTrade + bookTicker), {os.cpu_count()} cores")
    results = run_venue_steps(rates, args.seconds, SYMBOLS[: args.symbols])
    sustained = [r for r in results if r["ok"]]
    best = max(sustained, key=lambda r: r["rate"]) if sustained else None
    ceiling = reference("ceiling", args.seconds)
    naive = reference("naive", args.seconds)
    print()
    if best:
        print(
            f"venue max sustained publish rate: {best['rate']:,} msg/s "
            f"(received {best['received']:,.0f}/s, venue CPU {best['cpu']:.2f} core)"
        )
    else:
        print("venue max sustained publish rate: none of the steps was sustained")
    for label, (rate, cpu) in (
        ("ceiling (pre-built frames, same client)", ceiling),
        ("naive baseline (dict + await send each)", naive),
    ):
        print(f"{label}:  {rate:,.0f} msg/s (server CPU {cpu:.2f} core)")


if __name__ == "__main__":
    main()
