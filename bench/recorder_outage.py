"""Recorder through a database outage: memory, WAL, latency and insert throughput of the real process.

Runs `python -m hftops.pipeline.recorder` (embedded chDB) against a bundled valkey-server and feeds it
the collector's entry format at a fixed rate (default 20,000 msg/s: half trades, half bookTicker, over
5 symbols; one entry per symbol and kind every 2 ms, like the collector's flush). Phases:

  steady    - RSS sampled every 0.25 s; steady state = median of the phase's second half;
              event -> visible latency: the feeder notes each entry's event time, a poller asks the
              recorder's /query for max(trade_id) per symbol every 20 ms
  outage    - fault switch on for --outage seconds while feeding: WAL grows, entries are acked;
              peak RSS above steady state is the figure (budget: 64 MB)
  recovery  - fault switch off: WAL replay time and rate, peak RSS (counted in the figure too)
  backlog   - --backlog rows written to the streams at once: max sustained insert rows/s
  exactness - every fed id stored once (count() = uniqExact = fed)

Beside the insert figure, from this process on its own chDB directory (recorder stopped):
  ceiling - raw chDB insert of the same JSONCompactEachRow lines in 20,000-row inserts
  naive   - one insert per stream entry (256 rows), no batching across entries

Usage: .venv/bin/python bench/recorder_outage.py [--rate 20000] [--outage 30] [--short] [--backlog 1000000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.ports import free_port  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready  # noqa: E402
from hftops.model.market import BATCH_ENCODER, BboRow, TradeRow  # noqa: E402
from hftops.model.streams import MdKind, md_stream  # noqa: E402

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
MB = 1024 * 1024


class Feeder(threading.Thread):
    """The collector's entry format at a fixed message rate; keeps per-symbol trade ids and event times."""

    def __init__(self, url: str, rate: float, symbols: list[str], flush_s: float = 0.002) -> None:
        super().__init__(daemon=True, name="feeder")
        self.client = redis.Redis.from_url(url)
        self.rate = rate
        self.symbols = symbols
        self.flush_s = flush_s
        self.next_trade = dict.fromkeys(symbols, 1)
        self.next_bbo = dict.fromkeys(symbols, 1)
        self.pending: dict[str, deque[tuple[int, int, int]]] = {s: deque() for s in symbols}  # (hi, ms, rows)
        self.lock = threading.Lock()
        self.sent = 0
        self.running = True
        self.paused = False
        self.behind_max = 0.0

    def run(self) -> None:
        started = time.monotonic()
        owed = 0.0
        last = started
        streams = [(s, k) for s in self.symbols for k in (MdKind.TRADE, MdKind.BBO)]
        cursor = 0
        while self.running:
            now = time.monotonic()
            if self.paused:
                last = now
                time.sleep(0.01)
                continue
            owed += (now - last) * self.rate
            last = now
            due = int(owed)
            owed -= due
            if due:
                per_stream: dict[tuple[str, MdKind], int] = {}
                for _ in range(due):
                    key = streams[cursor % len(streams)]
                    cursor += 1
                    per_stream[key] = per_stream.get(key, 0) + 1
                now_ms = int(time.time() * 1000)
                now_ns = time.time_ns()
                with self.client.pipeline(transaction=False) as pipe:
                    for (symbol, kind), n in per_stream.items():
                        for start in range(0, n, 256):
                            count = min(256, n - start)
                            pipe.xadd(md_stream("sim", kind, symbol), self._entry(symbol, kind, count, now_ms, now_ns))
                    pipe.execute()
                self.sent += due
            self.behind_max = max(self.behind_max, owed / self.rate)
            time.sleep(max(0.0, self.flush_s - (time.monotonic() - now)))

    def _entry(self, symbol: str, kind: MdKind, n: int, now_ms: int, now_ns: int) -> dict[str, Any]:
        if kind is MdKind.TRADE:
            lo = self.next_trade[symbol]
            rows: list[Any] = [
                TradeRow(i, "65000.12", "0.001", i % 2 == 0, now_ms, now_ms, now_ns, i, i) for i in range(lo, lo + n)
            ]
            self.next_trade[symbol] = lo + n
            with self.lock:
                self.pending[symbol].append((lo + n - 1, now_ms, n))
        else:
            lo = self.next_bbo[symbol]
            rows = [BboRow(i, "65000.1", "1.5", "65000.2", "2.5", now_ms, now_ms, now_ns) for i in range(lo, lo + n)]
            self.next_bbo[symbol] = lo + n
        return {"v": b"1", "n": n, "lo": lo, "hi": lo + n - 1, "d": BATCH_ENCODER.encode(rows), "t": now_ns}

    def add_backlog(self, rows_per_stream: int) -> int:
        """Write a burst of full (256-row) entries as fast as Redis takes them."""
        now_ms = int(time.time() * 1000)
        total = 0
        with self.client.pipeline(transaction=False) as pipe:
            for symbol in self.symbols:
                for kind in (MdKind.TRADE, MdKind.BBO):
                    for start in range(0, rows_per_stream, 256):
                        n = min(256, rows_per_stream - start)
                        pipe.xadd(md_stream("sim", kind, symbol), self._entry(symbol, kind, n, now_ms, time.time_ns()))
                        total += n
                    pipe.execute()
        return total

    def fed(self) -> tuple[int, int]:
        return sum(v - 1 for v in self.next_trade.values()), sum(v - 1 for v in self.next_bbo.values())


