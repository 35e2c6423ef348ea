"""Rows waiting for Redis, grouped per (kind, symbol) into chunks that flush by size or by age."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from hftops.model.market import BboRow, TradeRow
from hftops.model.streams import MdKind

Key = tuple[MdKind, str]
NEVER_NS = 2**63  # `due_at_ns` while nothing waits


class Chunk:
    """At most `flush_max` rows of one symbol and kind: one stream entry once flushed."""

    __slots__ = ("born_ns", "hi", "key", "live_oldest_ns", "lo", "rows")

    def __init__(self, key: Key, born_ns: int) -> None:
        self.key = key
        self.rows: list[TradeRow | BboRow] = []
        self.lo = 2**63
        self.hi = -1
        self.born_ns = born_ns  # monotonic: when its first row arrived (the flush_ms clock)
        self.live_oldest_ns = 0  # wall receive time of its oldest live row (hop latency); 0: backfill only

    def __len__(self) -> int:
        return len(self.rows)


class Batcher:
    """Accumulates rows; `take_due` hands out chunks that are full or older than `flush_ms`.

    Chunks handed out come back with `put_back` when their write failed, or are let go with `acknowledged`,
    so nothing is dropped here: memory is bounded by the caller, which stops reading when `buffered` plus
    `handed_out` reaches its limit.
    """

    def __init__(self, flush_max: int, flush_ms: float, mono_ns: Callable[[], int]) -> None:
        self.flush_max = flush_max
        self.flush_ns = int(flush_ms * 1_000_000)
        self._mono_ns = mono_ns
        self._queues: dict[Key, deque[Chunk]] = {}
        self.buffered = 0  # rows waiting here
        self.handed_out = 0  # rows taken for a write that has not been answered yet
        self.full_chunks = 0  # chunks that reached flush_max: due now, whatever their age
        self.due_at_ns = NEVER_NS  # monotonic time the oldest waiting chunk is due (read after every frame)

    def add(self, kind: MdKind, symbol: str, row: TradeRow | BboRow, row_id: int, live_ns: int = 0) -> None:
        key = (kind, symbol)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        if not queue or len(queue[-1].rows) >= self.flush_max:
            born = self._mono_ns()
            queue.append(Chunk(key, born))
            if born + self.flush_ns < self.due_at_ns:
                self.due_at_ns = born + self.flush_ns
        chunk = queue[-1]
        chunk.rows.append(row)
        if row_id < chunk.lo:
            chunk.lo = row_id
        if row_id > chunk.hi:
            chunk.hi = row_id
        if live_ns and not chunk.live_oldest_ns:
            chunk.live_oldest_ns = live_ns
        self.buffered += 1
        if len(chunk.rows) == self.flush_max:
            self.full_chunks += 1

    def next_deadline_ns(self) -> int | None:
        """Monotonic time at which the oldest open chunk is due; None when nothing waits."""
        return None if self.due_at_ns == NEVER_NS else self.due_at_ns

    def _recompute_due(self) -> None:
        self.due_at_ns = min((q[0].born_ns + self.flush_ns for q in self._queues.values()), default=NEVER_NS)

    def take_due(self, everything: bool = False, max_chunks: int = 1024) -> list[Chunk]:
        now = self._mono_ns()
        due: list[Chunk] = []
        emptied: list[Key] = []
        for key, queue in self._queues.items():
            while queue and len(due) < max_chunks:
                head = queue[0]
                if not (everything or len(head.rows) >= self.flush_max or now - head.born_ns >= self.flush_ns):
                    break
                due.append(queue.popleft())
            if not queue:
                emptied.append(key)
            if len(due) >= max_chunks:
                break
        for key in emptied:
            del self._queues[key]
        for chunk in due:
            self.buffered -= len(chunk.rows)
            self.handed_out += len(chunk.rows)
            if len(chunk.rows) >= self.flush_max:
                self.full_chunks -= 1
        if due:
            self._recompute_due()
        return due

    def put_back(self, chunks: Iterable[Chunk]) -> None:
        """Chunks whose write failed go back to the front of their queue (they stay due)."""
        for chunk in reversed(list(chunks)):
            queue = self._queues.get(chunk.key)
            if queue is None:
                queue = self._queues[chunk.key] = deque()
            queue.appendleft(chunk)
            self.buffered += len(chunk.rows)
            self.handed_out -= len(chunk.rows)
            if len(chunk.rows) >= self.flush_max:
                self.full_chunks += 1
        self._recompute_due()

    def acknowledged(self, chunks: Iterable[Chunk]) -> None:
        """Chunks Redis has taken: no longer held here."""
        for chunk in chunks:
            self.handed_out -= len(chunk.rows)

    def pending_lo(self, key: Key) -> int | None:
        """Smallest id still waiting for `key` (not yet handed out)."""
        queue = self._queues.get(key)
        if not queue:
            return None
        return min(chunk.lo for chunk in queue)
