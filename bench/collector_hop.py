"""Collector hop: WebSocket frame received -> its batch acknowledged by Redis (the collector's own figure).

Runs the real `python -m hftops.pipeline.collector` process against a minimal fast Binance-format server
(a child process of this script: pre-formatted combined aggTrade + bookTicker frames written straight to the
socket at a fixed rate, REST aggTrades served from the same id sequence) and a bundled valkey-server. For each
rate it prints what the collector forwarded per second, the hop p50/p99/max it published in `ops:stats`
(one window per second; median and worst window), and its CPU.

Beside it, on the same valkey from one Python process:
  ceiling - pipelined XADD, one message per entry (what one process can push into Redis at all)
  naive   - one awaited XADD per message (the obvious producer, one round trip per message)

--noise N repeats each rate with N busy-looping processes at nice 19 beside it: the lowest priority the
scheduler has, so in principle they only take what nobody else wants. How much the hop still moves is how
much this host's scheduler lets unrelated load into the collector's wake-ups.

Usage: .venv/bin/python bench/collector_hop.py [--rates 20000,50000] [--seconds 10] [--symbols 10] [--noise 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.ports import free_port  # noqa: E402

from bench.bench_platform import SYMBOLS  # noqa: E402

# --- the generator (child process) ---------------------------------------------------------------------


def _header(length: int) -> bytes:
    if length < 126:
        return bytes((0x81, length))
    return bytes((0x81, 126)) + length.to_bytes(2, "big")


async def generator(port: int, rate: float, symbols: list[str]) -> None:
    """Half aggTrade, half bookTicker, round-robin over symbols, ids 1.. per symbol; `rate` msg/s in all."""
    import websockets
    from websockets.asyncio.server import serve

    trade_tpl = {
        s: (
            f'{{"stream":"{s.lower()}@aggTrade","data":{{"e":"aggTrade","E":%d,"s":"{s}","a":%d,'
            f'"p":"%d.%02d","q":"0.010","f":%d,"l":%d,"T":%d,"m":false}}}}'
        ).encode()
        for s in symbols
    }
    bbo_tpl = {
        s: (
            f'{{"stream":"{s.lower()}@bookTicker","data":{{"e":"bookTicker","u":%d,"E":%d,"T":%d,'
            f'"s":"{s}","b":"100.10","B":"1.500","a":"100.20","A":"2.250"}}}}'
        ).encode()
        for s in symbols
    }
    last_id = dict.fromkeys(symbols, 0)
    trade_ms: dict[str, list[int]] = {s: [] for s in symbols}  # trade time by id-1, for REST
    clients: set[websockets.asyncio.server.ServerConnection] = set()
    started = asyncio.Event()

    async def handler(ws: websockets.asyncio.server.ServerConnection) -> None:
        clients.add(ws)
        started.set()
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    def rest(connection, request):
        url = urlsplit(request.path)
        if url.path == "/stream":
            return None
        q = parse_qs(url.query)
        symbol, from_id = q["symbol"][0], max(1, int(q.get("fromId", ["1"])[0]))
        upto = min(last_id.get(symbol, 0), from_id + int(q.get("limit", ["500"])[0]) - 1)
        rows = [
            f'{{"a":{i},"p":"{100 + i % 50}.{i % 100:02d}","q":"0.010","f":{i},"l":{i},'
            f'"T":{trade_ms[symbol][i - 1]},"m":false}}'
            for i in range(from_id, upto + 1)
        ]
        return connection.respond(200, "[" + ",".join(rows) + "]")

    async with serve(handler, "127.0.0.1", port, process_request=rest, compression=None):
        await started.wait()
        t0 = time.perf_counter()
        sent = 0
        turn = 0
        n_sym = len(symbols)
        while True:
            await asyncio.sleep(0.001)
            due = int((time.perf_counter() - t0) * rate) - sent
            if due <= 0:
                continue
            now_ms = int(time.time() * 1000)
            parts: list[bytes] = []
            for k in range(due):
                symbol = symbols[(turn + k // 2) % n_sym]
                if k % 2 == 0:
                    i = last_id[symbol] = last_id[symbol] + 1
                    trade_ms[symbol].append(now_ms)
                    payload = trade_tpl[symbol] % (now_ms, i, 100 + i % 50, i % 100, i, i, now_ms)
                else:
                    payload = bbo_tpl[symbol] % (sent + k, now_ms, now_ms)
                parts.append(_header(len(payload)))
                parts.append(payload)
            turn = (turn + due // 2) % n_sym
            sent += due
            blob = b"".join(parts)
            for ws in list(clients):
                if ws.transport.is_closing():
                    continue
                try:
                    ws.transport.write(blob)  # frames are pre-built; no per-message send() overhead
                except RuntimeError:  # the collector closed (the end of the run): its close was answered
                    clients.discard(ws)


# --- the bench (parent process) ------------------------------------------------------------------------


def xadd_rates(url: str, seconds: float) -> tuple[float, float]:
    """(pipelined XADD entries/s, one awaited XADD per message msg/s), one message per entry, this process."""
    import msgspec

    from hftops.model.market import BATCH_ENCODER, TradeRow

    client = redis.Redis.from_url(url)
    row = BATCH_ENCODER.encode([TradeRow(1, "100.25", "0.010", False, 1, 1, time.time_ns(), 1, 1)])
    fields = {"v": b"1", "n": 1, "lo": 1, "hi": 1, "d": row, "t": time.time_ns()}
    del msgspec
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pipe = client.pipeline(transaction=False)
        for _ in range(1000):
            pipe.xadd("bench:ceiling", fields)
        pipe.execute()
        done += 1000
    ceiling = done / (time.perf_counter() - t0)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        client.xadd("bench:naive", fields)
        done += 1
    naive = done / (time.perf_counter() - t0)
    client.delete("bench:ceiling", "bench:naive")
    return ceiling, naive


def run_rate(tmp: Path, redis_url: str, rate: float, seconds: float, symbols: list[str]) -> dict[str, float]:
    port = free_port()
    gen = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--rate", str(rate), "--symbols", str(len(symbols))]
    )
    venue = f"bench{int(rate)}"
    config = tmp / f"collector-{int(rate)}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp / "var"),
                "venue": {
                    "name": venue,
                    "symbols": symbols,
                    "ws_url": f"ws://127.0.0.1:{port}",
                    "rest_url": f"http://127.0.0.1:{port}",
                },
                "redis": {"url": redis_url},
                "log": {"level": "warning"},
            }
        )
    )
    env = {**os.environ, "HFT_CONFIG": str(config)}
    env.pop("NOTIFY_SOCKET", None)
    client = redis.Redis.from_url(redis_url)
    time.sleep(0.5)  # the generator binds its port
    client.hdel("ops:stats", "collector")  # the previous rate's last snapshot must not count as this one's
    collector = subprocess.Popen([sys.executable, "-m", "hftops.pipeline.collector"], env=env)
    proc = psutil.Process(collector.pid)

    def stats() -> dict:
        raw = client.hget("ops:stats", "collector")
        snap = json.loads(raw) if raw else {}
        return snap if snap.get("pid") == collector.pid else {}

    try:
        deadline = time.monotonic() + 15
        while not stats().get("ready") and time.monotonic() < deadline:
            time.sleep(0.1)
        if not stats().get("ready"):
            raise RuntimeError(f"no ready snapshot from the collector; see {tmp}/var/log/collector.log")
        time.sleep(2.0)  # warm-up: connection, first backfill, allocator
        windows: list[dict] = []
        first = stats()
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        last_seen = first.get("time_ns")
        while time.monotonic() - t0 < seconds:
            time.sleep(0.2)
            snap = stats()
            if snap.get("time_ns") != last_seen:
                last_seen = snap.get("time_ns")
                windows.append(snap)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        last = windows[-1]
        elapsed = (last["time_ns"] - first["time_ns"]) / 1e9
        hops = [w["hop_ms"] for w in windows if w["hop_ms"]["samples"]]
        return {
            "rate": rate,
            "forwarded_per_s": (last["totals"]["forwarded"] - first["totals"]["forwarded"]) / elapsed,
            "received_per_s": (last["totals"]["received"] - first["totals"]["received"]) / elapsed,
            "p50": statistics.median(h["p50"] for h in hops),
            "p99": statistics.median(h["p99"] for h in hops),
            "p99_worst": max(h["p99"] for h in hops),
            "max": max(h["max"] for h in hops),
            "cpu": ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0),
            "entries_per_s": (last["totals"]["entries"] - first["totals"]["entries"]) / elapsed,
            "dlq": last["totals"]["dlq_total"],
            "gaps": last["totals"]["gaps_opened"],
            "paused": bool(last["paused"]),
        }
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=10)
        gen.send_signal(signal.SIGTERM)
        try:
            gen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            gen.kill()
        # This bench's own throw-away server: drop the run's streams so each rate starts from the same state.
        for key in client.scan_iter(match=f"md:{venue}:*"):
            client.delete(key)


@contextlib.contextmanager
def spinners(count: int) -> Iterator[None]:
    """`count` processes spinning at nice 19 for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "import os\nos.nice(19)\nwhile True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="20000,50000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--noise", type=int, default=0, help="also run each rate beside N nice-19 busy loops")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    symbols = SYMBOLS[: args.symbols]
    if args.serve:
        import uvloop

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvloop.run(generator(args.serve, args.rate, symbols))
        return

    sys.path.insert(0, str(ROOT / "src"))
    from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready

    with tempfile.TemporaryDirectory(prefix="hftops-bench-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        valkey = start_valkey(ValkeySpec(port=port, data_dir=tmp / "valkey"), log_path=tmp / "valkey.log")
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_until_ready(url)
            ceiling, naive = xadd_rates(url, 2.0)
            results = []
            for rate in args.rates.split(","):
                for noise in sorted({0, args.noise}):
                    with spinners(noise):
                        results.append({**run_rate(tmp, url, float(rate), args.seconds, symbols), "noise": noise})
        finally:
            valkey.terminate()
            valkey.wait(timeout=10)

    print(
        f"\ncollector hop: WS frame received -> batch acknowledged by Redis; {len(symbols)} symbols, "
        f"aggTrade + bookTicker, {args.seconds:.0f} s per rate, valkey AOF everysec, 2 cores shared by all"
    )
    print(
        f"{'target msg/s':>12} {'forwarded/s':>12} {'entries/s':>10} {'hop p50':>8} {'hop p99':>8} "
        f"{'worst p99':>9} {'hop max':>8} {'CPU':>6}  notes"
    )
    for r in results:
        notes = []
        if r["paused"]:
            notes.append("PAUSED")
        if r["dlq"]:
            notes.append(f"dlq={r['dlq']}")
        if r["gaps"]:
            notes.append(f"gaps={r['gaps']}")
        if r["noise"]:
            notes.append(f"beside {r['noise']} busy loop(s) at nice 19")
        print(
            f"{r['rate']:>12,.0f} {r['forwarded_per_s']:>12,.0f} {r['entries_per_s']:>10,.0f} "
            f"{r['p50']:>6.2f}ms {r['p99']:>6.2f}ms {r['p99_worst']:>7.2f}ms {r['max']:>6.2f}ms "
            f"{r['cpu'] * 100:>5.0f}%  {' '.join(notes)}"
        )
    print(f"{'ceiling':>12} {ceiling:>12,.0f}  pipelined XADD, one message per entry, one process")
    print(f"{'naive':>12} {naive:>12,.0f}  one awaited XADD per message, one process")
    print("budget (DESIGN.md): collector hop p99 <= 5 ms; ingest >= 50,000 msg/s")


if __name__ == "__main__":
    main()
