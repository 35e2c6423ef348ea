"""End-to-end fixtures: a whole platform started through `trading start`, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import trading
from tests.support.platform import TestPlatform


@pytest.fixture
def running_platform(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestPlatform]:
    overrides = getattr(request, "param", None) or {}
    platform = TestPlatform(tmp_path, overrides)
    trading(platform, "start", timeout=120, check=True)
    try:
        yield platform
    finally:
        result = trading(platform, "stop", "--timeout", "10", timeout=180)
        if result.returncode not in (0, 3, 4):
            print("stop failed:", result.stdout, result.stderr)
