"""Deterministic price processes: trade n of a symbol depends only on (seed, symbol, n) and the prior price.

Random draws come in blocks of BLOCK trade ids, each block seeded from (seed, symbol, block number). So the
sequence does not depend on how trades are batched into ticks, on the message rate, on pauses, or on a
restart: a venue that reloads its ground truth and continues from the last id and price produces exactly
the trades an uninterrupted run would have produced.
"""

from __future__ import annotations

import random

from hftops.venue.symbols import SymbolSpec

BLOCK = 4096
MOVE_PROBABILITY = 0.35  # most trades print at the previous price; the book is deep around the touch
VOLATILITY_PER_MOVE = 2e-5  # typical size of a price move, as a fraction of the start price
QTY_SIGMA = 1.1  # log-normal spread of trade sizes (heavy tail, most trades small)


class TradeProcess:
    """Random walk on the tick grid with log-normal sizes and random aggressor side."""

    def __init__(self, spec: SymbolSpec, seed: int, last_id: int = 0, last_price_units: int | None = None) -> None:
        self.spec = spec
        self._seed = seed
        self.next_id = last_id + 1
        self.price = last_price_units if last_price_units is not None else spec.start_price_units
        self._floor = max(spec.tick_units, spec.start_price_units // 10)
        self._sigma_ticks = max(1.0, spec.start_price_units * VOLATILITY_PER_MOVE / spec.tick_units)
        self._block_no = -1
        self._moves: list[int] = []
        self._qtys: list[int] = []
        self._sides: list[bool] = []

    def _load_block(self, block_no: int) -> None:
        rng = random.Random(f"{self._seed}/{self.spec.symbol}/{block_no}")
        tick, sigma, typical = self.spec.tick_units, self._sigma_ticks, self.spec.typical_qty_units
        qty_mu = -QTY_SIGMA * QTY_SIGMA / 2  # mean of the log-normal factor is 1
        moves, qtys, sides = [], [], []
        for _ in range(BLOCK):
            if rng.random() < MOVE_PROBABILITY:
                size = int(abs(rng.gauss(0.0, sigma))) + 1
                moves.append(tick * size if rng.random() < 0.5 else -tick * size)
            else:
                moves.append(0)
            qtys.append(max(1, round(typical * rng.lognormvariate(qty_mu, QTY_SIGMA))))
            sides.append(rng.random() < 0.5)
        self._block_no, self._moves, self._qtys, self._sides = block_no, moves, qtys, sides

    def take(self, count: int) -> tuple[int, list[int], list[int], list[bool]]:
        """The next `count` trades: (first id, prices in units, quantities in units, buyer-is-maker flags)."""
        first_id = self.next_id
        prices: list[int] = []
        qtys: list[int] = []
        sides: list[bool] = []
        price, floor = self.price, self._floor
        trade_id, end = first_id, first_id + count
        while trade_id < end:
            block_no, offset = divmod(trade_id - 1, BLOCK)
            if block_no != self._block_no:
                self._load_block(block_no)
            stop = min(BLOCK, offset + end - trade_id)
            for move in self._moves[offset:stop]:
                price += move
                if price < floor:  # reflect off the floor so a long run never reaches zero
                    price = 2 * floor - price
                prices.append(price)
            qtys.extend(self._qtys[offset:stop])
            sides.extend(self._sides[offset:stop])
            trade_id += stop - offset
        self.price, self.next_id = price, end
        return first_id, prices, qtys, sides


class BookProcess:
    """Best bid/ask around the last trade price; seeded, but its content follows the trades' timing."""

    def __init__(self, spec: SymbolSpec, seed: int, last_update_id: int = 0) -> None:
        self.spec = spec
        self.next_id = last_update_id + 1
        self._rng = random.Random(f"{seed}/{spec.symbol}/book")

    def take(self, count: int, last_price_units: int) -> tuple[int, list[tuple[int, int, int, int]]]:
        """The next `count` updates as (bid price, bid qty, ask price, ask qty) in units."""
        rng, tick, depth = self._rng.random, self.spec.tick_units, self.spec.typical_qty_units * 4
        quotes = []
        for _ in range(count):
            bid = max(tick, last_price_units - (tick if rng() < 0.5 else 0))
            wide = rng()
            spread = tick if wide < 0.8 else tick * (2 + int(wide * 100) % 3)
            quotes.append((bid, 1 + int(depth * rng() * 2), bid + spread, 1 + int(depth * rng() * 2)))
        first_id = self.next_id
        self.next_id += count
        return first_id, quotes
