"""Tick -> order sent, p50/p99: (a) inside the engine, (b) including the Redis hop.

The strategy is the demo market maker set to re-quote on every move of the mid (quotes 5% out, so they never
fill); every tick moves the mid, so every tick cancels both quotes and sends two new orders. Ticks are sent one
at a time (latency, not throughput); the figure is the first new order of each tick.

(a) in the engine process: the real `Engine` (build_engine), its broker replaced by a stub that notes the time
    `place_order` is entered. From `Engine._on_bbo(bbo)` (the feed's callback: state, strategy, gate chain,
    dispatch) to the router's send call, through the event loop's task hop.
      ceiling - the callback hands a ready-made order straight to the router (the task hop and router only)
      naive   - the engine's intents queued for a sender loop that polls every 1 ms
(b) processes: Valkey, the simulated venue and the engine process (`python -m hftops.engine`), the broker's
    REST going through a timestamping proxy in this process. From the XADD of a bookTicker batch to
    md:{venue}:bbo:BTCUSDT until the POST /fapi/v1/order reaches the proxy (in front of the venue).
      ceiling - a bare relay: XREAD BLOCK on the stream, a signed POST per entry over a keep-alive client
      naive   - a relay polling the newest entry every 5 ms, a new HTTP connection per order

Usage: .venv/bin/python bench/tick_to_order.py [--ticks 2000] [--hop-ticks 400]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.tick_world, tests.support

import redis.asyncio as aioredis

from bench.tick_world import SYMBOL, Proxy, World, engine_tree
from hftops.config import load_config
from hftops.engine.service import Engine, build_engine
from hftops.execution.wire import RestOrder
from hftops.model.market import BATCH_ENCODER, BboRow
from hftops.model.orders import Bbo, Intent, IntentKind, OrderType, Side
from hftops.model.streams import MdKind, md_stream

MID = Decimal(60000)


class StubBroker:
    """Answers instantly and notes when each new order reaches the send call."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[int] = asyncio.Queue()
        self._ids: dict[str, int] = {}

    def _answer(self, cid: str, status: str, **kw: Any) -> RestOrder:
        order_id = self._ids.setdefault(cid, len(self._ids) + 1)
        return RestOrder(
            orderId=order_id,
            symbol=SYMBOL,
            status=status,
            clientOrderId=cid,
            price=kw.get("price") or Decimal(1),
            origQty=kw.get("quantity") or Decimal(1),
            executedQty=Decimal(0),
            side=kw.get("side", "BUY"),
            type=kw.get("order_type", "LIMIT"),
        )

    async def place_order(self, **kw: Any) -> RestOrder:
        self.sent.put_nowait(time.perf_counter_ns())
        return self._answer(kw["client_order_id"], "NEW", **kw)

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> RestOrder:
        return self._answer(client_order_id or "", "CANCELED")

    def drain(self) -> None:
        while not self.sent.empty():
            self.sent.get_nowait()


def bbo(i: int) -> Bbo:
    mid = MID + (i % 2)  # a 1 USD move every tick: both quotes are replaced
    return Bbo(
        symbol=SYMBOL,
        update_id=i,
        bid_price=mid - Decimal("0.05"),
        bid_qty=Decimal(1),
        ask_price=mid + Decimal("0.05"),
        ask_qty=Decimal(1),
        time_ms=0,
    )


def in_process_engine(root: Path) -> tuple[Engine, StubBroker]:
    tree = engine_tree(root / "var", 1, 1, 1, None)
    path = root / "inproc.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tree))
    engine = build_engine(load_config(path, environ={}), environ={})
    stub = StubBroker()
    engine.execution.router._broker = stub  # type: ignore[assignment]
    engine._poll_sessions()
    engine.started, engine.phase = True, "running"
    return engine, stub


async def timed(
    ticks: int,
    fire: Callable[[int], None],
    sent: asyncio.Queue[int],
    settle: Callable[[], Awaitable[Any]],
    drain: Callable[[], None],
) -> list[int]:
    samples = []
    gc.disable()
    try:
        for i in range(ticks):
            t0 = time.perf_counter_ns()
            fire(i)
            t1 = await asyncio.wait_for(sent.get(), 5)
            samples.append(t1 - t0)
            await settle()
            drain()
    finally:
        gc.enable()
    return samples


