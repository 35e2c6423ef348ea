"""Venue WebSocket connections: stream sets of at most 200 streams, reading, reconnecting with backoff (inside
the reconnect windows for calendar-bound symbols, see `windows`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import structlog
from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    ws_connect,
)

from hftops.pipeline.collector.readslice import ReadSlicer
from hftops.pipeline.collector.windows import ReconnectWindows

BINANCE_MAX_STREAMS = 200  # streams per combined-stream connection that Binance accepts


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


class _FrameListener(WSListener):
    """picows calls `on_ws_frame` for every frame of a read, straight from the socket's buffer: no task, queue or
    await per message (websockets spent ~11 us of CPU a frame here, picows ~2)."""

    def __init__(self, owner: VenueConnection) -> None:
        super().__init__()
        self._owner = owner
        self._on_frame = owner.on_frame
        self._gate = owner.gate
        self._parts: list[bytes] = []  # a fragmented message being assembled
        self._parts_size = 0
        self.close_code: int | None = None
        self.close_reason = ""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if frame.payload_size > self._owner.max_size:  # refused before it is read, as the close code says
            self._close(transport, WSCloseCode.MESSAGE_TOO_BIG, "frame above the limit")
            return
        if msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            if self._parts:  # RFC 6455: no new message before the fragmented one ends
                self._close(transport, WSCloseCode.PROTOCOL_ERROR, "a new message inside a fragmented one")
                return
            if frame.fin:
                if self._gate.is_set():  # paused or stopping: what arrives now is backfilled later
                    self._on_frame(frame.get_payload_as_bytes())
                return
            self._parts = [frame.get_payload_as_bytes()]
            self._parts_size = frame.payload_size
        elif msg_type is WSMsgType.CONTINUATION:
            if not self._parts:
                self._close(transport, WSCloseCode.PROTOCOL_ERROR, "a continuation frame with no message to continue")
                return
            self._parts.append(frame.get_payload_as_bytes())
            self._parts_size += frame.payload_size
            if self._parts_size > self._owner.max_size:
                self._close(transport, WSCloseCode.MESSAGE_TOO_BIG, "fragmented message above the limit")
                return
            if frame.fin:
                payload, self._parts = b"".join(self._parts), []
                if self._gate.is_set():
                    self._on_frame(payload)
        elif msg_type is WSMsgType.CLOSE:
            if self.close_code is None:
                self.close_code = _code(frame.get_close_code())
                message = frame.get_close_message() if frame.payload_size > 2 else None
                self.close_reason = message.decode("utf-8", "replace") if message else ""
            self._close(transport, WSCloseCode.OK, "")

    def _close(self, transport: WSTransport, code: WSCloseCode, reason: str) -> None:
        if self.close_code is None:
            self.close_code = _code(code)
            self.close_reason = reason
        if not transport.is_close_frame_sent:
            transport.send_close(code)
        transport.disconnect()


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
        read_slice_bytes: int = 16384,
    ) -> None:
        self.index = index
        self.stream_set = stream_set
        self.url = stream_set.url(ws_base_url)
        self.on_frame = on_frame
        self._on_open = on_open
        self._on_lost = on_lost
        self.gate = gate
        self._backoff = backoff
        self._stable_s = stable_s
        self._mono_s = mono_s
        self.max_size = max_size
        self.read_slice_bytes = read_slice_bytes
        self._slicer: ReadSlicer | None = None
        self._slices_cut_before = 0  # by the connections before the current one
        self._log = log.bind(connection=index, symbols=len(stream_set.symbols))
        self._transport: WSTransport | None = None
        self._stopping = False
        self.connected = False
        self.opened_once = False
        self._wall_ns = wall_ns
        self.window_wait_s = 0.0  # > 0 while a lost connection waits for its reconnect window
        self._lost = False  # the venue or the network dropped an open connection (not our back-pressure)

    @property
    def read_slices_cut(self) -> int:
        return self._slices_cut_before + (self._slicer.turns_cut if self._slicer is not None else 0)

    async def run(self) -> None:
        while not self._stopping:
            await self.gate.wait()
            if self._lost:
                await self._wait_for_window()
                if self._stopping:
                    return
            opened_at: float | None = None
            reason = "closed"
            close_code: int | None = None
            listener: _FrameListener | None = None
            try:
                # No compression (picows has none): it costs CPU on both ends and Binance frames are small.
                transport, connected = await ws_connect(
                    lambda: _FrameListener(self),
                    self.url,
                    websocket_handshake_timeout=5,
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=20,
                    auto_ping_reply_timeout=20,
                    max_frame_size=self.max_size,
                    logger_name="hftops.collector.ws",
                )
                listener = cast(_FrameListener, connected)
                self._slicer = ReadSlicer.interpose(transport.underlying_transport, self.read_slice_bytes)
                self._transport = transport
                opened_at = self._mono_s()
                self.connected = self.opened_once = True
                self._lost = False
                self._on_open(self)
                if not self.gate.is_set() or self._stopping:
                    self.close_soon()  # paused or stopped while the handshake ran
                await transport.wait_disconnected()
                reason = f"closed by the venue or the network: {_describe_close(listener)}"
                close_code = listener.close_code
            except WSProtocolError as exc:  # the frame parser refused the stream (e.g. a frame above the limit)
                close_code = _close_code_of(exc)
                reason = f"closed by the venue or the network: {exc} (code {close_code})"
            except (OSError, TimeoutError, WSError) as exc:
                if opened_at is None:
                    reason = f"cannot connect to {self.url[:120]}: {exc!r}"
                else:
                    reason = f"closed by the venue or the network: {exc!r}"
                    close_code = listener.close_code if listener is not None else None
            finally:
                self._transport = None
                self.connected = False
                if self._slicer is not None:
                    self._slices_cut_before += self._slicer.turns_cut
                    self._slicer = None
            if self._stopping:
                return
            if not self.gate.is_set():
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
        self._log.info(
            "venue_reconnect_deferred",
            window=window.describe(),
            opens_in_s=round(wait),
            reason="calendar-bound symbols reconnect only inside HFT_RECONNECT_HOURS(_2)",
        )
        while wait > 0 and not self._stopping:
            self.window_wait_s = wait
            await asyncio.sleep(min(wait, 1.0))  # re-read the clock each second (it may be moved in tests)
            wait = window.wait_s(self._wall_ns())
        self.window_wait_s = 0.0

    def close_soon(self) -> None:
        """Stop reading now (back-pressure or shutdown): frames still in the buffer are not handed on, the close
        handshake starts and `run` sees the disconnect."""
        transport = self._transport
        if transport is not None:
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.GOING_AWAY)
            transport.disconnect()

    def stop(self) -> None:
        self._stopping = True
        self.close_soon()


def _describe_close(listener: _FrameListener) -> str:
    if listener.close_code is None:
        return "the connection ended without a close frame"
    reason = f" {listener.close_reason!r}" if listener.close_reason else ""
    return f"close code {listener.close_code}{reason}"


def _close_code_of(exc: WSProtocolError) -> int | None:
    """picows raises WSProtocolError(close code, message)."""
    return _code(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else None


def _code(code: object) -> int:
    """A close code as a plain int (picows gives WSCloseCode members, or ints it has no name for)."""
    return int(getattr(code, "value", code))  # type: ignore[call-overload]
