"""Broker errors: Binance's {"code", "msg"} rejections and transport failures, classified retryable or final."""

from __future__ import annotations

from enum import IntEnum


class BinanceCode(IntEnum):
    """The Binance USD-M futures error codes the adapter acts on (names as in Binance's error-code page)."""

    UNKNOWN = -1000
    DISCONNECTED = -1001
    TOO_MANY_REQUESTS = -1003
    UNEXPECTED_RESP = -1006
    TIMEOUT = -1007
    SERVER_BUSY = -1008
    INVALID_MESSAGE = -1013
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
    BAD_SYMBOL = -1121
    INVALID_LISTEN_KEY = -1125
    CANCEL_REJECTED = -2011
    NO_SUCH_ORDER = -2013
    BAD_API_KEY_FMT = -2014
    REJECTED_MBX_KEY = -2015
    MARGIN_INSUFFICIENT = -2019
    REDUCE_ONLY_REJECT = -2022
    QTY_LESS_THAN_ZERO = -4003
    DUPLICATED_CLIENT_ORDER_ID = -4116
    FOK_ORDER_REJECT = -5021


# Codes that say "the request did not take effect, or its outcome is unknown; sending it again is safe" —
# safe for orders too, because every order carries its client order id and the venue refuses a duplicate.
RETRYABLE_CODES = frozenset(
    {
        BinanceCode.UNKNOWN,
        BinanceCode.DISCONNECTED,
        BinanceCode.TOO_MANY_REQUESTS,
        BinanceCode.UNEXPECTED_RESP,
        BinanceCode.TIMEOUT,
        BinanceCode.SERVER_BUSY,
        BinanceCode.INVALID_TIMESTAMP,  # after re-syncing the clock offset
    }
)
RATE_LIMIT_CODES = frozenset({BinanceCode.TOO_MANY_REQUESTS})
# Outcome unknown: the venue may have executed the request even though it answered with an error.
UNKNOWN_OUTCOME_CODES = frozenset({BinanceCode.UNEXPECTED_RESP, BinanceCode.TIMEOUT})
AUTH_CODES = frozenset({BinanceCode.INVALID_SIGNATURE, BinanceCode.BAD_API_KEY_FMT, BinanceCode.REJECTED_MBX_KEY})


class BrokerError(Exception):
    """A request the broker refused or that failed on the way. `code` is Binance's code, or one of the
    negative pseudo codes below for failures that carried none (HTTP 5xx without a body, timeout, bad JSON).
    """

    TRANSPORT = -9001  # connect error, reset, timeout: no answer at all
    MALFORMED = -9002  # an answer that is not the JSON shape Binance documents
    HTTP = -9003  # an HTTP error status without Binance's error JSON

    def __init__(
        self,
        code: int,
        msg: str,
        http_status: int | None = None,
        *,
        endpoint: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.endpoint = endpoint  # "POST /fapi/v1/order": never the query string (it carries the signature)
        self.retry_after_s = retry_after_s
        # Set by the client when an earlier attempt of the same request had an unknown outcome: a final
        # error now (say -2019) may only mean the first copy already took effect.
        self.after_unknown_outcome = False
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        hint = ""
        if self.code in AUTH_CODES:
            hint = "; check the broker API key/secret env vars named by broker.api_key_env/api_secret_env"
        elif self.code == BinanceCode.INVALID_TIMESTAMP:
            hint = "; the local clock is off the venue's: offset re-synced, or raise broker.recv_window_ms"
        return f"broker {where}error {self.code}: {self.msg}{status}{hint}"

    @property
    def retryable(self) -> bool:
        """Worth sending again (with backoff): 5xx, rate limits, timeouts, malformed answers, -1001/-1007/..."""
        if self.http_status == 418:  # IP banned for ignoring 429s: retrying makes it longer
            return False
        if self.code in (self.TRANSPORT, self.MALFORMED):
            return True
        if self.code in RETRYABLE_CODES:
            return True
        return self.http_status is not None and (self.http_status >= 500 or self.http_status in (408, 429))

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMIT_CODES or self.http_status == 429

    @property
    def outcome_unknown(self) -> bool:
        """The request may have taken effect at the venue although no success answer arrived."""
        if self.code in (self.TRANSPORT, self.MALFORMED) or self.code in UNKNOWN_OUTCOME_CODES:
            return True
        return self.http_status is not None and self.http_status >= 500

    @property
    def final(self) -> bool:
        return not self.retryable


class CredentialsError(RuntimeError):
    """The broker's API key or secret is missing; the message names the environment variable to set."""
