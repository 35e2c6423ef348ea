"""A tiny Binance-format venue for collector tests: combined WS streams and REST aggTrades on one port.

It keeps every trade it made (the REST store, i.e. the ground truth) and can skip ids on the wire, send
raw frames, drop connections and fail REST requests. Runs in the test's loop or in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

T = TypeVar("T")
_JSON = msgspec.json.Encoder()


class FakeVenue:
    def __init__(self, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), first_id: int = 1) -> None:
        self.symbols = symbols
        self.trades: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}  # index i holds id first_id+i
        self.first_id = first_id
        self.next_bbo = dict.fromkeys(symbols, 1)
        self.clients: dict[ServerConnection, frozenset[str]] = {}
        self.rest_failures: list[int | str] = []  # statuses (500, 429, ...) or "malformed"/"slow" for next calls
        self.rest_calls = 0
        self.rest_delay_s = 0.0
        self.connects = 0
        self._server: Server | None = None
        self._pump: asyncio.Task[None]
        self.port = 0

    # --- serving -----------------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> FakeVenue:
        self._server = await serve(
            self._handler, "127.0.0.1", port, process_request=self._http, compression=None, max_size=None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)  # type: ignore[union-attr]
        self.clients[ws] = frozenset(query.get("streams", [""])[0].split("/"))
        self.connects += 1
        try:
            await ws.wait_closed()
        finally:
            self.clients.pop(ws, None)

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/stream":
            return None
        self.rest_calls += 1
        if self.rest_delay_s:
            await asyncio.sleep(self.rest_delay_s)
        if url.path != "/fapi/v1/aggTrades":
            return connection.respond(http.HTTPStatus.NOT_FOUND, '{"code":-1,"msg":"no such path"}')
        if self.rest_failures:
            failure = self.rest_failures.pop(0)
            if failure == "malformed":
                return connection.respond(http.HTTPStatus.OK, '[{"a": "not a number"')
            response = connection.respond(int(failure), '{"code":-1003,"msg":"injected failure"}')
            if failure == 429:
                response.headers["Retry-After"] = "0.05"
            return response
        query = parse_qs(url.query)
        symbol = query["symbol"][0]
        from_id = int(query.get("fromId", ["0"])[0])
        limit = min(1000, int(query.get("limit", ["500"])[0]))
        store = self.trades.get(symbol, [])
        start = max(0, from_id - self.first_id)
        rows = [{k: v for k, v in t.items() if k in "apqflTm"} for t in store[start : start + limit]]
        return connection.respond(http.HTTPStatus.OK, _JSON.encode(rows).decode())

    # --- market data ------------------------------------------------------------------------------------
    def _send(self, stream: str, frame: bytes) -> None:
        targets = [ws for ws, streams in self.clients.items() if stream in streams]
        websockets.broadcast(targets, frame, text=True)

    def make_trade(self, symbol: str) -> dict[str, Any]:
        store = self.trades[symbol]
        trade_id = self.first_id + len(store)
        now_ms = int(time.time() * 1000)
        trade = {
            "e": "aggTrade",
            "E": now_ms,
            "s": symbol,
            "a": trade_id,
            "p": f"{100 + trade_id % 50}.25",
            "q": "0.010",
            "f": trade_id * 2,
            "l": trade_id * 2 + 1,
            "T": now_ms,
            "m": trade_id % 2 == 0,
        }
        store.append(trade)
        return trade

    def publish(self, symbol: str, count: int = 1, skip_wire: int = 0, bbo: bool = True) -> list[int]:
        """Make `count` trades; the first `skip_wire` of them never go on the wire (REST still has them)."""
        ids = []
        for i in range(count):
            trade = self.make_trade(symbol)
            ids.append(trade["a"])
            if i >= skip_wire:
                self._send(f"{symbol.lower()}@aggTrade", self.trade_frame(trade))
            if bbo:
                self.publish_bbo(symbol)
        return ids

    def trade_frame(self, trade: dict[str, Any]) -> bytes:
        return _JSON.encode({"stream": f"{trade['s'].lower()}@aggTrade", "data": trade})

    def publish_bbo(self, symbol: str) -> int:
        u = self.next_bbo[symbol]
        self.next_bbo[symbol] = u + 1
        now_ms = int(time.time() * 1000)
        data = {
            "e": "bookTicker",
            "u": u,
            "E": now_ms,
            "T": now_ms,
            "s": symbol,
            "b": "100.10",
            "B": "1.5",
            "a": "100.20",
            "A": "2.5",
        }
        self._send(
            f"{symbol.lower()}@bookTicker",
            _JSON.encode({"stream": f"{symbol.lower()}@bookTicker", "data": data}),
        )
        return u

    def send_raw(self, frame: bytes, text: bool = True) -> None:
        websockets.broadcast(list(self.clients), frame, text=text)

    def send_fragmented(self, message: bytes, parts: int) -> None:
        """One text message as `parts` WebSocket frames (a first frame, then continuations), to every client."""
        size = -(-len(message) // parts)
        pieces = [message[i : i + size] for i in range(0, len(message), size)]
        wire = b"".join(
            Frame(Opcode.TEXT if i == 0 else Opcode.CONT, piece, fin=i == len(pieces) - 1).serialize(
                mask=False, extensions=[]
            )
            for i, piece in enumerate(pieces)
        )
        for ws in list(self.clients):
            ws.transport.write(wire)

    def send_continuation(self, payload: bytes) -> None:
        """A final continuation frame with no message before it (a protocol error), to every client."""
        wire = Frame(Opcode.CONT, payload, fin=True).serialize(mask=False, extensions=[])
        for ws in list(self.clients):
            ws.transport.write(wire)

    def drop_connections(self) -> None:
        for ws in list(self.clients):
            ws.transport.abort()

    def start_pump(self, trades_per_s: float) -> None:
        """Trade on every symbol (each trade with a quote) at about this rate until `stop_pump`."""
        self._pump = asyncio.get_running_loop().create_task(self._pumping(trades_per_s))

    async def stop_pump(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    async def _pumping(self, trades_per_s: float) -> None:
        tick_s = 0.005
        per_tick = max(1, round(trades_per_s * tick_s / len(self.symbols)))
        while True:
            for symbol in self.symbols:
                self.publish(symbol, per_tick)
            await asyncio.sleep(tick_s)

    def last_id(self, symbol: str) -> int:
        return self.first_id + len(self.trades[symbol]) - 1


class ThreadedVenue:
    """A FakeVenue on its own event loop in a thread, for tests that drive a collector subprocess."""

    def __init__(self, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"), port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.venue = FakeVenue(symbols)
        self.call(self.venue.start(port))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def do(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return fn(*args, **kwargs)

        return self.call(run())

    def close(self) -> None:
        self.call(self.venue.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
