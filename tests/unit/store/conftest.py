"""A real chDB store in a temporary directory (one chDB path per process: each test closes its store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hftops.store.chdb_store import ChdbStore
from hftops.store.faults import FaultSwitch


@pytest.fixture
def fault(tmp_path: Path) -> FaultSwitch:
    return FaultSwitch(tmp_path / "state" / "faults" / "clickhouse_down")


@pytest.fixture
def chdb_store(tmp_path: Path, fault: FaultSwitch) -> Iterator[ChdbStore]:
    store = ChdbStore(tmp_path / "clickhouse", "hftops", fault)
    store.open()
    try:
        yield store
    finally:
        store.close()
