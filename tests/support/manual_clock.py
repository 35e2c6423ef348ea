"""A clock tests move by hand: `clock()` gives ns, `await clock.sleep(s)` returns only once `advance`
has moved the clock past its deadline, so rate windows and retry-after waits run without real waiting."""

from __future__ import annotations

import asyncio


class ManualClock:
    def __init__(self, start_ns: int = 1_750_000_000 * 10**9) -> None:
        self.ns = start_ns
        self._sleepers: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self) -> int:
        return self.ns

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting (await this to know a worker reached its wait)."""
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        return len(self._sleepers)

    def sleeping_for(self) -> list[float]:
        """Seconds left of each waiting sleep."""
        return sorted((d - self.ns) / 1e9 for d, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.ns + int(seconds * 1e9), future))
        await future

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)
        for deadline, future in self._sleepers:
            if deadline <= self.ns and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
