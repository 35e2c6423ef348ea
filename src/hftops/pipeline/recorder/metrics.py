"""The recorder's counters: Prometheus (`hftops_recorder_*`, own registry, bounded labels) and /stats JSON."""

from __future__ import annotations

from collections import Counter as TallyCounter
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hftops.model.tables import DEAD_LETTERS, MARKET_BBO, MARKET_TRADES

_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.225,
    0.25,
    0.275,
    0.3,
    0.35,
    0.4,
    0.5,
    0.75,
    1,
    2,
    5,
    10,
    30,
    60,
    300,
)
_INSERT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass
class Tallies:
    """Plain counters for /stats and the ops:stats snapshot (the Prometheus objects are not JSON)."""

    entries_read: int = 0
    entries_acked: int = 0
    batches: TallyCounter[str] = field(default_factory=TallyCounter)  # outcome -> n
    rows_inserted: TallyCounter[str] = field(default_factory=TallyCounter)  # table -> n
    rows_to_wal: TallyCounter[str] = field(default_factory=TallyCounter)
    rows_replayed: TallyCounter[str] = field(default_factory=TallyCounter)
    duplicates_filtered: TallyCounter[str] = field(default_factory=TallyCounter)
    dead_letters: TallyCounter[str] = field(default_factory=TallyCounter)  # reason -> n
    rejected_dead_letters: int = 0
    header_mismatches: int = 0
    empty_entries: int = 0
    trimmed_entries: int = 0
    redis_errors: int = 0
    db_failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, TallyCounter) else v for k, v in self.__dict__.items()}


class RecorderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tallies = Tallies()
        self.rows_inserted = Counter(
            "hftops_recorder_rows_inserted", "Rows inserted into the database", ["table"], registry=r
        )
        self.rows_to_wal = Counter("hftops_recorder_rows_to_wal", "Rows written to the WAL", ["table"], registry=r)
        self.rows_replayed = Counter(
            "hftops_recorder_rows_replayed", "Rows replayed from the WAL into the database", ["table"], registry=r
        )
        self.duplicates = Counter(
            "hftops_recorder_duplicates_filtered",
            "Rows dropped because their venue id is already durable",
            ["table"],
            registry=r,
        )
        self.batches = Counter("hftops_recorder_batches", "Batches made durable", ["outcome"], registry=r)
        self.insert_seconds = Histogram(
            "hftops_recorder_insert_seconds", "Database insert latency", ["table"], buckets=_INSERT_BUCKETS, registry=r
        )
        self.event_to_ingest = Histogram(
            "hftops_recorder_event_to_ingest_seconds",
            "Exchange event time to inserted in the database (first row of each stream entry)",
            ["table"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.wal_bytes = Gauge("hftops_recorder_wal_bytes", "Bytes in WAL segments awaiting replay", registry=r)
        self.wal_segments = Gauge("hftops_recorder_wal_segments", "WAL segments awaiting replay", registry=r)
        self.wal_records = Gauge("hftops_recorder_wal_records", "WAL records awaiting replay", registry=r)
        self.wal_torn_tails = Counter("hftops_recorder_wal_torn_tails", "Torn WAL tails truncated at start", registry=r)
        self.wal_corrupt = Counter("hftops_recorder_wal_corrupt_records", "Damaged WAL records found", registry=r)
        self.dead_letters = Counter(
            "hftops_recorder_dead_letters", "Dead letters written by the recorder", ["reason"], registry=r
        )
        self.dlq_stored = Counter("hftops_recorder_dlq_stored", "ops:dlq entries stored in dead_letters", registry=r)
        self.disk_guard = Gauge(
            "hftops_recorder_disk_guard", "1 while the disk guard stops reading and acking", registry=r
        )
        self.db_healthy = Gauge("hftops_recorder_db_healthy", "1 while inserts succeed", registry=r)
        self.redis_errors = Counter("hftops_recorder_redis_errors", "Redis calls that failed", registry=r)
        self.entries_read = Counter("hftops_recorder_entries_read", "Stream entries read", registry=r)
        self.entries_acked = Counter("hftops_recorder_entries_acked", "Stream entries acknowledged", registry=r)
        self.trimmed = Counter(
            "hftops_recorder_trimmed_entries", "Stream entries trimmed after every group acked", registry=r
        )
        for table in (MARKET_TRADES, MARKET_BBO, DEAD_LETTERS):
            for metric in (self.rows_inserted, self.rows_to_wal, self.rows_replayed, self.duplicates):
                metric.labels(table)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- helpers keeping the tallies and Prometheus in step ---------------------------------------

    def inserted(self, table: str, rows: int, seconds: float | None, replayed: bool = False) -> None:
        if seconds is not None:
            self.insert_seconds.labels(table).observe(seconds)
        self.rows_inserted.labels(table).inc(rows)
        self.tallies.rows_inserted[table] += rows
        if replayed:
            self.rows_replayed.labels(table).inc(rows)
            self.tallies.rows_replayed[table] += rows
        if table == DEAD_LETTERS:
            self.dlq_stored.inc(rows)

    def walled(self, table: str, rows: int) -> None:
        self.rows_to_wal.labels(table).inc(rows)
        self.tallies.rows_to_wal[table] += rows

    def duplicate(self, table: str, rows: int) -> None:
        if rows:
            self.duplicates.labels(table).inc(rows)
            self.tallies.duplicates_filtered[table] += rows

    def dead_lettered(self, reason: str, n: int = 1) -> None:
        self.dead_letters.labels(reason).inc(n)
        self.tallies.dead_letters[reason] += n

    def batch(self, outcome: str) -> None:
        self.batches.labels(outcome).inc()
        self.tallies.batches[outcome] += 1

    def redis_error(self) -> None:
        self.redis_errors.inc()
        self.tallies.redis_errors += 1
