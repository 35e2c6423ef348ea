"""uvicorn inside a process that owns its signals and its event loop (supervisor, recorder, venue).

uvicorn's own main loop looks at `should_exit` every 0.1 s and its shutdown sleeps another fixed 0.1 s
before it even looks at the open connections. The supervisor's API, its control socket, the recorder's
query server and the venue's REST server all stop inside `trading stop`, so those sleeps add up to most
of a second. Here `request_exit()` wakes the loop at once and the shutdown waits on the connections
themselves (polled every few milliseconds), with uvicorn's own graceful timeout as the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import Iterator

import uvicorn

_TICK_S = 0.1  # uvicorn's own: the Date header is refreshed every 10 ticks
_DRAIN_POLL_S = 0.005


class EmbeddedServer(uvicorn.Server):
    """No signal handling of its own; stops promptly on `request_exit()`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        """Stop serving: in-flight requests finish within `timeout_graceful_shutdown`."""
        self.should_exit = True
        if self._exit_requested is not None:
            self._exit_requested.set()

    async def main_loop(self) -> None:
        self._exit_requested = exit_requested = asyncio.Event()
        if self.should_exit:
            exit_requested.set()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exit_requested.wait(), _TICK_S)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown (stop accepting, ask every connection to finish, wait for them and their
        tasks up to `timeout_graceful_shutdown`, then cancel) without its fixed sleeps."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        grace = self.config.timeout_graceful_shutdown
        deadline = time.monotonic() + (grace if grace is not None else math.inf)  # None: uvicorn's "forever"
        while (state.connections or state.tasks) and not self.force_exit and time.monotonic() < deadline:
            await asyncio.sleep(_DRAIN_POLL_S)
        for task in list(state.tasks):
            task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), max(0.0, deadline - time.monotonic()) + 0.1)
        if not self.force_exit:
            await self.lifespan.shutdown()
