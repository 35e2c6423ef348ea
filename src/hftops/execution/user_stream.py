"""The user-data stream: `{ws_base}/ws/<listenKey>` carrying ORDER_TRADE_UPDATE and ACCOUNT_UPDATE.

Keeps the listen key alive (PUT every `keepalive_s`, Binance expires it after 60 min), reconnects with
exponential backoff, and after every reconnect asks the router to resynchronise (open orders + userTrades),
which recovers fills that happened while the stream was down. Bad frames are counted and handed to
`on_bad_frame` (the engine dead-letters them); unknown event types are counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import msgspec
import structlog
import websockets
from websockets.asyncio.client import ClientConnection

from hftops.execution.errors import BrokerError
from hftops.execution.rest import BinanceFuturesRest
from hftops.execution.wire import ListenKeyExpired, UnknownEvent, UserEvent, decode_user_event

log = structlog.get_logger("execution.user_stream")


@dataclass
class StreamCounters:
    connects: int = 0
    disconnects: int = 0
    events: int = 0
    unknown_events: int = 0
    bad_frames: int = 0
    keepalives: int = 0
    keepalive_failures: int = 0
    resyncs: int = 0
    resync_failures: int = 0
    handler_errors: int = 0


class UserDataStream:
    def __init__(
        self,
        rest: BinanceFuturesRest,
        ws_base_url: str,
        on_event: Callable[[UserEvent], None],
        *,
        on_down: Callable[[], None] = lambda: None,
        resync: Callable[[], Awaitable[Any]] | None = None,
        on_bad_frame: Callable[[str, bytes], None] = lambda reason, raw: None,
        keepalive_s: float = 1800.0,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        open_timeout_s: float = 5.0,
    ) -> None:
        self._rest = rest
        self._ws_base = ws_base_url.rstrip("/")
        self._on_event = on_event
        self._on_down = on_down
        self._resync = resync
        self._on_bad_frame = on_bad_frame
        self.keepalive_s = keepalive_s
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._open_timeout_s = open_timeout_s
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.listen_key: str | None = None
        self.connected = asyncio.Event()
        self.synced = asyncio.Event()  # set once a connection is up and (after a reconnect) resynced
        self.counters = StreamCounters()

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.counters), "connected": self.connected.is_set()}

    async def run(self) -> None:
        """Connect, read and reconnect until `stop()`."""
        failures = 0
        first = True
        while not self._stopping.is_set():
            try:
                if self.listen_key is None:
                    self.listen_key = await self._rest.new_listen_key()
                url = f"{self._ws_base}/ws/{self.listen_key}"
                async with websockets.connect(url, open_timeout=self._open_timeout_s, max_size=2**20) as ws:
                    self._ws = ws
                    self.counters.connects += 1
                    self.connected.set()
                    failures = 0
                    log.info("user_stream.connected", reconnect=not first)
                    if not first:
                        await self._run_resync()
                    first = False
                    self.synced.set()
                    await self._read(ws)
            except (OSError, websockets.WebSocketException, BrokerError, TimeoutError) as exc:
                log.warning("user_stream.connection_failed", error=f"{type(exc).__name__}: {exc}")
                if isinstance(exc, websockets.InvalidStatus):
                    self.listen_key = None  # the venue refused the key (expired or closed): get a new one
            except Exception:  # never let the stream die silently: log, back off, reconnect
                self.counters.handler_errors += 1
                log.exception("user_stream.unexpected_error")
            finally:
                self._ws = None
                if self.connected.is_set():
                    self.counters.disconnects += 1
                    self._on_down()
                self.connected.clear()
                self.synced.clear()
            if self._stopping.is_set():
                break
            first = False  # anything after the first attempt resyncs: fills may have happened meanwhile
            failures += 1
            delay = min(self._reconnect_initial_s * 2 ** (failures - 1), self._reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay * (0.8 + 0.4 * random.random()))

    async def _run_resync(self) -> None:
        if self._resync is None:
            return
        self.counters.resyncs += 1
        try:
            await self._resync()
        except Exception as exc:
            # The stream is up; the next reconnect or the engine's periodic reconciliation retries.
            self.counters.resync_failures += 1
            log.error("user_stream.resync_failed", error=str(exc))

    async def _read(self, ws: ClientConnection) -> None:
        keepalive = asyncio.create_task(self._keepalive())
        try:
            async for frame in ws:
                raw = frame.encode() if isinstance(frame, str) else frame
                if self._handle(raw):
                    break
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive

    def _handle(self, raw: bytes) -> bool:
        """Decode and dispatch one frame; True when the stream must be re-established (key expired)."""
        try:
            event = decode_user_event(raw)
        except UnknownEvent as exc:
            self.counters.unknown_events += 1
            log.debug("user_stream.unknown_event", event_type=str(exc))
            return False
        except msgspec.DecodeError as exc:
            self.counters.bad_frames += 1
            reason = f"user-data frame is not a valid Binance event: {exc}"
            log.error("user_stream.bad_frame", reason=reason, first_bytes=raw[:120])
            self._on_bad_frame(reason, raw)
            return False
        self.counters.events += 1
        if isinstance(event, ListenKeyExpired):
            log.warning("user_stream.listen_key_expired")
            self.listen_key = None
            return True
        try:
            self._on_event(event)
        except Exception:  # a consumer's bug must not end the stream; it is logged with the event
            self.counters.handler_errors += 1
            log.exception("user_stream.handler_failed", event_type=type(event).__name__)
        return False

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self._rest.keepalive_listen_key()
                self.counters.keepalives += 1
            except BrokerError as exc:
                self.counters.keepalive_failures += 1
                log.warning("user_stream.keepalive_failed", error=str(exc))

    async def drop(self) -> None:
        """Close the current connection (tests and drills); `run` reconnects and resyncs."""
        if self._ws is not None:
            await self._ws.close()

    async def stop(self, close_key: bool = True) -> None:
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()
        if close_key and self.listen_key is not None:
            with contextlib.suppress(BrokerError):
                await self._rest.close_listen_key()
            self.listen_key = None
