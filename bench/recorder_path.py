"""The recorder's own CPU per stream entry: XREADGROUP -> decode -> build the insert -> XACK, on a real Valkey.

No database: this is the Python the recorder's event loop spends on every entry, the part that competes with
the collector for a CPU (the insert itself runs in chDB's threads). The collector writes one entry per symbol
per flush, so at 20,000 msg/s and 2 ms flushes entries hold 2-4 rows and the per-entry cost is what counts.

Beside it, on the same entries:
  ceiling - XREADGROUP + XACK only (what reading the bus costs before any work on the data)
  naive   - the obvious consumer: each row decoded to a dict and dumped with the json module

    .venv/bin/python bench/recorder_path.py [--entries 20000] [--rows 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port  # noqa: E402

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready  # noqa: E402
from hftops.model.market import BboRow, TradeRow  # noqa: E402
from hftops.model.streams import MdKind, md_streams  # noqa: E402
from hftops.pipeline.collector.batcher import Chunk  # noqa: E402
from hftops.pipeline.collector.writer import BusWriter  # noqa: E402
from hftops.pipeline.recorder.batches import Batch, build_jobs  # noqa: E402
from hftops.pipeline.recorder.consumer import Delivered, StreamConsumer  # noqa: E402
from hftops.pipeline.recorder.entries import decode_entry  # noqa: E402
from hftops.pipeline.recorder.idset import IdRegistry  # noqa: E402

SYMBOLS = [f"S{i}USDT" for i in range(10)]
BASE_MS = 1_765_000_000_000
PER_READ = 6  # entries per stream per XREADGROUP: about what a live recorder gets every 10 ms at 20k msg/s


async def fill(url: str, entries: int, rows: int) -> None:
    """Entries as the collector writes them: trades with sequential ids, book rows with gapped ids."""
    writer = BusWriter(url, "bench")
    next_id = dict.fromkeys(SYMBOLS, 1)
    pending = []
    for _ in range(entries // (2 * len(SYMBOLS))):
        chunks = []
        for symbol in SYMBOLS:
            first = next_id[symbol]
            next_id[symbol] += rows
            trades = Chunk((MdKind.TRADE, symbol), 0)
            trades.rows = [
                TradeRow(i, "65000.10", "0.012", False, BASE_MS, BASE_MS, BASE_MS * 10**6, i, i)
                for i in range(first, first + rows)
            ]
            trades.lo, trades.hi = first, first + rows - 1
            books = Chunk((MdKind.BBO, symbol), 0)
            books.rows = [
                BboRow(3 * i, "65000.10", "1.5", "65000.20", "2.5", BASE_MS, BASE_MS, BASE_MS * 10**6)
                for i in range(first, first + rows)
            ]
            books.lo, books.hi = 3 * first, 3 * (first + rows - 1)
            chunks += [trades, books]
        pending.append(writer.submit(chunks, [], {}))
        if len(pending) >= 50:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await writer.aclose()


def recorder_work(registry: IdRegistry) -> Callable[[list[Delivered]], None]:
    def work(delivered: list[Delivered]) -> None:
        batch = Batch(started=0.0)
        for d in delivered:
            batch.add(decode_entry(d.stream, d.entry_id, d.fields))
        jobs, _ = build_jobs(batch, registry, set(), time.time_ns() // 1000)
        for job in jobs:
            for key, ranges in job.ids.items():
                registry.mark_stored(key, ranges)

    return work


def naive_work(delivered: list[Delivered]) -> None:
    for d in delivered:
        for row in msgspec.msgpack.decode(d.fields[b"d"]):
            json.dumps(dict(zip(("id", "p", "q", "m", "t", "e", "r", "f", "l"), row, strict=False))).encode()


def no_work(delivered: list[Delivered]) -> None:
    return None


async def drain(url: str, group: str, work: Callable[[list[Delivered]], None]) -> tuple[float, int]:
    """CPU seconds of this process per entry to read, work on and acknowledge every entry."""
    client = aioredis.Redis.from_url(url)
    consumer = StreamConsumer(client, md_streams("bench", SYMBOLS), group, "c0", read_count=512, claim_idle_ms=60_000)
    await consumer.ensure_groups()
    done = 0
    started = time.process_time()
    while True:
        delivered = await consumer.read_new(PER_READ, 1)
        if not delivered:
            break
        work(delivered)
        acks: dict[str, list[bytes]] = {}
        for d in delivered:
            acks.setdefault(d.stream, []).append(d.entry_id)
        await consumer.ack(acks)
        done += len(delivered)
    cpu = time.process_time() - started
    await client.aclose()
    return cpu / max(1, done), done


async def measure(url: str, entries: int, rows: int) -> dict[str, float]:
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    await client.aclose()
    await fill(url, entries, rows)
    registry = IdRegistry()
    registry.loaded = True
    out: dict[str, float] = {}
    for name, work in (("ceiling", no_work), ("recorder", recorder_work(registry)), ("naive", naive_work)):
        per_entry, done = await drain(url, name, work)
        out[name] = per_entry * 1e6
        out["entries"] = done
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rows", default="1,4,16", help="rows per entry, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hftops-bench-") as tmp:
        spec = ValkeySpec(port=free_port(), data_dir=Path(tmp) / "valkey")
        valkey = start_valkey(spec, log_path=Path(tmp) / "valkey.log")
        url = f"redis://127.0.0.1:{spec.port}/0"
        try:
            wait_until_ready(url)
            results = [(int(r), asyncio.run(measure(url, args.entries, int(r)))) for r in args.rows.split(",")]
        finally:
            valkey.terminate()
            valkey.wait(timeout=10)
    print(f"\nrecorder event-loop CPU per stream entry (us), {len(SYMBOLS)} symbols x trades + book, no database")
    print(f"{'rows/entry':>10} {'entries':>8} {'ceiling':>8} {'recorder':>9} {'naive':>8} {'recorder/row':>13}")
    for rows, r in results:
        print(
            f"{rows:>10} {r['entries']:>8,.0f} {r['ceiling']:>8.1f} {r['recorder']:>9.1f} {r['naive']:>8.1f} "
            f"{r['recorder'] / rows:>13.2f}"
        )
    print("ceiling: XREADGROUP + XACK only; naive: each row to a dict and json.dumps; all include read and ack")


if __name__ == "__main__":
    main()
