"""Pick the store from the configuration: `clickhouse.url` unset -> embedded chDB, set -> ClickHouse server."""

from __future__ import annotations

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.store.backend import Store
from hftops.store.chdb_store import ChdbStore
from hftops.store.faults import FaultSwitch
from hftops.store.server_store import ServerStore


def build_store(config: Config, *, read_only: bool = False) -> Store:
    """The configured store, not yet opened. `read_only` (embedded only) skips the schema and the writer."""
    paths = DataPaths(config.data_dir)
    fault = FaultSwitch.for_paths(paths)
    if config.clickhouse.url:
        return ServerStore(config.clickhouse.url, config.clickhouse.database, fault, create_schema=not read_only)
    return ChdbStore(paths.clickhouse, config.clickhouse.database, fault, read_only=read_only)
