"""Orders per second through the adapter (the execution layer) against the simulated venue process.

Each order is a LIMIT IOC buy far below the market (the venue accepts it, finds nothing to match and expires
it), so nothing accumulates at the venue and every run meets the same venue. `--concurrency` orders are in
flight at a time; the venue does not publish market data during the run.

  figure  - `OrderRouter.submit` of the execution layer (`build_execution`): client order id, state machine,
            signed REST through the keep-alive client, typed answer, the user-data stream's events applied
  ceiling - raw signed httpx POSTs over one keep-alive client (query string, HMAC, POST; nothing decoded)
  naive   - the same signed POST over a new connection (a new httpx client) per order

Usage: .venv/bin/python bench/orders_per_sec.py [--orders 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.tick_world, tests.support

import httpx

from bench.tick_world import FAR_BUY, SYMBOL, World
from hftops.config import load_config
from hftops.execution import build_execution
from hftops.execution.signing import DEV_API_KEY, DEV_API_SECRET, Credentials, encode_params
from hftops.model.orders import Intent, IntentKind, OrderStatus, OrderType, Side, TimeInForce

QTY = Decimal("0.001")


async def run(orders: int, concurrency: int, send: Callable[[int], Awaitable[None]]) -> tuple[float, list[int]]:
    """(orders per second, per-order latencies in ns) with `concurrency` orders in flight."""
    latencies: list[int] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < orders:
            i = next_index
            next_index += 1
            t0 = time.perf_counter_ns()
            await send(i)
            latencies.append(time.perf_counter_ns() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return orders / (time.perf_counter() - started), latencies


def signed_query(i: int, run_id: str, offset_ms: int) -> str:
    params = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.001",
        "price": str(FAR_BUY),
        "timeInForce": "IOC",
        "newClientOrderId": f"{run_id}-{i}",
        "recvWindow": 5000,
        "timestamp": int(time.time() * 1000) + offset_ms,
    }
    query = encode_params(params)
    return f"{query}&signature={Credentials(DEV_API_KEY, DEV_API_SECRET).sign(query)}"


async def bench(orders: int, concurrency: int, root: Path) -> dict[str, tuple[float, list[int]]]:
    world = World(root)
    out: dict[str, tuple[float, list[int]]] = {}
    try:
        world.start()
        config = load_config(world.config_path, environ={})
        layer = build_execution(config, environ={}, session="ops")
        await layer.start()
        router = layer.router

        async def submit(i: int) -> None:
            update = await router.submit(
                Intent(
                    kind=IntentKind.NEW,
                    strategy_id="bench",
                    symbol=SYMBOL,
                    side=Side.BUY,
                    qty=QTY,
                    price=FAR_BUY,
                    order_type=OrderType.LIMIT,
                    tif=TimeInForce.IOC,
                )
            )
            if update.status not in (OrderStatus.EXPIRED, OrderStatus.ACK):
                raise RuntimeError(f"order {update.client_order_id}: {update.status} {update.reason}")

        await run(200, concurrency, submit)  # warm-up
        out["figure"] = await run(orders, concurrency, submit)
        offset = layer.rest.offset_ms
        base = config.rest_base_url
        headers = {"X-MBX-APIKEY": DEV_API_KEY}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

            async def raw(i: int) -> None:
                response = await client.post(f"/fapi/v1/order?{signed_query(i, 'raw', offset)}", headers=headers)
                response.raise_for_status()

            await run(200, concurrency, raw)
            out["ceiling"] = await run(orders, concurrency, raw)

        async def fresh(i: int) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                response = await client.post(f"/fapi/v1/order?{signed_query(i, 'new', offset)}", headers=headers)
                response.raise_for_status()

        out["naive"] = await run(max(200, orders // 4), concurrency, fresh)
        errors = router.counters.illegal_transitions + router.counters.bad_events
        if errors:
            raise RuntimeError(f"router counted {errors} illegal transitions / bad events: {router.stats()}")
        await layer.stop(cancel_open_orders=False)
    finally:
        world.close()
    return out


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orders_per_sec") as tmp:
        rows = asyncio.run(bench(args.orders, args.concurrency, Path(tmp)))
    print(
        f"orders per second through the adapter ({args.orders} LIMIT IOC orders, {args.concurrency} in flight, "
        f"simulated venue)"
    )
    print(f"  {'':10s} {'orders/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name in ("figure", "ceiling", "naive"):
        rate, latencies = rows[name]
        print(f"  {name:10s} {rate:10.0f} {pct(latencies, 0.5):8.2f} {pct(latencies, 0.99):8.2f}")
    figure, ceiling, naive = rows["figure"][0], rows["ceiling"][0], rows["naive"][0]
    print(f"  figure/ceiling {figure / ceiling:.2f}, figure/naive {figure / naive:.1f}x")


if __name__ == "__main__":
    main()
