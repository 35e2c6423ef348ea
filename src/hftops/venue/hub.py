"""WebSocket fan-out of the venue: subscriptions, one encode per event, one write per connection per tick.

Connections with the same subscription (framing + streams) form a group; each tick every group's frames are
built once and the same bytes are written to each member's transport. websockets owns the handshake, pings,
incoming messages and the closing handshake; data frames bypass `Connection.send` because a coroutine per
message per connection costs more than generating the message. A connection whose unsent bytes exceed
`send_buffer_max_bytes` is cut off, as Binance does with slow consumers, instead of buffering without limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import structlog
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from hftops.venue.faults import FaultBook, malformed_frames
from hftops.venue.market import Tick
from hftops.venue.symbols import SymbolSpec
from hftops.venue.wire import (
    EventTemplates,
    StreamError,
    StreamKind,
    StreamName,
    agg_trade_payloads,
    book_ticker_payloads,
    frame_all,
    parse_stream,
    spot_trade_payloads,
    text_frame_header,
)

log = structlog.get_logger("venue")
MAX_STREAMS_PER_CONNECTION = 1024  # Binance's limit


@dataclass(eq=False)
class Subscriber:
    conn: ServerConnection
    combined: bool
    streams: list[StreamName]
    connected_at: float = field(default_factory=time.time)
    frames: int = 0
    bytes: int = 0

    @property
    def key(self) -> tuple[bool, tuple[StreamName, ...]]:
        return self.combined, tuple(self.streams)


class ControlRequest(msgspec.Struct):
    """Binance's live (un)subscribe messages: {"method": "SUBSCRIBE", "params": [...], "id": 1}."""

    method: str
    params: list[Any] = []
    id: int | str | None = None


def parse_path(path: str, symbols: frozenset[str]) -> tuple[bool, list[StreamName]]:
    """(combined framing?, streams) of a handshake path; raises StreamError naming what is wrong."""
    parts = urlsplit(path)
    if parts.path in ("/stream", "/stream/"):
        names = [n for value in parse_qs(parts.query).get("streams", []) for n in value.split("/") if n]
        combined = True
    elif parts.path == "/ws" or parts.path.startswith("/ws/"):
        names = [n for n in parts.path[len("/ws") :].split("/") if n]
        combined = False
    else:
        raise StreamError(f"unknown path {parts.path!r}; use /ws/<stream> or /stream?streams=<s1>/<s2>")
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise StreamError(f"{len(names)} streams requested; at most {MAX_STREAMS_PER_CONNECTION} per connection")
    streams: list[StreamName] = []
    for name in names:
        stream = parse_stream(name, symbols)
        if stream not in streams:
            streams.append(stream)
    return combined, streams


def json_response(status: HTTPStatus, body: dict[str, Any]) -> Response:
    payload = msgspec.json.encode(body)
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), ("Connection", "close")]
    )
    return Response(status.value, status.phrase, headers, payload)


@dataclass
class HubCounters:
    connections_total: int = 0
    handshakes_rejected: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    slow_consumers_closed: int = 0
    control_messages: int = 0


