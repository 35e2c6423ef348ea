"""Manual halt and rearm: the engine's command handlers, and the same operations on the persisted state when
no engine runs (the next boot honours them).

Halt puts the platform in HALT with reason `manual_operator`. Rearm clears the latches in its scope (one
strategy's quarantine with a strategy id, else everything) and is refused while a triggering condition is
still present, unless forced; a forced rearm accepts the present condition until it clears once. Clearing
`manual_operator` also removes the emergency-stop latch file, in the same loop step, so the engine cannot
read it again in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hftops.engine.commands import Command, CommandInbox, CommandRefused
from hftops.ops.autonomy_state import AutonomyController, RearmRefused
from hftops.ops.autonomy_store import AutonomyStore, StateUnreadable
from hftops.ops.reasons import Reason

MAX_TEXT = 500


class EngineRunning(Exception):
    """An engine holds the autonomy state: the change must go through it (its command channel)."""


def _check_text(operator: str, reason_text: str) -> None:
    if not operator.strip():
        raise RearmRefused("an operator name is required (--operator NAME): halt and rearm are audited by name")
    if not reason_text.strip():
        raise RearmRefused("a reason is required (--reason TEXT): it is kept with the transition and the audit")
    if len(reason_text) > MAX_TEXT:
        raise RearmRefused(f"--reason is {len(reason_text)} characters; keep it under {MAX_TEXT}")


def halt(controller: AutonomyController, operator: str, reason_text: str) -> dict[str, Any]:
    _check_text(operator, reason_text)
    changed = controller.halt(operator, reason_text)
    return {
        "changed": changed,
        "mode": controller.ladder_mode.value,
        "halt_episode": controller.halt_episode,
        "reasons": [e.describe() for e in controller.entries() if not e.strategy_id],
    }


def rearm(
    controller: AutonomyController,
    store: AutonomyStore,
    operator: str,
    reason_text: str,
    strategy_id: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """RearmRefused names what is still present (or that nothing is latched)."""
    _check_text(operator, reason_text)
    latch = store.emergency_latch()
    if latch is not None and not strategy_id and controller.active(Reason.MANUAL_OPERATOR) is None:
        # the engine never read this emergency-stop latch (it was killed first): take it in, then clear it
        controller.trip(
            Reason.MANUAL_OPERATOR,
            operator=str(latch.get("by", "emergency-stop")),
            detail=f"emergency-stop latch: {latch.get('reason', '?')}",
        )
    result = controller.rearm(operator, reason_text, strategy_id, force)
    if not strategy_id:
        result["emergency_latch_cleared"] = store.clear_emergency_latch()
    return result


def register_commands(inbox: CommandInbox, controller: AutonomyController, store: AutonomyStore) -> None:
    """`halt` and `rearm` on the engine's command channel (client: control.engine_link.engine_command)."""

    async def on_halt(command: Command) -> dict[str, Any]:
        try:
            return {**halt(controller, command.operator, command.reason), "engine": "running"}
        except RearmRefused as exc:
            raise CommandRefused(str(exc)) from exc

    async def on_rearm(command: Command) -> dict[str, Any]:
        strategy = command.args.get("strategy") or None
        force = command.args.get("force") is True
        try:
            result = rearm(controller, store, command.operator, command.reason, strategy, force)
        except RearmRefused as exc:
            raise CommandRefused(str(exc)) from exc
        return {**result, "engine": "running"}

    inbox.register("halt", on_halt)
    inbox.register("rearm", on_rearm)


# --- without an engine: the persisted state, under the engine's lock ---


def _offline(
    store: AutonomyStore, action: Callable[[AutonomyController], dict[str, Any]], clock: Callable[[], int]
) -> dict[str, Any]:
    with store.offline() as free:
        if not free:
            raise EngineRunning(f"an engine holds {store.lock_path}; send the command to it instead")
        controller = AutonomyController(clock=clock, boot_grace_s=0, store=store)
        controller.restore(keep_auto_recoverable=True)
        result = action(controller)
    return {
        **result,
        "engine": "not running: the persisted state was changed; the next engine boot honours it",
        "state_file": str(store.path),
    }


def halt_offline(
    store: AutonomyStore, operator: str, reason_text: str, clock: Callable[[], int] = time.time_ns
) -> dict[str, Any]:
    return _offline(store, lambda c: halt(c, operator, reason_text), clock)


def rearm_offline(
    store: AutonomyStore,
    operator: str,
    reason_text: str,
    strategy_id: str | None = None,
    force: bool = False,
    clock: Callable[[], int] = time.time_ns,
) -> dict[str, Any]:
    return _offline(store, lambda c: rearm(c, store, operator, reason_text, strategy_id, force), clock)


def persisted_view(store: AutonomyStore, strategy_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """The stored state in the shape of `AutonomyController.snapshot()`, for `status` when no engine runs
    (read only: nothing is moved or written)."""
    controller = AutonomyController(clock=time.time_ns, boot_grace_s=0, store=None, strategy_ids=strategy_ids)
    try:
        doc = store.peek()
    except StateUnreadable as exc:
        controller.trip(Reason.MANUAL_OPERATOR, operator="boot", detail=f"{exc}; the engine fails closed on it")
        doc = None
    if doc is not None:
        controller.load_document(doc, keep_auto_recoverable=True)
    latch = store.emergency_latch()
    if latch is not None and controller.active(Reason.MANUAL_OPERATOR) is None:
        controller.trip(
            Reason.MANUAL_OPERATOR,
            operator=str(latch.get("by", "emergency-stop")),
            detail=f"emergency-stop latch: {latch.get('reason', '?')}",
        )
    view = controller.snapshot()
    view["source"] = "persisted" if doc is not None else "persisted (no state file yet)"
    for key in ("grace_remaining_s", "counters", "persist_error"):
        view.pop(key, None)
    return view