class Poller(threading.Thread):
    """Event -> visible: how long after its event time each trade entry became queryable."""

    def __init__(self, url: str, feeder: Feeder, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True, name="poller")
        self.url = url + "/query"
        self.feeder = feeder
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []  # (latency_s, rows)
        self.recording = False
        self.running = True
        self.http = httpx.Client(timeout=5)

    def run(self) -> None:
        seen = dict.fromkeys(self.feeder.symbols, 0)
        while self.running:
            # Only granules above what was already seen (primary key venue, symbol, trade_id): the poll
            # stays cheap however large the table grows, so measuring does not slow the recorder.
            where = " OR ".join(f"(symbol = '{s}' AND trade_id > {n})" for s, n in seen.items())
            sql = f"SELECT symbol, max(trade_id) FROM market_trades WHERE venue = 'sim' AND ({where}) GROUP BY symbol"
            try:
                rows = self.http.post(self.url, json={"sql": sql}).json()["rows"]
            except (httpx.HTTPError, KeyError, ValueError):
                time.sleep(self.interval_s)
                continue
            seen_ms = time.time() * 1000
            for symbol, max_id in rows:
                seen[symbol] = max(seen[symbol], int(max_id))
                queue = self.feeder.pending.get(symbol)
                if queue is None:
                    continue
                with self.feeder.lock:
                    while queue and queue[0][0] <= int(max_id):
                        _, event_ms, n = queue.popleft()
                        if self.recording:
                            self.samples.append(((seen_ms - event_ms) / 1000, n))
            time.sleep(self.interval_s)


def weighted_quantile(samples: list[tuple[float, int]], q: float) -> float:
    ordered = sorted(samples)
    total = sum(n for _, n in ordered)
    target = q * total
    acc = 0
    for value, n in ordered:
        acc += n
        if acc >= target:
            return value
    return ordered[-1][0] if ordered else float("nan")