async def bench_in_engine(ticks: int, root: Path) -> dict[str, list[int]]:
    engine, stub = in_process_engine(root)

    async def settle() -> None:
        for _ in range(20):  # cancels and the second order of the tick run to completion
            await asyncio.sleep(0)

    out = {"figure": await timed(ticks, lambda i: engine._on_bbo(bbo(i)), stub.sent, settle, stub.drain)}
    router = engine.execution.router
    ready = Intent(
        kind=IntentKind.NEW,
        strategy_id="direct",
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.001"),
        price=Decimal(30000),
        order_type=OrderType.LIMIT,
    )

    def direct(_: int) -> None:
        asyncio.get_running_loop().create_task(router.submit(ready))

    out["ceiling"] = await timed(ticks, direct, stub.sent, settle, stub.drain)

    queued: list[Any] = []
    spawn = engine._spawn
    engine._spawn = queued.append  # type: ignore[method-assign]

    async def sender() -> None:
        while True:
            while queued:
                spawn(queued.pop(0))
            await asyncio.sleep(0.001)

    loop_task = asyncio.get_running_loop().create_task(sender())
    out["naive"] = await timed(ticks, lambda i: engine._on_bbo(bbo(i)), stub.sent, settle, stub.drain)
    loop_task.cancel()
    await engine.redis.aclose()
    return out


def bbo_entry(i: int) -> dict[str, bytes]:
    mid = MID + (i % 2)
    row = BboRow(i + 1, str(mid - Decimal("0.05")), "1", str(mid + Decimal("0.05")), "1", 0, 0, 0)
    return {"d": BATCH_ENCODER.encode([row])}


async def hop(ticks: int, world: World, proxy: Proxy) -> list[int]:
    client = aioredis.Redis.from_url(world.redis_url)
    key = md_stream("sim", MdKind.BBO, SYMBOL)
    pending: list[asyncio.Task[Any]] = []

    def fire(i: int) -> None:
        pending.append(asyncio.get_running_loop().create_task(client.xadd(key, bbo_entry(i))))

    async def settle() -> None:
        await asyncio.gather(*pending)
        pending.clear()
        await asyncio.sleep(0.02)  # the cancels and the second order of the tick land before the next tick

    for i in range(20):  # warm-up: connections, the strategy's first quotes
        fire(i)
        await settle()
    proxy.drain()
    samples = await timed(ticks, fire, proxy.arrivals, settle, proxy.drain)
    await client.aclose()
    return samples


async def bench_hop(ticks: int, root: Path) -> dict[str, list[int]]:
    world = World(root)
    out: dict[str, list[int]] = {}
    try:
        world.start()
        proxy = Proxy(world.rest_port)
        await proxy.start()
        world.write_config(f"http://127.0.0.1:{proxy.port}")
        engine = await asyncio.to_thread(world.start_engine)
        print("  (b) engine ready; measuring", file=sys.stderr, flush=True)
        out["figure"] = await hop(ticks, world, proxy)
        world.stop(engine)
        key = md_stream("sim", MdKind.BBO, SYMBOL)
        for name, mode in (("ceiling", "block"), ("naive", "poll")):
            relay = await asyncio.to_thread(world.start_relay, mode, proxy.port, key)
            print(f"  (b) {name} relay ready; measuring", file=sys.stderr, flush=True)
            out[name] = await hop(ticks, world, proxy)
            world.stop(relay)
        await proxy.close()
    finally:
        world.close()
    return out


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def table(title: str, rows: dict[str, list[int]], unit: str = "µs") -> None:
    print(title)
    print(f"  {'':10s} {'p50 ' + unit:>10s} {'p99 ' + unit:>10s} {'max ' + unit:>10s} {'n':>6s}")
    for name in ("figure", "ceiling", "naive"):
        s = rows[name]
        print(f"  {name:10s} {pct(s, 0.5):10.1f} {pct(s, 0.99):10.1f} {max(s) / 1000:10.1f} {len(s):6d}")
    print(
        f"  figure/ceiling p50 {pct(rows['figure'], 0.5) / pct(rows['ceiling'], 0.5):.1f}x, "
        f"naive/figure p50 {pct(rows['naive'], 0.5) / pct(rows['figure'], 0.5):.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=2000, help="ticks measured inside the engine")
    parser.add_argument("--hop-ticks", type=int, default=400, help="ticks measured through Redis and the venue")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tick2order") as tmp:
        root = Path(tmp)
        inside = asyncio.run(bench_in_engine(args.ticks, root))
        table(f"(a) tick -> order sent inside the engine ({args.ticks} ticks; Engine._on_bbo -> place_order)", inside)
        (root / "hop").mkdir()
        through = asyncio.run(bench_hop(args.hop_ticks, root / "hop"))
        table(f"(b) tick -> order at the venue through Redis ({args.hop_ticks} ticks; XADD -> POST arrives)", through)


if __name__ == "__main__":
    main()
