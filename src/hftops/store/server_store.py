"""The server store: a ClickHouse server (or cluster entry point) through clickhouse-connect, same DDL and SQL.

The client is built lazily and dropped on connection errors, so a recorder started while the server is
down writes its WAL and connects once the server answers.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any
from urllib.parse import urlsplit

from hftops.store.backend import READ_SETTINGS, QueryResult, parse_json_compact
from hftops.store.ddl import schema_statements
from hftops.store.errors import (
    DATA_ERROR_CODES,
    DatabaseUnavailable,
    InsertRejected,
    QueryError,
    error_code,
    short_message,
)
from hftops.store.faults import FaultSwitch


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class ServerStore:
    def __init__(
        self,
        url: str,
        database: str,
        fault: FaultSwitch | None = None,
        *,
        connect_timeout_s: int = 3,
        send_receive_timeout_s: int = 30,
        create_schema: bool = True,
    ) -> None:
        self.url = url
        self.database = database
        self.fault = fault
        self.create_schema = create_schema
        self.description = f"ClickHouse at {redact(url)}"
        self._timeouts = (connect_timeout_s, send_receive_timeout_s)
        self._client: Any = None
        self._schema_ready = False
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        with self._lock:
            if self._client is not None:
                return self._client
            try:
                client = clickhouse_connect.get_client(
                    dsn=self.url,
                    connect_timeout=self._timeouts[0],
                    send_receive_timeout=self._timeouts[1],
                    autogenerate_session_id=False,  # the recorder's threads share one client
                )
                if self.create_schema and not self._schema_ready:
                    for statement in schema_statements(self.database):
                        client.command(statement)
                    self._schema_ready = True
            except (ClickHouseError, OSError, ValueError) as exc:
                raise DatabaseUnavailable(
                    f"{self.description} refused the connection: {short_message(str(exc))}"
                ) from exc
            self._client = client
            return client

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # the connection is already broken
                client.close()

    def open(self) -> None:
        self._connect()

    def close(self) -> None:
        self._drop_client()

    def _check_fault(self) -> None:
        if self.fault is not None:
            self.fault.raise_if_down(self.description)

    def insert(self, table: str, columns: tuple[str, ...], body: bytes, token: str) -> None:
        from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

        self._check_fault()
        client = self._connect()
        try:
            client.raw_insert(
                f"{self.database}.{table}",
                list(columns),
                body,
                fmt="JSONCompactEachRow",
                settings={"insert_deduplication_token": token},
            )
        except OperationalError as exc:
            self._drop_client()
            raise DatabaseUnavailable(
                f"{self.description} insert into {table} failed: {short_message(str(exc))}"
            ) from exc
        except ClickHouseError as exc:
            message = short_message(str(exc))
            code = error_code(message)
            if code in DATA_ERROR_CODES:
                raise InsertRejected(f"{self.description} refused rows for {table}: {message}", code) from exc
            raise DatabaseUnavailable(f"{self.description} insert into {table} failed: {message}") from exc

    def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

        client = self._connect()
        try:
            raw = client.raw_query(
                sql, parameters=params or None, fmt="JSONCompact", settings={**READ_SETTINGS, "readonly": 1}
            )
        except OperationalError as exc:
            self._drop_client()
            raise DatabaseUnavailable(f"{self.description} did not answer: {short_message(str(exc))}") from exc
        except ClickHouseError as exc:
            raise QueryError(short_message(str(exc))) from exc
        return parse_json_compact(raw)

    def ping(self) -> None:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        self._check_fault()
        client = self._connect()
        try:
            client.command("SELECT 1")
        except ClickHouseError as exc:
            self._drop_client()
            raise DatabaseUnavailable(f"{self.description} does not answer: {short_message(str(exc))}") from exc