def latency_buckets(url: str, table: str = "market_trades") -> dict[float, float]:
    """Cumulative buckets of the recorder's own event -> inserted histogram (observed when the insert
    returned, i.e. when the rows became visible)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=5).text
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "hftops_recorder_event_to_ingest_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("table") == table:
                out[float(sample.labels["le"])] = sample.value
    return out


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Linear interpolation inside the bucket holding quantile q of the observations between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    target = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= target:
            if bound == float("inf"):
                return previous_bound
            share = (target - previous_count) / max(count - previous_count, 1e-9)
            return previous_bound + (bound - previous_bound) * share
        previous_bound, previous_count = bound, count
    return bounds[-2]


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss")
        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, str, int]] = []
        self.phase = "start"
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.samples.append((time.monotonic(), self.phase, self.process.memory_info().rss))
            except psutil.Error:
                return
            time.sleep(0.25)

    def of(self, *phases: str) -> list[int]:
        return [rss for _, phase, rss in self.samples if phase in phases]


def wait_until(condition: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(interval_s)
    raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")


def query(url: str, sql: str) -> list[list[Any]]:
    response = httpx.post(url + "/query", json={"sql": sql}, timeout=60)
    response.raise_for_status()
    return response.json()["rows"]  # type: ignore[no-any-return]


def insert_ceiling_and_naive(work: Path, rows_total: int) -> tuple[float, float]:
    """Raw chDB inserts of the recorder's own lines: 20,000-row inserts vs one insert per 256-row entry."""
    from hftops.model.tables import MARKET_TRADES
    from hftops.store.chdb_store import ChdbStore
    from hftops.store.ddl import TRADE_INSERT_COLUMNS
    from hftops.store.rows import market_lines

    now_ms = int(time.time() * 1000)
    results = []
    for name, per_insert in (("ceiling", 20_000), ("naive", 256)):
        store = ChdbStore(work / f"chdb-{name}", "hftops")
        store.open()
        try:
            rows = [
                TradeRow(i, "65000.12", "0.001", True, now_ms, now_ms, time.time_ns(), i, i)
                for i in range(1, rows_total + 1)
            ]
            bodies = [
                b"\n".join(market_lines(MdKind.TRADE, "sim", "BTCUSDT", rows[i : i + per_insert], 1))
                for i in range(0, rows_total, per_insert)
            ]
            started = time.perf_counter()
            for n, body in enumerate(bodies):
                store.insert(MARKET_TRADES, TRADE_INSERT_COLUMNS, body, f"{name}-{n}")
            results.append(rows_total / (time.perf_counter() - started))
        finally:
            store.close()
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20_000.0)
    parser.add_argument(
        "--steady",
        type=float,
        default=60.0,
        help="seconds at the rate before the outage (RSS settles after ~40 s: parts and merges grow)",
    )
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--short", action="store_true", help="10 s outage (development)")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="rows for the max-throughput phase")
    parser.add_argument("--symbols", type=int, default=5)
    args = parser.parse_args()
    outage_s = 10.0 if args.short else args.outage
    symbols = SYMBOLS[: args.symbols]

    work = Path(tempfile.mkdtemp(prefix="hftops-bench-recorder-"))
    data = work / "var"
    redis_port, query_port = free_port(), free_port()
    config = {
        "data_dir": str(data),
        "venue": {"symbols": symbols},
        "redis": {"url": f"redis://127.0.0.1:{redis_port}/0"},
        "recorder": {"query_port": query_port, "disk_free_min_bytes": 0},
        "log": {"level": "info"},
    }
    (work / "hftops.yaml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{query_port}"
    valkey = start_valkey(ValkeySpec(port=redis_port, data_dir=work / "valkey"), log_path=work / "valkey.log")
    recorder: subprocess.Popen[bytes] | None = None
    try:
        wait_until_ready(config["redis"]["url"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_") and k != "NOTIFY_SOCKET"}
        env["HFT_CONFIG"] = str(work / "hftops.yaml")
        with open(work / "recorder.out", "wb") as out:
            recorder = subprocess.Popen(
                [sys.executable, "-m", "hftops.pipeline.recorder"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

        def healthy() -> bool:
            try:
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "recorder ready")
        rss = RssSampler(recorder.pid)
        rss.start()
        feeder = Feeder(config["redis"]["url"], args.rate, symbols)
        poller = Poller(url, feeder)
        print(
            f"recorder outage bench: {args.rate:,.0f} msg/s over {len(symbols)} symbols "
            f"({2 * len(symbols)} streams), steady {args.steady:.0f} s, outage {outage_s:.0f} s; work dir {work}"
        )

        # -- steady state ------------------------------------------------------------------------
        rss.phase = "warmup"
        feeder.start()
        poller.start()
        time.sleep(args.steady / 2)
        rss.phase = "steady"
        poller.recording = True
        buckets_before = latency_buckets(url)
        time.sleep(args.steady / 2)
        buckets_after = latency_buckets(url)
        poller.recording = False
        steady_lat = list(poller.samples)
        steady_rss = statistics.median(rss.of("steady"))

        # -- outage ------------------------------------------------------------------------------
        fault = data / "state" / "faults" / "clickhouse_down"
        fault.parent.mkdir(parents=True, exist_ok=True)
        rss.phase = "outage"
        fault.write_text("bench\n")
        outage_started = time.monotonic()
        wal_peak = 0
        while time.monotonic() - outage_started < outage_s:
            wal_peak = max(wal_peak, httpx.get(url + "/wal", timeout=5).json()["bytes"])
            time.sleep(0.5)
        wal_at_end = httpx.get(url + "/wal", timeout=5).json()
        wal_peak = max(wal_peak, wal_at_end["bytes"])
        rss.phase = "recovery"
        fault.unlink()
        recovery_s = wait_until(lambda: httpx.get(url + "/wal", timeout=5).json()["segments"] == 0, 120, "WAL replayed")
        wal_rows = sum(hi - lo + 1 for ranges in wal_at_end["ids"].values() for lo, hi in ranges)
        time.sleep(5)  # the merges of the replayed parts belong to the outage's cost
        rss.phase = "after"
        peak_rss = max(rss.of("outage", "recovery"))

        # -- exactness at rate, then the backlog ---------------------------------------------------
        feeder.paused = True
        trades_fed, bbo_fed = feeder.fed()
        wait_until(lambda: query(url, "SELECT count() FROM market_trades")[0][0] >= trades_fed, 60, "trades caught up")
        rss.phase = "backlog"
        total_sql = "SELECT (SELECT count() FROM market_trades) + (SELECT count() FROM market_bbo)"
        started = time.monotonic()
        added = feeder.add_backlog(max(256, args.backlog // (2 * len(symbols))))
        trades_fed, bbo_fed = feeder.fed()
        wait_until(lambda: query(url, total_sql)[0][0] >= trades_fed + bbo_fed, 300, "backlog stored", interval_s=0.05)
        backlog_s = time.monotonic() - started
        backlog_rate = added / backlog_s
        stored = query(url, "SELECT count(), uniqExact(symbol, trade_id) FROM market_trades")[0]
        stored_bbo = query(url, "SELECT count(), uniqExact(symbol, update_id) FROM market_bbo")[0]
        stats = httpx.get(url + "/stats", timeout=5).json()
        feeder.running = poller.running = False

        recorder.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        code = recorder.wait(30)
        stop_s = time.monotonic() - stop_started
        rss.running = False
        recorder = None

        ceiling, naive = insert_ceiling_and_naive(work, 400_000)

        # -- report ------------------------------------------------------------------------------
        delta = (peak_rss - steady_rss) / MB
        p50, p99 = weighted_quantile(steady_lat, 0.5), weighted_quantile(steady_lat, 0.99)
        print()
        print(
            f"RSS   steady {steady_rss / MB:7.1f} MB (median of {len(rss.of('steady'))} samples)   "
            f"peak through outage+replay {peak_rss / MB:7.1f} MB   =>  +{delta:.1f} MB above steady "
            f"(budget 64 MB: {'PASS' if delta <= 64 else 'FAIL'})"
        )
        phases = {p: max(rss.of(p), default=0) / MB for p in ("steady", "outage", "recovery", "backlog")}
        print("      max RSS by phase: " + ", ".join(f"{p} {v:.1f} MB" for p, v in phases.items()))
        print(
            f"WAL   peak {wal_peak / MB:.1f} MB, {wal_rows:,} trade rows (+ bbo) at the end of the outage; "
            f"replayed in {recovery_s:.1f} s while the live feed continued"
        )
        h50, h99 = (histogram_quantile(buckets_before, buckets_after, q) for q in (0.5, 0.99))
        print(
            f"LAT   event -> visible at {args.rate:,.0f} msg/s (steady; recorder histogram, observed when each "
            f"insert returned): p50 {h50 * 1000:.0f} ms, p99 {h99 * 1000:.0f} ms (budget p99 <= 300 ms: "
            f"{'PASS' if h99 <= 0.3 else 'FAIL'})"
        )
        print(
            f"      cross-check from outside, /query every 100 ms ({sum(n for _, n in steady_lat):,} trades; adds "
            f"0-100 ms of polling): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )
        print(
            f"INS   max sustained insert: {added:,} backlog rows stored in {backlog_s:.2f} s = "
            f"{backlog_rate:,.0f} rows/s"
        )
        print(
            f"      ceiling (raw chDB insert, 20,000-row JSONCompactEachRow inserts): {ceiling:,.0f} rows/s "
            f"({backlog_rate / ceiling:.0%} of it)"
        )
        print(f"      naive   (one insert per 256-row stream entry):                    {naive:,.0f} rows/s")
        exact = stored[0] == stored[1] == trades_fed and stored_bbo[0] == stored_bbo[1] == bbo_fed
        print(
            f"EXACT trades fed {trades_fed:,} stored {stored[0]:,} distinct {stored[1]:,}; "
            f"bbo fed {bbo_fed:,} stored {stored_bbo[0]:,} distinct {stored_bbo[1]:,} -> "
            f"{'OK' if exact else 'MISMATCH'}"
        )
        print(
            f"STOP  SIGTERM -> exit {code} in {stop_s:.2f} s; feeder max lag {feeder.behind_max * 1000:.0f} ms; "
            f"recorder counters: {stats['counters']['batches']}"
        )
    finally:
        if recorder is not None:
            recorder.kill()
        valkey.kill()
        valkey.wait()


if __name__ == "__main__":
    main()
