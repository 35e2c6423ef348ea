"""API key, HMAC-SHA256 signature and timestamp/recvWindow checks, as Binance applies them.

The signature covers the exact bytes sent: the query string concatenated with the form body (Binance's
`totalParams`), minus the `signature` parameter itself. Secrets are compared, never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from hftops.venue.trading import errors as E
from hftops.venue.trading.errors import TradingError

DEV_API_KEY = "hftops-dev-key"
DEV_API_SECRET = "hftops-dev-secret"  # development pair, only valid against the simulator
KEY_ENV, SECRET_ENV = "HFT_SIM_API_KEY", "HFT_SIM_API_SECRET"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
MAX_AHEAD_MS = 1000


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        return cls(env.get(KEY_ENV) or DEV_API_KEY, env.get(SECRET_ENV) or DEV_API_SECRET)

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(api_key={self.api_key!r}, api_secret=***)"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_api_key(credentials: Credentials, header: str | None) -> None:
    if not header:
        raise TradingError(E.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    if not hmac.compare_digest(header.encode(), credentials.api_key.encode()):
        raise TradingError(E.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status=401)


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """(raw without the signature parameter, the signature or None)."""
    kept, signature = [], None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify_signed(credentials: Credentials, api_key: str | None, query: str, body: str, now_ms: int) -> dict[str, str]:
    """The request's parameters after the key, signature and timestamp checks; raises TradingError."""
    check_api_key(credentials, api_key)
    query_wo, sig_q = _strip_signature(query)
    body_wo, sig_b = _strip_signature(body)
    signature = sig_q or sig_b
    params = dict(parse_qsl(query_wo, keep_blank_values=True))
    params.update(parse_qsl(body_wo, keep_blank_values=True))
    if "timestamp" not in params or not params["timestamp"]:
        raise E.missing("timestamp")
    if not signature:
        raise E.missing("signature")
    expected = sign(credentials.api_secret, query_wo + body_wo)
    if not hmac.compare_digest(expected, signature.lower()):
        raise TradingError(E.BAD_SIGNATURE, "Signature for this request is not valid.")
    try:
        timestamp = int(params["timestamp"])
        recv_window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
    except ValueError:
        raise TradingError(
            E.ILLEGAL_CHARS,
            "Illegal characters found in parameter 'timestamp' or 'recvWindow'; legal range is '^[0-9]{1,20}$'.",
        ) from None
    if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
        raise TradingError(E.INVALID_PARAMETER, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}.")
    if timestamp >= now_ms + MAX_AHEAD_MS:
        raise TradingError(
            E.TIMESTAMP_OUTSIDE, f"Timestamp for this request was {MAX_AHEAD_MS}ms ahead of the server's time."
        )
    if now_ms - timestamp > recv_window:
        raise TradingError(E.TIMESTAMP_OUTSIDE, "Timestamp for this request is outside of the recvWindow.")
    return params
