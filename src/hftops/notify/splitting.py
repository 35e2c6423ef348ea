"""Splitting long messages for chat channels: at line breaks, a single over-long line hard-split.

Telegram's limit (4,096 characters after entity parsing) is counted in UTF-16 code units, so an emoji
counts twice; measuring in UTF-16 units is never shorter than Telegram's count, so a part that fits here
fits there.
"""

from __future__ import annotations

TELEGRAM_MAX_CHARS = 4096


def units(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _take(line: str, room: int) -> tuple[str, str]:
    """The longest prefix of `line` within `room` UTF-16 units, and the rest."""
    size = 0
    for i, ch in enumerate(line):
        size += 2 if ord(ch) > 0xFFFF else 1
        if size > room:
            return line[:i], line[i:]
    return line, ""


def split_text(text: str, limit: int = TELEGRAM_MAX_CHARS) -> list[str]:
    """Parts of at most `limit` UTF-16 units, cut at line breaks (the break itself is dropped); a line
    longer than `limit` fills the part it starts in and is cut wherever it must be. Whitespace-only parts
    are dropped: chat APIs refuse empty messages."""
    if limit < 2:
        raise ValueError(f"split limit must be at least 2 UTF-16 units, got {limit}")
    if units(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        width = units(line)
        joined = width if not current else size + 1 + width
        if joined <= limit:
            current.append(line)
            size = joined
            continue
        if width <= limit:
            parts.append("\n".join(current))
            current, size = [line], width
            continue
        head, rest = _take(line, limit - (size + 1 if current else 0))
        if head:
            current.append(head)
        if current:
            parts.append("\n".join(current))
        while units(rest) > limit:
            piece, rest = _take(rest, limit)
            parts.append(piece)
        current, size = [rest], units(rest)
    if current:
        parts.append("\n".join(current))
    return [part for part in parts if part.strip()]
