"""A bound on the WebSocket bytes handled per turn of the event loop, so Redis answers are not kept waiting.

picows hands every frame of a read to the listener before it returns, and it doubles its read buffer whenever a
read fills it; libuv then reads a socket up to 32 times in a row while each read fills the buffer. After a
backlog (the venue's burst, the collector descheduled) one turn of the loop handled 4,000-7,000 frames, 50-78 ms
of work, and the answer to the Redis write in flight waited behind it: at 50,000 msg/s the collector's write
p99 was 53 ms with the collector and Valkey both on SCHED_FIFO. Interposed between the socket's transport and
picows's protocol, `ReadSlicer` offers at most `budget` bytes per turn, then pauses reading and resumes on the
loop's next turn, after the other sockets' events (bench/pipeline_e2e.py; numbers in the README).
"""

from __future__ import annotations

import asyncio
from typing import Any


class ReadSlicer(asyncio.BufferedProtocol):
    """Forwards everything to `inner` (picows's buffered protocol), slicing what one turn may read."""

    def __init__(self, inner: Any, transport: asyncio.Transport, budget: int) -> None:
        self._inner = inner
        self._transport = transport
        self._budget = budget
        self._left = budget
        self._loop = asyncio.get_running_loop()
        self.turns_cut = 0  # how often a turn stopped at the budget (a backlog was being worked off)

    @classmethod
    def interpose(cls, transport: asyncio.Transport, budget: int) -> ReadSlicer:
        slicer = cls(transport.get_protocol(), transport, budget)
        transport.set_protocol(slicer)
        return slicer

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = memoryview(self._inner.get_buffer(sizehint))
        return buffer[: self._left] if len(buffer) > self._left else buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._left -= nbytes
        self._inner.buffer_updated(nbytes)
        if self._left <= 0 and not self._transport.is_closing():
            self.turns_cut += 1
            self._transport.pause_reading()
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._left = self._budget
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
