"""listenKeys and the user-data WebSocket (`/ws/<listenKey>` on the venue's WebSocket port).

One account, so one listenKey at a time (POST returns the live one and extends it, as Binance does); valid
60 minutes after the last POST/PUT. Every connection on a valid key gets every ORDER_TRADE_UPDATE and
ACCOUNT_UPDATE; an event with no connection is gone (a client resynchronises over REST after reconnecting).
When the key expires, connections get `listenKeyExpired` and are closed. Frames are written straight to the
transport in event order (no task per event, so the order of events is the order of the changes).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from hftops.venue.trading import errors as E
from hftops.venue.trading.errors import TradingError
from hftops.venue.trading.faults import TradingFaults
from hftops.venue.wire import text_frame_header

log = structlog.get_logger("venue")
LISTEN_KEY_TTL_S = 3600.0


class UserStreams:
    def __init__(
        self,
        faults: TradingFaults,
        is_down: Callable[[], bool],
        clock: Callable[[], float],
        wall_ms: Callable[[], int],
        json_response: Callable[[HTTPStatus, dict[str, Any]], Response],
    ) -> None:
        self.faults = faults
        self._is_down = is_down
        self._clock = clock
        self._wall_ms = wall_ms
        self._json_response = json_response
        self.key: str | None = None
        self.expires_at = 0.0
        self.conns: dict[ServerConnection, str] = {}
        self.events_sent = 0
        self._closing: set[asyncio.Task[None]] = set()
        faults.drop_requested = self.drop_all

    # ------------------------------------------------------------------ listenKey REST

    def _valid(self) -> bool:
        return self.key is not None and self._clock() < self.expires_at

    def create(self) -> str:
        if not self._valid():
            self.key = secrets.token_hex(32)  # 64 characters, like Binance's
        self.expires_at = self._clock() + LISTEN_KEY_TTL_S
        assert self.key is not None
        return self.key

    def keepalive(self) -> str:
        if not self._valid():
            raise TradingError(E.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        self.expires_at = self._clock() + LISTEN_KEY_TTL_S
        assert self.key is not None
        return self.key

    def delete(self) -> None:
        self.key = None
        self.drop_all()

    # ------------------------------------------------------------------ WebSocket

    @staticmethod
    def claims(path: str) -> bool:
        """Is this handshake for a user-data stream? Market streams always contain '@'."""
        rest = path.split("?", 1)[0][len("/ws/") :] if path.startswith("/ws/") else ""
        return bool(rest) and "@" not in rest and "/" not in rest

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self._is_down():
            return self._json_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"code": -1001, "msg": "Internal error; venue is down (fault injection)."},
            )
        if self.faults.user_stream_refused():
            return self._json_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"code": -1001, "msg": "User data stream unavailable (fault drop_user_stream); retry later."},
            )
        key = request.path.split("?", 1)[0][len("/ws/") :]
        if not self._valid() or key != self.key:
            return self._json_response(
                HTTPStatus.BAD_REQUEST, {"code": E.INVALID_LISTEN_KEY, "msg": "This listenKey does not exist."}
            )
        return None

    async def handle(self, conn: ServerConnection) -> None:
        key = (conn.request.path if conn.request else "").split("?", 1)[0][len("/ws/") :]
        self.conns[conn] = key
        log.info("venue.user_stream.connected", connections=len(self.conns))
        try:
            async for _ in conn:  # clients have nothing to say on a user-data stream; pings are automatic
                pass
        except ConnectionClosed:
            pass
        finally:
            self.conns.pop(conn, None)
            log.info("venue.user_stream.disconnected", code=conn.close_code, connections=len(self.conns))

    def push(self, event: dict[str, Any]) -> None:
        if not self.conns:
            return
        payload = msgspec.json.encode(event)
        frame = text_frame_header(len(payload)) + payload
        for conn in list(self.conns):
            if conn.protocol.state is State.OPEN and not conn.transport.is_closing():
                conn.transport.write(frame)
                self.events_sent += 1

    def drop_all(self) -> int:
        dropped = list(self.conns)
        self.conns.clear()
        for conn in dropped:
            self._close(conn, "user data stream dropped")
        return len(dropped)

    def _close(self, conn: ServerConnection, reason: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(conn.close(1001, reason))
        except RuntimeError:  # no loop (unit tests): cut the transport
            conn.transport.abort()
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def housekeeping(self) -> None:
        """Expire the listenKey: tell its connections and close them."""
        if self.key is not None and not self._valid():
            expired, self.key = self.key, None
            self.push({"e": "listenKeyExpired", "E": self._wall_ms(), "listenKey": expired})
            self.drop_all()
            log.info("venue.user_stream.listen_key_expired")
