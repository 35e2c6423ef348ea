"""What a `trading stop` asks for; its own module so the CLI can build one without importing the shutdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShutdownPlan:
    actor: str
    drain: bool = False
    timeout_s: float | None = None  # per step; None: supervisor.components.<name>.stop_timeout_s
    drain_timeout_s: float = 120.0
    reason: str = "stop"
