"""The venue's own record of every order state, fill and refused order: ground truth for tests and drills.

Kept in memory (served by GET /admin/orders, /admin/fills) and appended as JSON lines under
`<venue_state>/<venue>/trading/`: `orders.jsonl` (the order after every change), `fills.jsonl`,
`rejections.jsonl`, `leverage.json`. Lines are written with os.write on O_APPEND descriptors (in the page
cache before the REST answer or the user-data event, so they survive kill -9 of the venue). At start the
files are replayed, so a restarted venue keeps its orders, positions and wallet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import structlog

log = structlog.get_logger("venue")


class Journal:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.orders: dict[int, dict[str, Any]] = {}  # latest state of every order, by orderId
        self.fills: list[dict[str, Any]] = []
        self.rejections: list[dict[str, Any]] = []
        self.leverage: dict[str, int] = {}
        self.order_lines: list[dict[str, Any]] = []  # every order line ever read or written (replay order)
        self._fds: dict[str, int] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load()
            for name in ("orders", "fills", "rejections"):
                self._fds[name] = os.open(directory / f"{name}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _load(self) -> None:
        assert self.directory is not None
        for name, sink in (("orders", self.order_lines), ("fills", self.fills), ("rejections", self.rejections)):
            path = self.directory / f"{name}.jsonl"
            if not path.exists():
                continue
            for number, line in enumerate(path.read_bytes().splitlines(), 1):
                try:
                    sink.append(msgspec.json.decode(line))
                except msgspec.DecodeError:
                    # A line cut short by a crash mid-write is the only way to get here; keep the rest.
                    log.warning("venue.trading.journal_bad_line", file=str(path), line=number)
        for record in self.order_lines:
            self.orders[int(record["orderId"])] = record
        lev = self.directory / "leverage.json"
        if lev.exists():
            self.leverage = {str(k): int(v) for k, v in json.loads(lev.read_text()).items()}

    def _append(self, name: str, record: dict[str, Any]) -> None:
        fd = self._fds.get(name)
        if fd is not None:
            os.write(fd, msgspec.json.encode(record) + b"\n")

    def order(self, record: dict[str, Any]) -> None:
        self.orders[int(record["orderId"])] = record
        self._append("orders", record)

    def fill(self, record: dict[str, Any]) -> None:
        self.fills.append(record)
        self._append("fills", record)

    def rejection(self, record: dict[str, Any]) -> None:
        self.rejections.append(record)
        self._append("rejections", record)

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self.leverage[symbol] = leverage
        if self.directory is not None:
            tmp = self.directory / "leverage.json.tmp"
            tmp.write_text(json.dumps(self.leverage))
            os.replace(tmp, self.directory / "leverage.json")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
