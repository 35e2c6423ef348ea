"""Read-only queries for every process that is not the recorder (CLI, checks, reports, API).

chDB allows one process per directory and the recorder is that process, so reads go to the recorder's
`POST /query`. When no recorder answers: a ClickHouse server is asked directly (readonly=1); an embedded
store is opened here for the one query, but only when its lock says no process holds it.
"""

from __future__ import annotations

from typing import Any

import httpx

from hftops.config.schema import Config
from hftops.store.chdb_store import ChdbStore, StoreLocked, chdb_locked
from hftops.store.errors import QueryError, StoreError
from hftops.store.factory import build_store

__all__ = ["QueryError", "StoreError", "StoreLocked", "query"]


def query(config: Config, sql: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
    """`{"columns": [...], "types": [...], "rows": [[...], ...]}`; QueryError for bad or non-read SQL."""
    url = config.recorder_query_url + "/query"
    try:
        response = httpx.post(url, json={"sql": sql}, timeout=httpx.Timeout(timeout_s, connect=2.0))
    except httpx.ConnectError:
        return _query_directly(config, sql)
    except httpx.TimeoutException as exc:
        raise StoreError(f"the recorder at {url} did not answer within {timeout_s:.0f}s") from exc
    if response.status_code == 400:
        raise QueryError(_error_text(response))
    if response.status_code != 200:
        raise StoreError(f"the recorder at {url} answered HTTP {response.status_code}: {_error_text(response)}")
    result: dict[str, Any] = response.json()
    return result


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text)
    except ValueError:
        return response.text


def _query_directly(config: Config, sql: str) -> dict[str, Any]:
    store = build_store(config, read_only=True)
    if isinstance(store, ChdbStore):
        if chdb_locked(store.path):
            raise StoreLocked(
                f"{store.description} is held by a process that does not answer on {config.recorder_query_url} "
                "(the recorder is starting or stuck; see `trading status`)"
            )
        if not (store.path / "metadata").is_dir():
            raise StoreError(f"no database at {store.path} yet; start the recorder once to create it")
    store.open()
    try:
        return store.query(sql).as_dict()
    finally:
        store.close()
