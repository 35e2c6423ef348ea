"""Processes for the Redis-hop part of bench/tick_to_order.py: Valkey, the simulated venue, a timestamping proxy
in front of the venue's REST, the engine process, and two bare relays (the ceiling and the naive baseline).

The proxy runs in the bench process, so the tick's XADD time and the order's arrival time come from one clock.
The relays (`python bench/tick_world.py relay block|poll ...`) do the least work a tick -> order path can do:
  block - XREAD BLOCK on the bookTicker stream, one signed POST per entry over a keep-alive client (ceiling)
  poll  - XREVRANGE of the newest entry every 5 ms, a new HTTP connection per order (the obvious way)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import yaml
from tests.support.ports import free_port

from hftops.bus.valkey_server import ValkeySpec, start_valkey, wait_until_ready
from hftops.execution.rest import BinanceFuturesRest
from hftops.execution.signing import DEV_API_KEY, DEV_API_SECRET, Credentials
from hftops.model.streams import STATS_HASH

ROOT = Path(__file__).resolve().parent.parent
SYMBOL = "BTCUSDT"
ORDER_LINE = b"POST /fapi/v1/order"
FAR_BUY = Decimal(30000)  # a resting bid far below the simulated market: never fills


def engine_tree(data_dir: Path, rest_port: int, ws_port: int, redis_port: int, broker_url: str | None) -> dict:
    """The demo market maker set to re-quote on every move of the mid, its quotes 5% out (they never fill)."""
    strategy = {
        "id": "mm1",
        "path": "hftops.engine.strategies.market_maker:QuotingMarketMaker",
        "symbols": [SYMBOL],
        "params": {
            "qty": "0.001",
            "half_spread_bps": "500",
            "requote_bps": "0.01",
            "max_inventory": "1",
            "tick": "0.1",
        },
        "limits": {
            "max_position_qty": "10",
            "price_band_bps": "1000",
            "max_orders_per_s": 1_000_000,
            "order_burst": 1_000_000,
        },
    }
    return {
        "data_dir": str(data_dir),
        "venue": {"symbols": [SYMBOL]},
        "simulator": {"rest_port": rest_port, "ws_port": ws_port, "rate": 200, "burst_factor": 1.0},
        "redis": {"port": redis_port, "url": f"redis://127.0.0.1:{redis_port}/0"},
        "engine": {"strategies": [strategy]},
        "broker": {"rest_url": broker_url} if broker_url else {},
    }


class Proxy:
    """TCP forwarder to the venue's REST port that notes when each new-order request arrives."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.arrivals: asyncio.Queue[int] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
            try:
                while data := await src.read(65536):
                    if watch and data.startswith(ORDER_LINE):
                        self.arrivals.put_nowait(time.perf_counter_ns())
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def drain(self) -> None:
        while not self.arrivals.empty():
            self.arrivals.get_nowait()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


class World:
    """Valkey + simulated venue (publishing paused: the only market data is what the bench writes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis_port, self.rest_port, self.ws_port = free_port(), free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.children: list[subprocess.Popen[bytes]] = []
        self.config_path = root / "bench.yaml"
        self.write_config(None)

    def write_config(self, broker_url: str | None) -> None:
        tree = engine_tree(self.root / "var", self.rest_port, self.ws_port, self.redis_port, broker_url)
        self.config_path.write_text(yaml.safe_dump(tree))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HFT_")}
        env.update(
            HFT_CONFIG=str(self.config_path),
            PYTHONPATH=str(ROOT),
            HFT_BROKER_API_KEY=DEV_API_KEY,
            HFT_BROKER_API_SECRET=DEV_API_SECRET,
        )
        return env

    def spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.out", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen(argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.children.append(child)
        return child

    def start(self) -> None:
        self.children.append(start_valkey(ValkeySpec(port=self.redis_port, data_dir=self.root / "redis")))
        wait_until_ready(self.redis_url)
        self.spawn([sys.executable, "-m", "hftops.venue"], "venue")
        rest = f"http://127.0.0.1:{self.rest_port}"
        _wait(lambda: _answers(f"{rest}/fapi/v1/time"), 30, "venue REST")
        httpx.post(f"{rest}/admin/publishing", json={"paused": True}, timeout=5).raise_for_status()

    def start_engine(self) -> subprocess.Popen[bytes]:
        engine = self.spawn([sys.executable, "-m", "hftops.engine"], "engine")
        client = redis.Redis.from_url(self.redis_url)

        def ready() -> bool:
            if engine.poll() is not None:
                raise RuntimeError(f"engine exited {engine.returncode}; see {self.root / 'engine.out'}")
            raw = client.hget(STATS_HASH, "engine")
            return bool(raw and json.loads(raw).get("ready_to_trade"))

        _wait(ready, 60, "engine ready_to_trade")
        client.close()
        return engine

    def start_relay(self, mode: str, proxy_port: int, key: str) -> subprocess.Popen[bytes]:
        relay = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__)),
                "relay",
                mode,
                "--redis",
                self.redis_url,
                "--rest",
                f"http://127.0.0.1:{proxy_port}",
                "--key",
                key,
            ],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"relay {mode} did not start")
        self.children.append(relay)
        return relay

    @staticmethod
    def stop(child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def close(self) -> None:
        for child in reversed(self.children):
            self.stop(child)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout_s}s waiting for {what}")


# --- the relays (run as `python bench/tick_world.py relay block|poll ...`) ---


async def relay(mode: str, redis_url: str, rest_url: str, key: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    cursor = (await client.xrevrange(key, count=1) or [(b"0-0", None)])[0][0]
    keep_alive = BinanceFuturesRest(rest_url, Credentials(DEV_API_KEY, DEV_API_SECRET))
    await keep_alive.sync_time()
    sent = 0

    async def order() -> None:
        nonlocal sent
        sent += 1
        rest = keep_alive if mode == "block" else BinanceFuturesRest(rest_url, Credentials(DEV_API_KEY, DEV_API_SECRET))
        rest.offset_ms, rest._time_synced = keep_alive.offset_ms, True
        await rest.place_order(
            symbol=SYMBOL,
            side="BUY",
            order_type="LIMIT",
            quantity=Decimal("0.001"),
            price=FAR_BUY,
            time_in_force="GTC",
            client_order_id=f"relay-{os.getpid()}-{sent}",
        )
        if rest is not keep_alive:
            await rest.aclose()

    print("ready", flush=True)
    while True:
        if mode == "block":
            answer = await client.xread({key: cursor}, count=100, block=1000)
            for _, entries in answer or ():
                for entry_id, _fields in entries:
                    cursor = entry_id
                    await order()
        else:
            newest = await client.xrevrange(key, count=1)
            if newest and newest[0][0] != cursor:
                cursor = newest[0][0]
                await order()
            await asyncio.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay"])
    parser.add_argument("mode", choices=["block", "poll"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--rest", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(relay(args.mode, args.redis, args.rest, args.key))


if __name__ == "__main__":
    main()
