"""The AutonomyController: the one place that decides the platform mode and each strategy's quarantine.

Inputs: level conditions (`set_condition`, evaluated every cycle by the monitors), edge trips (`trip`:
flatten failed, a strategy burst), and the operator (`halt`, `rearm`). Auto-recoverable reasons leave
once their condition has been clear continuously for the cooldown (it restarts if the condition comes
back); every other reason latches until `rearm`; HALT never recovers by itself. Every change is persisted
before listeners hear of it, and a boot restores the latches with their original reasons (stale
auto-recoverable flags are dropped, a grace period keeps start-up probes from degrading anything).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from hftops.ops.autonomy_entries import ActiveReason, Key, Transition
from hftops.ops.autonomy_snapshot import autonomy_snapshot
from hftops.ops.autonomy_store import AutonomyStore, StateUnreadable
from hftops.ops.modes import Mode, Scope
from hftops.ops.reasons import AUTO_RECOVERABLE, Reason

Listener = Callable[[Transition], None]
_View = tuple[Mode, tuple[str, ...], dict[str, tuple[str, ...]]]


class RearmRefused(Exception):
    """The rearm was understood and refused; the message says why and what to do."""


def _strs(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in values.items()}


def _describe_condition(entry: ActiveReason) -> str:
    where = f" [{entry.strategy_id}]" if entry.strategy_id else ""
    values = f" {entry.values}" if entry.values else ""
    limits = f" (thresholds {entry.thresholds})" if entry.thresholds else ""
    return f"{entry.reason.value}{where}{values}{limits}"


class AutonomyController:
    def __init__(
        self,
        *,
        clock: Callable[[], int],
        cooldown_s: float = 60.0,
        boot_grace_s: float = 30.0,
        store: AutonomyStore | None = None,
        strategy_ids: Iterable[str] = (),
        log: Any = None,
    ) -> None:
        self.clock = clock
        self.cooldown_ns = int(cooldown_s * 1e9)
        self.grace_until_ns = clock() + int(boot_grace_s * 1e9)
        self.store = store
        self.strategy_ids = tuple(strategy_ids)
        self.log = log or structlog.get_logger("ops.autonomy")
        self.listeners: list[Listener] = []
        self._entries: dict[Key, ActiveReason] = {}
        self._acknowledged: set[Key] = set()  # conditions a forced rearm accepted until they clear once
        self.mode = Mode.NORMAL  # the platform's own mode: NORMAL, PLATFORM_REDUCE_ONLY or HALT
        self.since_ns = clock()
        self.quarantined: frozenset[str] = frozenset()
        self.halt_episode = ""  # id of the HALT episode in progress ("" outside HALT)
        self.halt_flatten_requested = False
        self.persist_error: str | None = None
        self._dirty = False
        self.counters = {
            "transitions": 0,
            "suppressed_in_grace": 0,
            "persist_failures": 0,
            "rearms": 0,
            "forced_rearms": 0,
            "refused_rearms": 0,
            "dropped_at_boot": 0,
        }

    # --- reads (the gates read `mode` and `quarantined` directly) ---
    @property
    def ladder_mode(self) -> Mode:
        """The mode as operators see it: a quarantined strategy shows when the platform itself is NORMAL."""
        if self.mode is Mode.NORMAL and self.quarantined:
            return Mode.STRATEGY_QUARANTINED
        return self.mode

    def strategy_quarantined(self, strategy_id: str) -> bool:
        return strategy_id in self.quarantined

    def entries(self) -> list[ActiveReason]:
        return sorted(self._entries.values(), key=lambda e: (e.strategy_id, e.since_ns, e.reason.value))

    def active(self, reason: Reason, strategy_id: str = "") -> ActiveReason | None:
        return self._entries.get((reason, strategy_id))

    def in_grace(self, now_ns: int | None = None) -> bool:
        return (self.clock() if now_ns is None else now_ns) < self.grace_until_ns

    # --- inputs ---
    def set_condition(
        self,
        reason: Reason,
        active: bool,
        *,
        values: Mapping[str, Any] | None = None,
        thresholds: Mapping[str, Any] | None = None,
        detail: str = "",
        strategy_id: str | None = None,
    ) -> bool:
        """A level input, evaluated every cycle. Returns True when it changed the mode or the reasons."""
        key: Key = (Reason(reason), strategy_id or "")
        now = self.clock()
        entry = self._entries.get(key)
        if not active:
            self._acknowledged.discard(key)
            if entry is None:
                return False
            if entry.present:
                entry.present, entry.clear_since_ns = False, now
                if entry.latched:
                    self._persist()  # an offline rearm must see that the condition is gone
            return self._recover_if_due(entry, now)
        if entry is not None:
            entry.present, entry.clear_since_ns = True, None  # the cooldown restarts when it clears again
            return False
        if key in self._acknowledged:
            return False
        if self.in_grace(now):
            self.counters["suppressed_in_grace"] += 1
            return False
        self._add(
            ActiveReason(
                reason=key[0],
                strategy_id=key[1],
                since_ns=now,
                latched=key[0] not in AUTO_RECOVERABLE,
                present=True,
                detail=detail,
                values=_strs(values or {}),
                thresholds=_strs(thresholds or {}),
            ),
            trigger=key[0].value,
        )
        return True

    def trip(
        self,
        reason: Reason,
        *,
        strategy_id: str | None = None,
        detail: str = "",
        values: Mapping[str, Any] | None = None,
        thresholds: Mapping[str, Any] | None = None,
        operator: str = "",
    ) -> bool:
        """An edge: degrade now and latch until a rearm. Returns False when that latch is already set."""
        key: Key = (Reason(reason), strategy_id or "")
        if key in self._entries:
            return False
        self._add(
            ActiveReason(
                reason=key[0],
                strategy_id=key[1],
                since_ns=self.clock(),
                latched=True,
                present=False,
                detail=detail,
                operator=operator,
                values=_strs(values or {}),
                thresholds=_strs(thresholds or {}),
            ),
            trigger=key[0].value,
            operator=operator,
        )
        return True

    def halt(self, operator: str, reason_text: str) -> bool:
        return self.trip(Reason.MANUAL_OPERATOR, detail=reason_text, operator=operator)

    def rearm(
        self, operator: str, reason_text: str, strategy_id: str | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Clear the latches in scope (a strategy's, or everything); RearmRefused while a condition is there."""
        if strategy_id:
            targets = [e for e in self._entries.values() if e.strategy_id == strategy_id]
            if not targets:
                self.counters["refused_rearms"] += 1
                raise RearmRefused(
                    f"strategy {strategy_id!r} is not quarantined (quarantined: "
                    f"{sorted(self.quarantined) or 'none'}); nothing to rearm"
                )
        else:
            targets = list(self._entries.values())
            if not targets:
                self.counters["refused_rearms"] += 1
                raise RearmRefused("nothing to rearm: the platform is NORMAL and no strategy is quarantined")
        present = [e for e in targets if e.present]
        if present and not force:
            self.counters["refused_rearms"] += 1
            still = "; ".join(_describe_condition(e) for e in present)
            raise RearmRefused(
                f"refused: the triggering condition is still present: {still}. Fix it and retry, "
                "or rearm with --force to accept it (audited as forced)"
            )
        before = self._view()
        for entry in targets:
            del self._entries[entry.key]
            if entry.present:
                self._acknowledged.add(entry.key)  # re-latches only after it clears and comes back
        self.counters["rearms"] += 1
        if present:
            self.counters["forced_rearms"] += 1
        self._commit(before, "rearm", operator=operator, detail=reason_text, forced=bool(present))
        return {
            "cleared": [e.describe() for e in targets],
            "forced_over": [e.reason.value for e in present],
            "mode": self.ladder_mode.value,
            "quarantined": sorted(self.quarantined),
        }

    def poll(self) -> None:
        """Recover auto-recoverable reasons whose cooldown has passed; retry a failed persist."""
        now = self.clock()
        for entry in list(self._entries.values()):
            self._recover_if_due(entry, now)
        if self._dirty:
            self._persist()

    def mark_halt_flatten(self) -> None:
        self.halt_flatten_requested = True
        self._persist()

    # --- boot ---
    def restore(self, *, keep_auto_recoverable: bool = False) -> list[str]:
        """Load the persisted state (the engine at boot drops stale auto-recoverable flags); returns what
        was dropped. A damaged state file fails closed: HALT manual_operator naming the file."""
        if self.store is None:
            return []
        before = self._view()
        dropped: list[str] = []
        try:
            doc = self.store.load()
        except StateUnreadable as exc:
            self._entries[(Reason.MANUAL_OPERATOR, "")] = ActiveReason(
                reason=Reason.MANUAL_OPERATOR,
                strategy_id="",
                since_ns=self.clock(),
                latched=True,
                present=False,
                detail=f"autonomy state unreadable at boot, failing closed: {exc}",
                operator="boot",
            )
            self._commit(before, "restored")
            return dropped
        if doc is None:
            return dropped
        dropped = self.load_document(doc, keep_auto_recoverable=keep_auto_recoverable)
        self._commit(before, "restored")
        return dropped

    def load_document(self, doc: Mapping[str, Any], *, keep_auto_recoverable: bool = False) -> list[str]:
        """Take the entries of a stored document (no transition: `restore` reports them)."""
        dropped: list[str] = []
        for raw in doc.get("reasons", []):
            try:
                entry = ActiveReason.from_json(raw)
            except (ValueError, KeyError, TypeError) as exc:  # a code this version does not know: fail closed
                entry = ActiveReason(
                    reason=Reason.MANUAL_OPERATOR,
                    strategy_id="",
                    since_ns=self.clock(),
                    latched=True,
                    present=False,
                    operator="boot",
                    detail=f"stored reason not understood ({exc}): {raw!r}",
                )
            if not entry.latched and not keep_auto_recoverable:
                dropped.append(entry.describe())
                self.counters["dropped_at_boot"] += 1
                continue
            self._entries.setdefault(entry.key, entry)
        episode = doc.get("halt_episode") or {}
        self.halt_episode = str(episode.get("id") or "")
        self.halt_flatten_requested = bool(episode.get("flatten_requested"))
        mode, _reasons, strategies = self._view()
        self.mode, self.quarantined = mode, frozenset(strategies)
        if doc.get("since_ns") and mode is not Mode.NORMAL:
            self.since_ns = int(doc["since_ns"])
        return dropped

    def document(self) -> dict[str, Any]:
        return {
            "mode": self.ladder_mode.value,
            "platform_mode": self.mode.value,
            "since_ns": self.since_ns,
            "quarantined": sorted(self.quarantined),
            "reasons": [e.to_json() for e in self.entries()],
            "halt_episode": {"id": self.halt_episode, "flatten_requested": self.halt_flatten_requested},
            "written_ns": self.clock(),
        }

    def snapshot(self) -> dict[str, Any]:
        """`status --json` key `autonomy`: mode, reasons, since, manual_rearm_required, strategies."""
        return autonomy_snapshot(self)

    # --- internals ---
    def _recover_if_due(self, entry: ActiveReason, now: int) -> bool:
        if entry.latched or entry.present or entry.clear_since_ns is None:
            return False
        if now - entry.clear_since_ns < self.cooldown_ns:
            return False
        before = self._view()
        del self._entries[entry.key]
        self._commit(before, "recovered", detail=f"{entry.reason.value} clear for {self.cooldown_ns / 1e9:g} s")
        return True

    def _add(self, entry: ActiveReason, *, trigger: str, operator: str = "") -> None:
        before = self._view()
        self._entries[entry.key] = entry
        self._commit(
            before, trigger, operator=operator, detail=entry.detail, values=entry.values, thresholds=entry.thresholds
        )

    def _view(self) -> _View:
        platform = [e for e in self._entries.values() if not e.strategy_id]
        mode = max((e.mode for e in platform), key=lambda m: m.rank, default=Mode.NORMAL)
        strategies: dict[str, list[str]] = {}
        for e in self._entries.values():
            if e.strategy_id:
                strategies.setdefault(e.strategy_id, []).append(e.reason.value)
        return (
            mode,
            tuple(sorted(e.reason.value for e in platform)),
            {sid: tuple(sorted(r)) for sid, r in strategies.items()},
        )

    def _commit(
        self,
        before: _View,
        trigger: str,
        *,
        operator: str = "",
        detail: str = "",
        values: Mapping[str, str] | None = None,
        thresholds: Mapping[str, str] | None = None,
        forced: bool = False,
    ) -> None:
        mode, reasons, strategies = self._view()
        now = self.clock()
        out: list[Transition] = []

        def add(scope: Scope, sid: str, from_mode: Mode, to_mode: Mode, active: tuple[str, ...]) -> None:
            out.append(
                Transition(
                    id=uuid.uuid4().hex,
                    time_ns=now,
                    scope=scope,
                    strategy_id=sid,
                    from_mode=from_mode,
                    to_mode=to_mode,
                    reasons=active,
                    trigger=trigger,
                    operator=operator,
                    detail=detail,
                    values=dict(values or {}),
                    thresholds=dict(thresholds or {}),
                    forced=forced,
                )
            )

        if (mode, reasons) != before[:2]:
            if mode is not self.mode:
                self.since_ns = now
            if mode is Mode.HALT and not self.halt_episode:
                self.halt_episode, self.halt_flatten_requested = uuid.uuid4().hex[:12], False
            elif mode is not Mode.HALT:
                self.halt_episode, self.halt_flatten_requested = "", False
            add(Scope.PLATFORM, "", before[0], mode, reasons)
            self.mode = mode
        quarantined = Mode.STRATEGY_QUARANTINED
        for sid in sorted(set(before[2]) | set(strategies)):
            if before[2].get(sid) != strategies.get(sid):
                add(
                    Scope.STRATEGY,
                    sid,
                    quarantined if sid in before[2] else Mode.NORMAL,
                    quarantined if sid in strategies else Mode.NORMAL,
                    strategies.get(sid, ()),
                )
        self.quarantined = frozenset(strategies)
        self._persist()
        self.counters["transitions"] += len(out)
        for transition in out:
            for listener in list(self.listeners):
                try:
                    listener(transition)
                except Exception:  # a broken listener must never undo or hide a safety transition
                    self.log.exception(
                        "autonomy_listener_failed",
                        transition=transition.id,
                        listener=getattr(listener, "__qualname__", repr(listener)),
                    )

    def _persist(self) -> None:
        if self.store is None:
            return
        try:
            self.store.save(self.document())
        except OSError as exc:
            self._dirty = True
            self.counters["persist_failures"] += 1
            self.persist_error = f"{self.store.path}: {exc.strerror or exc}"
            self.log.error(
                "autonomy_persist_failed",
                path=str(self.store.path),
                error=str(exc),
                hint="check free space and permissions of the state directory; retried every cycle",
            )
            return
        self._dirty = False
        self.persist_error = None
