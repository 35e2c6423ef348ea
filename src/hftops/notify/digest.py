"""Messages held back by a channel's rate limit, folded into one digest message when the window allows.

Held messages are grouped by key (or, without a key, by their first line): the digest lists each group
once with its count and latest line, so a burst of one repeated warning reads as one line.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hftops.notify.messages import Kind, Notification, Severity

_LINE_MAX = 200


@dataclass(eq=False)
class Envelope:
    """A message on its way through one channel; `done` (optional) learns how it ended."""

    message: Notification
    done: asyncio.Future[dict[str, str]] | None = None

    def settle(self, outcome: str, detail: str = "") -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result({"outcome": outcome, "detail": detail})


@dataclass
class _Group:
    severity: Severity
    count: int
    line: str


def first_line(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= _LINE_MAX else line[: _LINE_MAX - 1] + "…"


@dataclass
class Digest:
    max_lines: int
    count: int = 0
    since_ns: int = 0
    groups: dict[str, _Group] = field(default_factory=dict)
    held: list[Envelope] = field(default_factory=list)  # only those someone waits on (notify test)

    @property
    def empty(self) -> bool:
        return self.count == 0

    def add(self, envelope: Envelope) -> None:
        message = envelope.message
        if self.count == 0:
            self.since_ns = message.time_ns
        self.count += 1
        line = first_line(message.text)
        group_key = message.key or line
        group = self.groups.pop(group_key, None)  # re-inserted last: the digest lists latest groups last
        if group is None:
            group = _Group(message.severity, 0, line)
        group.count += 1
        group.line = line
        if message.severity.rank > group.severity.rank:
            group.severity = message.severity
        self.groups[group_key] = group
        if envelope.done is not None:
            self.held.append(envelope)

    def take(self, *, now_ns: int, interval_s: float, source: str, host: str) -> tuple[Envelope, list[Envelope], int]:
        """The digest message, the held envelopes it settles, and how many messages it folds; resets."""
        since = datetime.fromtimestamp(self.since_ns / 1e9, UTC).strftime("%H:%M:%S UTC")
        noun = "message" if self.count == 1 else "messages"
        lines = [f"Digest: {self.count} {noun} held back by the rate limit (one per {interval_s:g} s) since {since}"]
        shown = list(self.groups.items())[-self.max_lines :]
        for key, group in shown:
            label = f"{key}: " if key != group.line else ""
            lines.append(f"• {group.count}x {group.severity.value} {label}{group.line}")
        hidden = len(self.groups) - len(shown)
        if hidden:
            lines.append(f"(+{hidden} older kinds of message not listed)")
        severity = max((g.severity for g in self.groups.values()), key=lambda s: s.rank)
        message = Notification(
            severity=severity,
            text="\n".join(lines),
            key="digest",
            kind=Kind.DIGEST,
            time_ns=now_ns,
            source=source,
            host=host,
        )
        folded, held = self.count, self.held
        self.count, self.since_ns, self.groups, self.held = 0, 0, {}, []
        return Envelope(message), held, folded
