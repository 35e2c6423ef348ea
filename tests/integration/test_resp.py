"""The collector's pipelined Redis connection against a real Valkey: the URL's user, password, database, TLS
and unix socket are honoured, and a server that stops answering fails what is on the wire instead of hanging."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import hiredis
import pytest
import redis
import trustme

from hftops.bus.resp import Replies, RespConnection, pack_command
from hftops.bus.valkey_server import ValkeySpec, wait_until_ready
from tests.conftest import ValkeyHandle
from tests.support.ports import free_port


async def ask(conn: RespConnection, *commands: tuple[object, ...]) -> Replies | Exception:
    answered: asyncio.Future[Replies | Exception] = asyncio.get_running_loop().create_future()
    conn.request(b"".join(pack_command(c) for c in commands), len(commands), answered.set_result)
    return await answered


async def test_replies_come_back_in_order_and_error_replies_are_values(valkey: ValkeyHandle) -> None:
    conn = RespConnection(valkey.url, timeout_s=2)
    await conn.connect()
    try:
        first = asyncio.ensure_future(ask(conn, (b"SET", b"k", b"1"), (b"INCR", b"k")))
        second = asyncio.ensure_future(ask(conn, (b"HSET", b"k", b"f", b"v"), (b"GET", b"k")))  # pipelined
        assert await first == [b"OK", 2]
        wrong_type, value = await second  # type: ignore[misc]
        assert isinstance(wrong_type, hiredis.ReplyError) and "WRONGTYPE" in str(wrong_type)
        assert value == b"2" and not conn.busy
    finally:
        conn.close()


async def test_user_password_and_database_come_from_the_url(valkey: ValkeyHandle) -> None:
    admin = valkey.client()
    admin.execute_command("ACL", "SETUSER", "writer", "on", ">s3cret", "~*", "+@all")
    base = f"127.0.0.1:{valkey.port}"
    conn = RespConnection(f"redis://writer:s3cret@{base}/3", timeout_s=2)
    await conn.connect()
    try:
        assert await ask(conn, (b"SET", b"where", b"db3")) == [b"OK"]
    finally:
        conn.close()
    assert redis.Redis.from_url(f"redis://{base}/3").get("where") == b"db3"
    assert admin.get("where") is None
    refused = RespConnection(f"redis://writer:wrong@{base}/0", timeout_s=2)
    with pytest.raises(redis.AuthenticationError, match=f"{base} refused the connection setup"):
        await refused.connect()
    assert not refused.connected


async def test_a_unix_socket_url_is_used(tmp_path: Path) -> None:
    socket_path = tmp_path / "valkey.sock"
    spec = ValkeySpec(port=free_port(), data_dir=tmp_path / "data")
    spec.data_dir.mkdir()
    server = subprocess.Popen([*spec.argv(), "--unixsocket", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        wait_until_ready(f"redis://127.0.0.1:{spec.port}/0")
        conn = RespConnection(f"unix://{socket_path}?db=1", timeout_s=2)
        await conn.connect()
        assert await ask(conn, (b"SET", b"via", b"socket")) == [b"OK"]
        conn.close()
        assert redis.Redis(unix_socket_path=str(socket_path), db=1).get("via") == b"socket"
    finally:
        server.kill()
        server.wait()


async def test_a_server_that_stops_answering_fails_the_requests_on_the_wire() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # reads the request and never answers it

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = RespConnection(f"redis://127.0.0.1:{port}", timeout_s=0.3)
        await conn.connect()
        outcome = await asyncio.wait_for(ask(conn, (b"PING",)), 5)
        assert isinstance(outcome, redis.TimeoutError) and "did not answer within 0.3 s" in str(outcome)
        assert not conn.connected and not conn.busy  # dropped: a late reply can never answer a later request
        with pytest.raises(redis.ConnectionError, match="not connected"):
            conn.request(pack_command((b"PING",)), 1, lambda _: None)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_stopped_server_fails_the_connection_and_a_new_one_works(valkey: ValkeyHandle) -> None:
    conn = RespConnection(valkey.url, timeout_s=2)
    await conn.connect()
    valkey.stop()
    outcome = await asyncio.wait_for(ask(conn, (b"PING",)), 5)
    assert isinstance(outcome, redis.ConnectionError)
    with pytest.raises(redis.ConnectionError, match=f"cannot connect to 127.0.0.1:{valkey.port}"):
        await conn.connect()
    valkey.start()
    await conn.connect()
    assert await ask(conn, (b"PING",)) == [b"PONG"]
    conn.close()


async def test_a_rediss_url_speaks_tls_and_verifies_the_server(valkey: ValkeyHandle, tmp_path: Path) -> None:
    """The bundled Valkey has no TLS, so a TLS terminator in front of it stands in for a TLS server."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))

    async def terminate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", valkey.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(1 << 16):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(terminate, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = RespConnection(f"rediss://127.0.0.1:{port}/2?ssl_ca_certs={ca_file}", timeout_s=2)
        await conn.connect()
        assert await ask(conn, (b"SET", b"over", b"tls")) == [b"OK"]
        conn.close()
        assert redis.Redis.from_url(f"redis://127.0.0.1:{valkey.port}/2").get("over") == b"tls"
        untrusted = RespConnection(f"rediss://127.0.0.1:{port}/0", timeout_s=2)  # the system CAs only
        with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.connect()
    finally:
        server.close()
        await server.wait_closed()
