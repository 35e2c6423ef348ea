"""Which venue fills the position checkpoint already holds, so that a restart books every fill exactly once.

The checkpoint is written at `written_ns` (engine clock); a fill carries the venue's time. Judging "already
booked" by time alone fails both ways: a fill the venue made just before the write can reach the engine just
after it (not in the checkpoint, yet older than it: lost on restart), and against a venue whose clock runs
ahead of ours a fill booked before the write can carry a later time (booked twice on restart). So the
checkpoint also lists the trade ids booked in the last WINDOW_NS before the write. At restart a fill counts as
already booked when its trade id is listed, or when it is older than the window (`floor_ns`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from hftops.model.orders import Fill

WINDOW_NS = 120 * 1_000_000_000  # far above any delivery delay or clock skew between venue and engine


class BookedFills:
    def __init__(self, floor_ns: int) -> None:
        self.floor_ns = floor_ns  # fills at or before this venue time are in the checkpoint / broker position
        self._listed: set[tuple[str, int]] = set()
        self._recent: deque[tuple[int, str, int]] = deque()  # (booked at, engine ns; symbol; trade id)

    @classmethod
    def from_checkpoint(cls, written_ns: int, trade_ids: Mapping[str, Sequence[int]]) -> BookedFills:
        booked = cls(written_ns - WINDOW_NS)
        for symbol, ids in trade_ids.items():
            for trade_id in ids:
                booked._listed.add((symbol, trade_id))
                booked._recent.append((written_ns, symbol, trade_id))  # listed again by the next checkpoint
        return booked

    def already_booked(self, fill: Fill) -> bool:
        return fill.time_ns <= self.floor_ns or (fill.symbol, fill.trade_id) in self._listed

    def record(self, fill: Fill, now_ns: int) -> None:
        self._recent.append((now_ns, fill.symbol, fill.trade_id))

    def for_checkpoint(self, now_ns: int) -> dict[str, list[int]]:
        """Trade ids booked within the window before `now_ns`, per symbol (older ones fall below the floor)."""
        cutoff = now_ns - WINDOW_NS
        recent = self._recent
        while recent and recent[0][0] < cutoff:
            recent.popleft()
        out: dict[str, list[int]] = {}
        for _, symbol, trade_id in recent:
            out.setdefault(symbol, []).append(trade_id)
        return {symbol: sorted(set(ids)) for symbol, ids in sorted(out.items())}
