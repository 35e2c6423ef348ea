"""A backlog on the venue's socket is worked off in slices: other work gets the event loop between them."""

from __future__ import annotations

import asyncio
import itertools
import time

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.server import ServerConnection, serve

from hftops.pipeline.collector.readslice import ReadSlicer
from tests.support.ports import free_port

FRAMES = 3000
BUDGET = 4096


class _Collect(WSListener):
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.done = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        if not self.payloads:
            time.sleep(0.2)  # the loop is held up: the rest of the burst piles up in the socket
        self.payloads.append(frame.get_payload_as_bytes())
        if len(self.payloads) == FRAMES:
            self.done.set()


async def _run() -> tuple[list[bytes], list[int], int]:
    async def burst(conn: ServerConnection) -> None:
        await conn.recv()  # the client's "go": sent once the slicer is in place
        for i in range(FRAMES):
            await conn.send(f'{{"i":{i},"pad":"{"x" * 180}"}}')
        await conn.wait_closed()

    port = free_port()
    async with serve(burst, "127.0.0.1", port, compression=None):
        transport, listener = await ws_connect(_Collect, f"ws://127.0.0.1:{port}/")
        assert isinstance(listener, _Collect)
        slicer = ReadSlicer.interpose(transport.underlying_transport, BUDGET)
        transport.send(WSMsgType.TEXT, b"go")
        seen: list[int] = []  # frames delivered, each time the loop came round to this task

        async def other_work() -> None:
            while not listener.done.is_set():
                seen.append(len(listener.payloads))
                await asyncio.sleep(0)

        await asyncio.wait_for(asyncio.gather(listener.done.wait(), other_work()), 30)
        transport.disconnect()
        return listener.payloads, seen, slicer.turns_cut


def test_a_backlog_is_handled_in_slices_with_the_loop_free_between_them_and_nothing_lost() -> None:
    payloads, seen, turns_cut = uvloop.run(_run())
    assert [int(p[5 : p.index(b",")]) for p in payloads] == list(range(FRAMES))  # every frame, in order
    assert turns_cut >= (FRAMES * 190) // BUDGET // 2  # the backlog (~600 KB) needed many turns
    assert len(seen) > FRAMES // (BUDGET // 190 + 2), seen  # without the slicer: all of it in one turn
    per_turn = max(b - a for a, b in itertools.pairwise(seen))
    assert per_turn <= BUDGET // 190 + 2, per_turn  # never more than a slice of frames between two turns
