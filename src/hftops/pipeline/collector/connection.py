"""Venue WebSocket connections: stream sets of at most 200 streams, reading, reconnecting with backoff (inside
the reconnect windows for calendar-bound symbols, see `windows`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
import websockets
from websockets.asyncio.client import ClientConnection, connect

from hftops.pipeline.collector.windows import ReconnectWindows

BINANCE_MAX_STREAMS = 200  # streams per combined-stream connection that Binance accepts
YIELD_EVERY_FRAMES = 32  # the read loop gives the event loop a turn this often (about 0.5 ms of frames)


@dataclass(frozen=True)
class StreamSet:
    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    window: ReconnectWindows | None = None  # None: always reconnect

    def url(self, ws_base_url: str) -> str:
        return f"{ws_base_url.rstrip('/')}/stream?streams={'/'.join(self.streams)}"


def plan_stream_sets(
    symbols: Sequence[str], trade_stream: str, bbo: bool, max_streams: int = BINANCE_MAX_STREAMS
) -> list[StreamSet]:
    """Split the symbols' streams over connections; a symbol's streams always share one connection."""
    suffixes = [trade_stream, "bookTicker"] if bbo else [trade_stream]
    per_connection = max(1, max_streams // len(suffixes))
    sets = []
    for start in range(0, len(symbols), per_connection):
        chunk = tuple(symbols[start : start + per_connection])
        sets.append(StreamSet(chunk, tuple(f"{s.lower()}@{suffix}" for s in chunk for suffix in suffixes)))
    return sets


class ReconnectBackoff:
    """Exponential backoff with jitter: initial, doubling to maximum; each delay is drawn in [d/2, d]."""

    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.maximum_s, self.initial_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return base / 2 + self._rng.random() * base / 2

    def reset(self) -> None:
        self.attempt = 0


class VenueConnection:
    """One combined-stream connection. Frames go to `on_frame`; it reads only while `gate` is set."""

    def __init__(
        self,
        index: int,
        stream_set: StreamSet,
        ws_base_url: str,
        *,
        on_frame: Callable[[bytes], None],
        on_open: Callable[[VenueConnection], None],
        on_lost: Callable[[VenueConnection, str, int | None], None],
        gate: asyncio.Event,
        backoff: ReconnectBackoff,
        stable_s: float,
        mono_s: Callable[[], float],
        max_size: int,
        log: structlog.stdlib.BoundLogger,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.index = index
        self.stream_set = stream_set
        self.url = stream_set.url(ws_base_url)
        self._on_frame = on_frame
        self._on_open = on_open
        self._on_lost = on_lost
        self._gate = gate
        self._backoff = backoff
        self._stable_s = stable_s
        self._mono_s = mono_s
        self._max_size = max_size
        self._log = log.bind(connection=index, symbols=len(stream_set.symbols))
        self._ws: ClientConnection | None = None
        self._stopping = False
        self.connected = False
        self.opened_once = False
        self._wall_ns = wall_ns
        self.window_wait_s = 0.0  # > 0 while a lost connection waits for its reconnect window
        self._lost = False  # the venue or the network dropped an open connection (not our back-pressure)

    async def run(self) -> None:
        while not self._stopping:
            await self._gate.wait()
            if self._lost:
                await self._wait_for_window()
                if self._stopping:
                    return
            opened_at: float | None = None
            reason = "closed"
            close_code: int | None = None
            try:
                # No compression: it costs CPU on both ends and Binance frames are small.
                async with connect(
                    self.url,
                    max_size=self._max_size,
                    compression=None,
                    open_timeout=5,
                    close_timeout=0.25,
                    ping_interval=20,
                    ping_timeout=20,
                ) as ws:
                    self._ws = ws
                    opened_at = self._mono_s()
                    self.connected = self.opened_once = True
                    self._lost = False
                    self._on_open(self)
                    await self._read(ws)
            except websockets.ConnectionClosed as exc:
                reason = f"closed by the venue or the network: {exc}"
                close_code = exc.sent.code if exc.sent is not None else exc.rcvd.code if exc.rcvd else None
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                reason = f"cannot connect to {self.url[:120]}: {exc!r}"
            finally:
                self._ws = None
                self.connected = False
            if self._stopping:
                return
            if not self._gate.is_set():
                continue  # our own back-pressure closed it: not a reconnect, no backoff
            if opened_at is not None and self._mono_s() - opened_at >= self._stable_s:
                self._backoff.reset()
            delay = self._backoff.next_delay()
            self._lost = self.opened_once
            self._on_lost(self, reason, close_code)
            self._log.warning("venue_connection_lost", reason=reason, retry_in_s=round(delay, 3))
            await asyncio.sleep(delay)

    async def _wait_for_window(self) -> None:
        window = self.stream_set.window
        if window is None:
            return
        wait = window.wait_s(self._wall_ns())
        if wait <= 0:
            return
        self._log.info("venue_reconnect_deferred", window=window.describe(), opens_in_s=round(wait),
                       reason="calendar-bound symbols reconnect only inside HFT_RECONNECT_HOURS(_2)")
        while wait > 0 and not self._stopping:
            self.window_wait_s = wait
            await asyncio.sleep(min(wait, 1.0))  # re-read the clock each second (it may be moved in tests)
            wait = window.wait_s(self._wall_ns())
        self.window_wait_s = 0.0

    async def _read(self, ws: ClientConnection) -> None:
        on_frame = self._on_frame
        gate = self._gate
        since_yield = 0
        while gate.is_set() and not self._stopping:
            # decode=False: bytes straight to msgspec, no UTF-8 str in between.
            on_frame(await ws.recv(decode=False))
            since_yield += 1
            if since_yield == YIELD_EVERY_FRAMES:
                # recv() returns without suspending while frames are buffered, so a backlog after a stall
                # would keep the event loop (write answers, timers, the watchdog) waiting until it is gone.
                since_yield = 0
                await asyncio.sleep(0)

    def close_soon(self) -> None:
        """Stop reading now (back-pressure or shutdown); the read loop sees the close and returns."""
        ws = self._ws
        if ws is not None:
            asyncio.get_running_loop().create_task(ws.close())

    def stop(self) -> None:
        self._stopping = True
        self.close_soon()
