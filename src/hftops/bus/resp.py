"""A pipelined Redis connection on the event loop for the latency-critical writer: bytes in, replies out.

redis-py's asyncio client costs a coroutine, a lock and Python-level encoding per call; its blocking client
needs a thread, and handing work to a thread and its answer back costs two wake-ups per write. This one is
an asyncio Protocol with hiredis's parser: a request is bytes already packed (hiredis.pack_command) and the
number of replies they produce, and its callback runs from `data_received` the moment the last reply is
parsed. Requests may be pipelined; replies are matched in order.

Any failure (connect, timeout, lost connection, unparsable bytes) fails every request on the wire and
closes the connection: what was sent may or may not have been applied, and the caller decides what that
means. Error replies (-ERR ...) are not failures here: they are returned as `hiredis.ReplyError` values in
the reply list, as Redis sends them inside a transaction too.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.connection import parse_url
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# hiredis's stub types the argument as a 1-tuple; it takes any tuple of str / bytes / int / float.
pack_command = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)

Replies = list[Any]
OnReplies = Callable[[Replies | Exception], None]


@dataclass(slots=True)
class _Request:
    replies: int
    on_done: OnReplies
    got: Replies
    timer: asyncio.TimerHandle


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RespConnection) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner._protocol is not self:
            return  # a connection already given up; its bytes answer nothing any more
        reader = self.reader
        reader.feed(data)
        try:
            reply = reader.gets()
            while reply is not False and owner._protocol is self:
                owner._reply(reply)
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            owner._fail(RedisConnectionError(f"unparsable reply from {owner.address}: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._protocol is not self:
            return
        reason = f": {exc}" if exc else ""
        self.owner._fail(RedisConnectionError(f"connection to {self.owner.address} lost{reason}"), lost=True)


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "cert_none"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return context


class RespConnection:
    """One connection to the server at `url` (redis://, rediss://, unix://; user, password and db taken
    from it). Not thread-safe: use it from the event loop that connected it."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.options = parse_url(url)
        self.timeout_s = timeout_s
        path = self.options.get("path")
        self.address = path or f"{self.options.get('host', 'localhost')}:{self.options.get('port', 6379)}"
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._wire: deque[_Request] = deque()

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def busy(self) -> bool:
        return bool(self._wire)

    async def connect(self) -> None:
        """Open the connection, authenticate and select the database; raises redis ConnectionError,
        TimeoutError or AuthenticationError naming the server."""
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            if options.get("path"):
                opening = loop.create_unix_connection(lambda: _Protocol(self), options["path"])
            else:
                secure = options.get("connection_class", object).__name__ == "SSLConnection"  # rediss://
                tls = _ssl_context(options) if secure else None
                opening = loop.create_connection(
                    lambda: _Protocol(self), options.get("host", "localhost"), int(options.get("port", 6379)), ssl=tls
                )
            transport, protocol = await asyncio.wait_for(opening, self.timeout_s)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"connecting to {self.address} took over {self.timeout_s} s") from exc
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to {self.address}: {exc}") from exc
        self._transport, self._protocol = cast(asyncio.Transport, transport), protocol
        hello: list[bytes] = []
        if options.get("password") is not None:
            user = (options["username"],) if options.get("username") else ()
            hello.append(pack_command((b"AUTH", *user, options["password"])))
        if options.get("db"):
            hello.append(pack_command((b"SELECT", int(options["db"]))))
        if not hello:
            return
        answered: asyncio.Future[Replies | Exception] = loop.create_future()
        self.request(b"".join(hello), len(hello), answered.set_result)
        result = await answered
        if isinstance(result, Exception):
            raise result
        errors = [r for r in result if isinstance(r, hiredis.ReplyError)]
        if errors:
            self.close()
            message = f"{self.address} refused the connection setup: {errors[0]}"
            raise AuthenticationError(message) if options.get("password") is not None else ResponseError(message)

    def request(self, payload: bytes, replies: int, on_done: OnReplies) -> None:
        """Send `payload` (packed commands producing `replies` replies); `on_done` gets the replies, or the
        exception that failed the connection. Call only while connected."""
        transport = self._transport
        if transport is None:
            raise RedisConnectionError(f"not connected to {self.address}")
        timer = asyncio.get_running_loop().call_later(self.timeout_s, self._timed_out)
        self._wire.append(_Request(replies, on_done, [], timer))
        transport.write(payload)

    def close(self) -> None:
        self._fail(RedisConnectionError(f"connection to {self.address} closed"))

    # --- from the protocol ------------------------------------------------------------------------------

    def _reply(self, reply: Any) -> None:
        if not self._wire:
            self._fail(RedisConnectionError(f"{self.address} sent a reply nobody asked for: {str(reply)[:80]}"))
            return
        request = self._wire[0]
        request.got.append(reply)
        if len(request.got) == request.replies:
            self._wire.popleft()
            request.timer.cancel()
            request.on_done(request.got)

    def _timed_out(self) -> None:
        self._fail(RedisTimeoutError(f"{self.address} did not answer within {self.timeout_s} s"))

    def _fail(self, exc: Exception, lost: bool = False) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None and not lost:
            transport.abort()  # a late reply must never be matched to a later request
        wire, self._wire = self._wire, deque()
        for request in wire:
            request.timer.cancel()
            request.on_done(exc)
