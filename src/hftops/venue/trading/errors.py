"""Binance error codes the trading endpoints answer with, as one exception type carrying status and code."""

from __future__ import annotations


class TradingError(Exception):
    """A refused request: HTTP `status` with Binance's {"code", "msg"}."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


# Codes and texts as Binance USD-M futures documents them (messages extended with what to fix).
UNKNOWN = -1000
TOO_MANY_REQUESTS = -1003
TIMESTAMP_OUTSIDE = -1021
BAD_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM = -1102
NOT_REQUIRED = -1106
BAD_PRECISION = -1111
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
INVALID_LISTEN_KEY = -1125
INVALID_PARAMETER = -1130
FILTER_FAILURE = -1013
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
MARGIN_INSUFFICIENT = -2019
REDUCE_ONLY_REJECT = -2022
QTY_LESS_THAN_ZERO = -4003
INVALID_CLIENT_ORDER_ID = -4015
INVALID_LEVERAGE = -4028
POSITION_SIDE_MISMATCH = -4061
DUPLICATED_CLIENT_ORDER_ID = -4116
FOK_REJECTED = -5021
NO_NEED_TO_MODIFY = -5027
GTX_REJECTED = -5022


def missing(name: str) -> TradingError:
    return TradingError(MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
