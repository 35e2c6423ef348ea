"""What is in flight and what is stored: stream lengths, consumer lag and pending, WAL, DLQ, table rows,
per-symbol freshness, component stats (`ops:stats`) and the ledger. Every part degrades to a reason
instead of failing when its source (Redis, recorder, venue) is down."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import redis

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.model.streams import (
    DLQ_STREAM,
    MD_PREFIX,
    collector_cursor_key,
    exec_streams,
    ops_streams,
    parse_md_stream,
)
from hftops.model.tables import ALL_TABLES, DEAD_LETTERS

STATS_KEY = "ops:stats"
QueryFn = Callable[[str], Mapping[str, Any]]
_HTTP_TIMEOUT_S = 1.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redis(config: Config) -> redis.Redis:
    return redis.Redis.from_url(config.redis_url, socket_connect_timeout=1.0, socket_timeout=2.0)


def stream_keys(client: redis.Redis) -> list[str]:
    """The market-data streams and the DLQ stream (which may not exist yet: `streams_info` skips it)."""
    keys = {_text(k) for k in client.scan_iter(match=f"{MD_PREFIX}:*", _type="STREAM", count=1000)}
    keys.add(DLQ_STREAM)
    return sorted(keys)


def _id_ms(stream_id: Any) -> int:
    return int(_text(stream_id).split("-", 1)[0])


def _stream_entry(info: dict[Any, Any], groups: list[dict[Any, Any]], now_ms: int) -> dict[str, Any]:
    last_id = _text(info.get("last-generated-id", "0-0"))
    out: dict[str, Any] = {
        "length": int(info["length"]),
        "last_id": last_id,
        "last_age_s": round(max(0, now_ms - _id_ms(last_id)) / 1000, 3) if last_id != "0-0" else None,
        "groups": {},
    }
    for group in groups:
        lag = group.get("lag")
        delivered = _text(group.get("last-delivered-id", "0-0"))
        if lag is None:  # unknown after deletions: fall back to "has it read up to the last entry"
            lag = 0 if delivered == last_id else None
        out["groups"][_text(group["name"])] = {
            "pending": int(group.get("pending") or 0),
            "lag": None if lag is None else int(lag),
            "consumers": int(group.get("consumers") or 0),
            "last_delivered_id": delivered,
        }
    return out


def streams_info(client: redis.Redis, keys: list[str], now_ms: int) -> dict[str, Any]:
    """XINFO STREAM and XINFO GROUPS of every key in one round trip (a stop reads them under full load,
    between its steps); a key that does not exist (any more) is left out."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xinfo_stream(key)
        pipe.xinfo_groups(key)
    replies = pipe.execute(raise_on_error=False)
    out: dict[str, Any] = {}
    for key, info, groups in zip(keys, replies[0::2], replies[1::2], strict=True):
        if isinstance(info, redis.ResponseError) or isinstance(groups, redis.ResponseError):
            continue
        out[key] = _stream_entry(info, groups, now_ms)
    return out


