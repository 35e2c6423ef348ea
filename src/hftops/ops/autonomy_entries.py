"""What the autonomy controller holds: one `ActiveReason` per (reason, strategy), and the transitions it
reports. Plain data with a JSON round trip for the persisted state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hftops.ops.modes import Mode, Scope
from hftops.ops.reasons import AUTO_RECOVERABLE, HALTING, Reason

Key = tuple[Reason, str]  # (reason, strategy id or "" for the platform)


def mode_of(reason: Reason, strategy_id: str) -> Mode:
    if strategy_id:
        return Mode.STRATEGY_QUARANTINED
    return Mode.HALT if reason in HALTING else Mode.PLATFORM_REDUCE_ONLY


@dataclass
class ActiveReason:
    reason: Reason
    strategy_id: str  # "" for the platform
    since_ns: int
    latched: bool  # only a rearm clears it (every reason that is not auto-recoverable, every edge trip)
    present: bool  # the condition is there right now (level inputs); an edge trip is never "present"
    clear_since_ns: int | None = None  # the condition has been clear since (cooldown of auto-recoverables)
    detail: str = ""
    operator: str = ""
    values: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, str] = field(default_factory=dict)
    restored: bool = False  # came from the persisted state at boot

    @property
    def key(self) -> Key:
        return (self.reason, self.strategy_id)

    @property
    def scope(self) -> Scope:
        return Scope.STRATEGY if self.strategy_id else Scope.PLATFORM

    @property
    def mode(self) -> Mode:
        return mode_of(self.reason, self.strategy_id)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["reason"] = self.reason.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActiveReason:
        """One stored entry; ValueError names an unknown reason code (a newer or damaged file)."""
        reason = Reason(str(data["reason"]))
        return cls(
            reason=reason,
            strategy_id=str(data.get("strategy_id") or ""),
            since_ns=int(data.get("since_ns") or 0),
            latched=bool(data.get("latched", reason not in AUTO_RECOVERABLE)),
            present=bool(data.get("present", False)),
            clear_since_ns=data.get("clear_since_ns"),
            detail=str(data.get("detail") or ""),
            operator=str(data.get("operator") or ""),
            values={str(k): str(v) for k, v in (data.get("values") or {}).items()},
            thresholds={str(k): str(v) for k, v in (data.get("thresholds") or {}).items()},
            restored=True,
        )

    def describe(self) -> str:
        who = f" by {self.operator}" if self.operator else ""
        what = f": {self.detail}" if self.detail else ""
        return f"{self.reason.value}{who}{what}"


@dataclass(frozen=True)
class Transition:
    """One change of a scope's mode or reasons; the engine turns it into AutonomyTransition + evidence."""

    id: str
    time_ns: int
    scope: Scope
    strategy_id: str
    from_mode: Mode
    to_mode: Mode
    reasons: tuple[str, ...]  # active after the transition, in this scope
    trigger: str  # a reason code, "recovered", "rearm" or "restored"
    operator: str = ""
    detail: str = ""
    values: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, str] = field(default_factory=dict)
    forced: bool = False
