"""The collector's vocabulary: dead-letter reason codes and REST failure kinds (operators grep these)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

SOURCE: Final = "collector"  # DeadLetter.source and the `ops:stats` field of this component


class RejectReason(StrEnum):
    """Why a frame or a REST row was refused and dead-lettered."""

    OVERSIZED = "oversized"  # frame above collector.max_frame_bytes
    BAD_JSON = "bad_json"  # not JSON, or not a combined-stream frame {"stream": ..., "data": {...}}
    UNKNOWN_STREAM = "unknown_stream"  # a stream this connection did not subscribe to
    BAD_EVENT = "bad_event"  # the event misses a field or has a field of the wrong type
    UNKNOWN_SYMBOL = "unknown_symbol"  # symbol not configured, or differs from the stream's symbol
    BAD_PRICE = "bad_price"  # not a positive finite decimal (NaN, inf, zero, negative, exponent, ...)
    BAD_QTY = "bad_qty"  # not a finite decimal >= 0
    BAD_ID = "bad_id"  # a venue id below zero
    BAD_TIME = "bad_time"  # an event or trade time below zero
    INTERNAL_ERROR = "internal_error"  # a bug while handling the frame; the frame is kept here


class RestFailure(StrEnum):
    """Why a REST backfill request failed (it is retried with backoff; the gap stays open)."""

    HTTP_429 = "http_429"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    MALFORMED = "malformed"  # the body is not the expected JSON list
    EMPTY = "empty"  # no rows where the gap is: the venue has not served them (yet)
