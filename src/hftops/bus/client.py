"""Redis clients for components: asyncio with the hiredis parser, bounded timeouts, health checks."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis


def async_client(url: str, *, timeout_s: float = 5.0) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=None,  # XREADGROUP BLOCK needs an unbounded read; calls bound themselves
        health_check_interval=0,
        decode_responses=False,
    )


def sync_client(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
