"""The embedded store: chDB (the ClickHouse engine in-process) on $HFT_DATA_DIR/clickhouse.

chDB locks its directory, so exactly one process opens it for writing: the recorder. Two sessions share
the engine: one writes (inserts, schema), one is pinned to readonly=1 for every read, so an operator's
query can never write whatever it says.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

from hftops.store.backend import READ_SETTINGS, QueryResult, parse_json_compact
from hftops.store.ddl import embedded_statements, schema_statements
from hftops.store.errors import (
    DATA_ERROR_CODES,
    DatabaseUnavailable,
    InsertRejected,
    QueryError,
    StoreError,
    error_code,
    short_message,
)
from hftops.store.faults import FaultSwitch


class StoreLocked(StoreError):
    """Another process (normally the recorder) holds the chDB directory."""


def chdb_locked(path: Path) -> bool:
    """True when a process holds chDB's lock on `path` (the flock on its `status` file)."""
    try:
        fd = os.open(path / "status", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class ChdbStore:
    def __init__(self, path: Path, database: str, fault: FaultSwitch | None = None, *, read_only: bool = False) -> None:
        self.path = path
        self.database = database
        self.fault = fault
        self.read_only = read_only
        self.description = f"chDB at {path}"
        self._write: Any = None
        self._read: Any = None

    def open(self) -> None:
        from chdb import session

        if chdb_locked(self.path):
            raise StoreLocked(
                f"{self.description} is locked by another process (is a recorder running?); "
                "ask it through its /query endpoint or stop it first"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            if not self.read_only:
                self._write = session.Session(str(self.path))
                for statement in schema_statements(self.database) + embedded_statements(self.database):
                    self._write.query(statement)
            self._read = session.Session(str(self.path))
            self._read.query(f"USE {self.database}")
            for name, value in READ_SETTINGS.items():
                self._read.query(f"SET {name} = {value}")
            self._read.query("SET readonly = 1")  # last: afterwards nothing on this session can change it
        except Exception as exc:
            self.close()
            message = short_message(str(exc))
            if "Cannot lock file" in message or "already initialized" in message:
                raise StoreLocked(f"{self.description}: {message}") from exc
            raise DatabaseUnavailable(f"{self.description} could not be opened: {message}") from exc

    def close(self) -> None:
        for sess in (self._read, self._write):
            if sess is not None:
                with contextlib.suppress(Exception):  # a broken session must not mask the error being raised
                    sess.close()
        self._read = self._write = None

    def _check_fault(self) -> None:
        if self.fault is not None:
            self.fault.raise_if_down(self.description)

    def insert(self, table: str, columns: tuple[str, ...], body: bytes, token: str) -> None:
        self._check_fault()
        if self._write is None:
            raise DatabaseUnavailable(f"{self.description} is not open for writing")
        sql = (
            f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) "
            f"SETTINGS insert_deduplication_token = '{token}' FORMAT JSONCompactEachRow\n"
        )
        try:
            self._write.query(sql + body.decode())
        except Exception as exc:
            message = short_message(str(exc))
            code = error_code(message)
            if code in DATA_ERROR_CODES:
                raise InsertRejected(f"{self.description} refused rows for {table}: {message}", code) from exc
            raise DatabaseUnavailable(f"{self.description} insert into {table} failed: {message}") from exc

    def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        if self._read is None:
            raise DatabaseUnavailable(f"{self.description} is not open")
        try:
            if ";" in sql.strip().rstrip(";"):
                # formatQuery refuses several statements in one string; chDB would otherwise run them all.
                self._read.query("SELECT formatQuerySingleLine({q:String})", "JSONCompact", params={"q": sql})
            raw = self._read.query(sql, "JSONCompact", params=params or {})
        except Exception as exc:
            raise QueryError(short_message(str(exc))) from exc
        return parse_json_compact(raw.bytes())

    def ping(self) -> None:
        self._check_fault()
        if self._write is None:
            raise DatabaseUnavailable(f"{self.description} is not open for writing")
        try:
            self._write.query("SELECT 1")
        except Exception as exc:
            raise DatabaseUnavailable(f"{self.description} does not answer: {short_message(str(exc))}") from exc