class Hub:
    def __init__(
        self,
        specs: list[SymbolSpec],
        faults: FaultBook,
        trade_kind: StreamKind,
        max_frame_bytes: int,
        send_buffer_max_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.specs = {s.symbol: s for s in specs}
        self.symbols = frozenset(self.specs)
        self.faults = faults
        self.trade_kind = trade_kind
        self.max_frame_bytes = max_frame_bytes
        self.send_buffer_max_bytes = send_buffer_max_bytes
        self._clock = clock
        self.templates = EventTemplates.for_specs(specs)
        self.subscribers: dict[ServerConnection, Subscriber] = {}
        self.connections: set[ServerConnection] = set()  # every open handler, subscribed or being dropped
        self._groups: dict[tuple[bool, tuple[StreamName, ...]], list[Subscriber]] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.counters = HubCounters()

    # ------------------------------------------------------------------ handshake and connection lifetime

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.faults.is_down(self._clock()):
            self.counters.handshakes_rejected += 1
            return json_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"code": -1001, "msg": "Internal error; venue is down (fault injection)."},
            )
        try:
            parse_path(request.path, self.symbols)
        except StreamError as exc:
            self.counters.handshakes_rejected += 1
            return json_response(HTTPStatus.BAD_REQUEST, {"code": 2, "msg": f"Invalid request: {exc}"})
        return None

    async def handle(self, conn: ServerConnection) -> None:
        combined, streams = parse_path(conn.request.path if conn.request else "/ws", self.symbols)
        sub = Subscriber(conn, combined, streams)
        self.subscribers[conn] = sub
        self.connections.add(conn)
        self._groups = None
        self.counters.connections_total += 1
        log.info("venue.ws.connected", remote=_remote(conn), combined=combined, streams=[str(s) for s in streams])
        try:
            async for message in conn:
                reply = self._control(sub, message)
                if reply is not None:
                    await conn.send(reply, text=True)
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)
            self.connections.discard(conn)
            log.info("venue.ws.disconnected", remote=_remote(conn), code=conn.close_code, frames=sub.frames)

    def _forget(self, conn: ServerConnection) -> None:
        if self.subscribers.pop(conn, None) is not None:
            self._groups = None

    def _control(self, sub: Subscriber, message: str | bytes) -> bytes | None:
        self.counters.control_messages += 1
        try:
            request = msgspec.json.decode(message, type=ControlRequest)
        except msgspec.DecodeError as exc:
            return msgspec.json.encode({"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}, "id": None})
        method = request.method.upper()
        try:
            if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                streams = [parse_stream(str(name), self.symbols) for name in request.params]
                if method == "SUBSCRIBE":
                    sub.streams.extend(s for s in dict.fromkeys(streams) if s not in sub.streams)
                else:
                    sub.streams[:] = [s for s in sub.streams if s not in streams]
                self._groups = None
                result: Any = None
            elif method == "LIST_SUBSCRIPTIONS":
                result = [str(s) for s in sub.streams]
            elif method == "SET_PROPERTY" and request.params[:1] == ["combined"] and len(request.params) == 2:
                sub.combined = bool(request.params[1])
                self._groups = None
                result = None
            elif method == "GET_PROPERTY" and request.params == ["combined"]:
                result = sub.combined
            else:
                raise StreamError(f"unknown method {request.method!r} or params {request.params!r}")
        except StreamError as exc:
            return msgspec.json.encode({"error": {"code": 2, "msg": f"Invalid request: {exc}"}, "id": request.id})
        return msgspec.json.encode({"result": result, "id": request.id})

    def drop_all(self, reason: str) -> int:
        """Close every connection (close frame, code 1001); returns how many."""
        dropped = list(self.subscribers)
        self.subscribers.clear()
        self._groups = None
        for conn in dropped:
            task = asyncio.get_running_loop().create_task(conn.close(1001, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(dropped)

    def abort_all(self) -> None:
        """Cut every TCP connection at once (shutdown of clients that do not complete the close handshake)."""
        self.subscribers.clear()
        self._groups = None
        for conn in list(self.connections):
            conn.transport.abort()

    # ------------------------------------------------------------------ publishing

    def publish(self, tick: Tick) -> None:
        if not self.subscribers:
            return
        if self._groups is None:
            groups: dict[tuple[bool, tuple[StreamName, ...]], list[Subscriber]] = {}
            for sub in self.subscribers.values():
                groups.setdefault(sub.key, []).append(sub)
            self._groups = groups
        framed: dict[tuple[StreamName, bool], list[bytes]] = {}
        malformed = self.faults.peek_malformed()
        malformed_delivered = False
        for (combined, streams), members in list(self._groups.items()):
            parts: list[bytes] = []
            for stream in streams:
                key = (stream, combined)
                chunk = framed.get(key)
                if chunk is None:
                    chunk = framed[key] = frame_all(self._payloads(tick, stream, combined))
                parts += chunk
            if malformed is not None:
                target = next(
                    (s for s in streams if s.symbol == malformed.symbol and s.kind is not StreamKind.BOOK_TICKER),
                    None,
                )
                if target is not None:
                    raw, wrapped = malformed_frames(
                        malformed.kind,
                        self.specs[target.symbol],
                        target.kind,
                        tick.time_ms,
                        self.specs[target.symbol].start_price_units,
                        self.max_frame_bytes,
                    )
                    payload = wrapped if combined else raw
                    middle = (len(parts) // 4) * 2  # a frame boundary in the middle of the tick
                    parts[middle:middle] = [text_frame_header(len(payload)), payload]
                    malformed_delivered = True
            if not parts:
                continue
            blob = b"".join(parts)
            frames = len(parts) // 2
            for sub in members:
                self._write(sub, blob, frames)
        if malformed_delivered:
            self.faults.malformed_delivered()

    def _payloads(self, tick: Tick, stream: StreamName, combined: bool) -> list[bytes]:
        template = (self.templates.combined if combined else self.templates.raw)[stream]
        if stream.kind is StreamKind.BOOK_TICKER:
            book = tick.books.get(stream.symbol)
            if book is None:
                return []
            return book_ticker_payloads(template, book.spec, tick.time_ms, book.first_id, book.quotes)
        batch = tick.trades.get(stream.symbol)
        if batch is None or batch.hidden == len(batch.prices):
            return []
        prices, qtys = batch.wire_texts()
        encode = agg_trade_payloads if stream.kind is StreamKind.AGG_TRADE else spot_trade_payloads
        return encode(template, tick.time_ms, batch.wire_first_id, prices, qtys, batch.sides[batch.hidden :])

    def _write(self, sub: Subscriber, blob: bytes, frames: int) -> None:
        conn = sub.conn
        transport = conn.transport
        if conn.protocol.state is not State.OPEN or transport.is_closing():
            return
        transport.write(blob)
        sub.frames += frames
        sub.bytes += len(blob)
        self.counters.frames_sent += frames
        self.counters.bytes_sent += len(blob)
        backlog = transport.get_write_buffer_size()
        if backlog > self.send_buffer_max_bytes:
            self.counters.slow_consumers_closed += 1
            self._forget(conn)
            log.warning(
                "venue.ws.slow_consumer_closed",
                remote=_remote(conn),
                unsent_bytes=backlog,
                limit=self.send_buffer_max_bytes,
                hint="the client reads slower than the venue publishes; it must reconnect and backfill",
            )
            transport.abort()

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "remote": _remote(sub.conn),
                "combined": sub.combined,
                "streams": [str(s) for s in sub.streams],
                "frames": sub.frames,
                "bytes": sub.bytes,
                "unsent_bytes": sub.conn.transport.get_write_buffer_size(),
                "connected_at": sub.connected_at,
            }
            for sub in self.subscribers.values()
        ]


def _remote(conn: ServerConnection) -> str:
    try:
        host, port = conn.remote_address[:2]
        return f"{host}:{port}"
    except (TypeError, ValueError, OSError):
        return "?"