def redis_flow(config: Config, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Streams, per-symbol last message age, collector cursor, DLQ stream and `ops:stats`."""
    try:
        client = _redis(config)
        try:
            now_ms = int(now() * 1000)
            streams = streams_info(client, stream_keys(client), now_ms)
            cursor = {_text(k): int(v) for k, v in client.hgetall(collector_cursor_key(config.venue.name)).items()}
            stats = {}
            for field, raw in client.hgetall(STATS_KEY).items():
                try:
                    stats[_text(field)] = json.loads(raw)
                except ValueError:
                    stats[_text(field)] = {"unparsed": _text(raw)[:200]}
        finally:
            client.close()
    except redis.RedisError as exc:
        return {
            "reachable": False,
            "error": f"redis not reachable at {config.redis_url}: {exc}",
            "streams": {},
            "symbols": {},
            "cursor": {},
            "stats": {},
        }
    symbols: dict[str, dict[str, Any]] = {}
    for key, info in streams.items():
        try:
            venue, kind, symbol = parse_md_stream(key)
        except ValueError:
            continue
        if venue != config.venue.name:
            continue
        entry = symbols.setdefault(symbol, {"last_message_age_s": None})
        entry[f"{kind}_last_age_s"] = info["last_age_s"]
        ages = [a for a in (entry.get("trade_last_age_s"), entry.get("bbo_last_age_s")) if a is not None]
        entry["last_message_age_s"] = min(ages) if ages else None
    return {
        "reachable": True,
        "error": None,
        "streams": streams,
        "symbols": symbols,
        "cursor": cursor,
        "stats": stats,
    }


def group_totals(streams: dict[str, Any], group: str) -> dict[str, int]:
    length = sum(info["length"] for info in streams.values())
    pending = sum(info["groups"].get(group, {}).get("pending", 0) for info in streams.values())
    lag = sum((info["groups"].get(group, {}).get("lag") or 0) for info in streams.values())
    return {"stream_entries": length, "pending": pending, "lag": lag}


_local_http: httpx.Client | None = None
_local_http_lock = threading.Lock()


def local_http() -> httpx.Client:
    """One HTTP client for the supervisor's calls to the recorder and the venue. A new httpx client loads
    the CA bundle (15-30 ms, more under load), and a stop makes a dozen such calls; no keep-alive, so a
    restarted component never meets a stale pooled connection."""
    global _local_http
    with _local_http_lock:
        if _local_http is None:
            _local_http = httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
        return _local_http


def _recorder_get(config: Config, path: str) -> dict[str, Any] | None:
    try:
        response = local_http().get(f"{config.recorder_query_url}{path}", timeout=_HTTP_TIMEOUT_S)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
    except (httpx.HTTPError, ValueError):
        pass
    return None


def wal_info(config: Config) -> dict[str, Any]:
    """From the recorder (`GET /wal`) when it runs; otherwise the segment files on disk."""
    body = _recorder_get(config, "/wal")
    if body is not None:
        return {
            "source": "recorder",
            "segments": body.get("segments"),
            "bytes": body.get("bytes"),
            "records": body.get("records"),
        }
    wal_dir = DataPaths(config.data_dir).wal
    files = [p for p in wal_dir.iterdir() if p.is_file()] if wal_dir.is_dir() else []
    return {
        "source": "disk",
        "segments": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "records": None,
    }


def recorder_query(config: Config, sql: str) -> dict[str, Any]:
    """The recorder's read-only `POST /query` only: never opens the embedded store in this process."""
    try:
        response = local_http().post(f"{config.recorder_query_url}/query", json={"sql": sql}, timeout=5.0)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"recorder not reachable at {config.recorder_query_url} ({exc})") from exc
    if response.status_code != 200:
        raise RuntimeError(f"recorder /query answered HTTP {response.status_code}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


def query_rows(config: Config, sql: str, *, direct: bool) -> list[list[Any]]:
    """`direct`: through `hftops.store.reader` (which opens an idle embedded store for one query when no
    recorder answers). The supervisor passes False except while the recorder is known to be stopped, so
    it never holds chDB's lock while a recorder may be starting."""
    result: dict[str, Any] | None = None
    if direct:
        try:
            from hftops.store.reader import query
        except ImportError:
            pass
        else:
            result = query(config, sql)
    if result is None:
        result = recorder_query(config, sql)
    return [list(row) for row in result["rows"]]


def warm_store_reader(config: Config) -> threading.Thread | None:
    """Load the embedded store's library in the background now, so the stop's final figures (read
    directly once the recorder has exited) do not pay its ~0.2 s import inside the stop budget."""
    if config.clickhouse.url is not None:
        return None
    thread = threading.Thread(target=importlib.import_module, args=("chdb.session",), name="warm-chdb", daemon=True)
    thread.start()
    return thread


@contextmanager
def store_session(config: Config) -> Iterator[QueryFn]:
    """One read-only session on the store for several queries (a stop's final figures, once the
    recorder has exited): opening chDB once instead of once per query keeps `trading stop` short."""
    from hftops.store.chdb_store import ChdbStore
    from hftops.store.factory import build_store

    store = build_store(config, read_only=True)
    if isinstance(store, ChdbStore) and not (store.path / "metadata").is_dir():
        raise RuntimeError(f"no database at {store.path} yet; start the recorder once to create it")
    store.open()
    try:
        yield lambda sql: store.query(sql).as_dict()
    finally:
        store.close()


def table_rows(config: Config, *, direct: bool = True, query: QueryFn | None = None) -> dict[str, Any]:
    """Rows per table in one query (MergeTree keeps the count in its part metadata, as count() does)."""
    db = config.clickhouse.database
    names = ", ".join(f"'{t}'" for t in ALL_TABLES)
    sql = f"SELECT name, total_rows FROM system.tables WHERE database = '{db}' AND name IN ({names})"
    try:
        rows = [list(r) for r in query(sql)["rows"]] if query else query_rows(config, sql, direct=direct)
    except Exception as exc:  # the reader's own errors name the recorder/store and the fix
        return {"error": f"database not readable: {exc}"}
    found = {str(name): int(total or 0) for name, total in rows}
    return {table: {"rows": found.get(table, 0)} for table in ALL_TABLES}


def ledger(config: Config, *, direct: bool = True, query: QueryFn | None = None) -> dict[str, Any]:
    """`trading verify` logic (hftops.pipeline.ledger) when installed; {"available": False, ...} otherwise."""
    try:
        from hftops.pipeline.ledger import compute_ledger
        from hftops.pipeline.ledger_sources import LiveSources
    except ImportError as exc:
        return {"available": False, "reason": f"ledger not installed ({exc})"}
    try:
        if query is None and direct:
            result = compute_ledger(config)
        else:
            chosen = query or (lambda sql: recorder_query(config, sql))
            with LiveSources(config, query=chosen, http=local_http()) as sources:
                result = compute_ledger(config, sources)
    except Exception as exc:  # LedgerUnavailable and the sources' errors say what is down
        return {"available": False, "reason": str(exc)}
    data: dict[str, Any] = result.to_dict()
    data["available"] = True
    data["summary"] = result.summary_line()
    return data


def collect_final(config: Config) -> dict[str, Any]:
    """Figures after the recorder exited: counts and ledger over one direct store session."""
    try:
        with store_session(config) as query:
            return collect(config, with_ledger=True, query=query)
    except Exception as exc:  # a store that cannot be opened: the counts say why, the ledger is unknown
        out = collect(config, tables=False)
        out["tables"] = {"error": f"database not readable: {exc}"}
        out["ledger"] = {"available": False, "reason": f"stored: {exc}"}
        return out


def collect(
    config: Config,
    *,
    tables: bool = True,
    with_ledger: bool = False,
    direct: bool = True,
    query: QueryFn | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    flow = redis_flow(config, now)
    group = config.recorder.group
    dlq_stream = flow["streams"].get(DLQ_STREAM, {}).get("length", 0)
    out: dict[str, Any] = {
        "redis": {"reachable": flow["reachable"], "error": flow["error"], "url": config.redis_url},
        "streams": flow["streams"],
        "totals": group_totals(flow["streams"], group) if flow["reachable"] else None,
        "symbols": flow["symbols"],
        "cursor": flow["cursor"],
        "stats": flow["stats"],
        "wal": wal_info(config),
    }
    out["tables"] = table_rows(config, direct=direct, query=query) if tables else {}
    table_dlq = out["tables"].get(DEAD_LETTERS, {}).get("rows") if isinstance(out["tables"], dict) else None
    out["dlq"] = {"stream": dlq_stream if flow["reachable"] else None, "table": table_dlq}
    if with_ledger:
        out["ledger"] = ledger(config, direct=direct, query=query)
    return out


def event_streams_info(config: Config, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """The engine's and the safety layer's event streams (exec:{venue}:*, ops:events:*) that exist."""
    client = _redis(config)
    try:
        now_ms = int(now() * 1000)
        keys = [*exec_streams(config.venue.name), *ops_streams()]
        return streams_info(client, keys, now_ms)
    finally:
        client.close()


def drain_state(config: Config) -> tuple[bool, dict[str, Any]]:
    """Drained = every stream (market data, dead letters, engine and safety-layer events) has the recorder
    group with nothing pending and nothing unread."""
    group = config.recorder.group
    flow = redis_flow(config)
    if not flow["reachable"]:
        return False, {"error": flow["error"]}
    try:
        events = event_streams_info(config)
    except redis.RedisError as exc:
        return False, {"error": f"redis not reachable at {config.redis_url}: {exc}"}
    remaining = {}
    for key, info in {**flow["streams"], **events}.items():
        g = info["groups"].get(group)
        if g is None:
            if info["length"] > 0:
                remaining[key] = {"pending": 0, "lag": info["length"], "note": f"no group {group!r}"}
            continue
        if g["pending"] or g["lag"] != 0:
            remaining[key] = {"pending": g["pending"], "lag": g["lag"]}
    return not remaining, remaining
