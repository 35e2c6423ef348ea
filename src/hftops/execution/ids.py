"""Client order ids: `<strategy>-<session>-<seq>`, unique per session, within Binance's rule.

Binance accepts `^[.A-Z:/a-z0-9_-]{1,36}$`. The id is the idempotency key: a resend after a timeout reuses
it, and the venue refuses a second order with the same id (-4116) instead of opening a second position.
"""

from __future__ import annotations

import re
import secrets
import time

CLIENT_ORDER_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
MAX_LEN = 36
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int) -> str:
    if value == 0:
        return "0"
    digits = []
    while value:
        value, rem = divmod(value, 36)
        digits.append(_B36[rem])
    return "".join(reversed(digits))


def new_session_id(now_s: float | None = None) -> str:
    """A short id unique across restarts: start second in base 36 plus 2 random characters (8 chars)."""
    stamp = _base36(int(now_s if now_s is not None else time.time()))
    return f"{stamp}{_base36(secrets.randbelow(36 * 36)).rjust(2, '0')}"


class ClientOrderIds:
    """Deterministic ids for one engine session: `<strategy>-<session>-<seq>` with seq in base 36.

    The strategy part is cleaned to Binance's charset and shortened so the whole id stays within 36
    characters even after billions of orders.
    """

    def __init__(self, session: str, start_seq: int = 0) -> None:
        if not re.fullmatch(r"[A-Za-z0-9]{1,10}", session):
            raise ValueError(f"session id {session!r} must be 1-10 letters/digits")
        self.session = session
        self._seq = start_seq

    @property
    def seq(self) -> int:
        return self._seq

    def next(self, strategy_id: str) -> str:
        self._seq += 1
        return self.format(strategy_id, self._seq)

    def format(self, strategy_id: str, seq: int) -> str:
        tail = f"-{self.session}-{_base36(seq)}"
        prefix = _UNSAFE.sub("_", strategy_id)[: MAX_LEN - len(tail)] or "s"
        client_id = prefix + tail
        assert CLIENT_ORDER_ID_RE.fullmatch(client_id), client_id
        return client_id

    def parse_strategy(self, client_order_id: str) -> str | None:
        """The (cleaned) strategy part of an id of this session, or None for someone else's id."""
        head, sep, rest = client_order_id.partition(f"-{self.session}-")
        return head if sep and rest and "-" not in rest else None
