"""The one typed configuration schema of the platform (unknown keys are rejected)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hftops.config.autonomy import AutonomyConfig
from hftops.config.flatten_margin import FlattenConfig, MarginConfig
from hftops.config.locate import DEFAULT_DATA_DIR
from hftops.config.tracks import TrackConfig, check_track_names, default_tracks, symbols_as_text


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueConfig(Section):
    """Where market data comes from. `kind: simulated` runs the bundled Binance-compatible simulator."""

    name: str = Field("sim", pattern=r"^[a-z][a-z0-9_]{0,31}$", description="venue id in stream keys and tables")
    kind: Literal["simulated", "binance_futures", "binance_spot"] = Field(
        "simulated", description="simulated: the bundled simulator; binance_futures/binance_spot: Binance"
    )
    symbols: tuple[str, ...] = Field(
        # crypto perpetuals beside Taiwan stocks and TAIFEX futures (see `tracks`): an always-open market
        # next to scheduled ones
        ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "2330", "2317", "TXFL6", "MXFL6"),
        description="symbols to capture, upper case (env HFT_SYMBOLS=BTCUSDT,ETHUSDT)",
    )
    trade_stream: Literal["aggTrade", "trade"] = Field(
        "aggTrade", description="aggTrade (futures aggregate trades) or trade (Spot @trade)"
    )
    bbo: bool = Field(True, description="also capture bookTicker (best bid/offer)")
    ws_url: str | None = Field(None, description="WebSocket base, e.g. wss://fstream.binance.com; None: the simulator")
    rest_url: str | None = Field(None, description="REST base, e.g. https://fapi.binance.com; None: the simulator")

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols_as_text(cls, value: Any) -> Any:
        return symbols_as_text(value)

    @field_validator("symbols")
    @classmethod
    def _symbols_upper_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one symbol is needed")
        for symbol in value:
            if not symbol.isalnum() or symbol != symbol.upper():
                raise ValueError(f"symbol {symbol!r} must be upper-case letters and digits, e.g. BTCUSDT")
        if len(set(value)) != len(value):
            raise ValueError("symbols must be unique")
        return value


class SimulatorConfig(Section):
    """The simulated venue: deterministic under `seed`, `rate` messages per second in total."""

    seed: int = Field(42, description="random seed: the same seed publishes the same market")
    rate: float = Field(2000.0, gt=0, le=1_000_000, description="total messages/s, trades + bookTicker")
    bbo_share: float = Field(0.5, ge=0, le=0.95, description="share of messages that are bookTicker")
    burst_factor: float = Field(3.0, ge=1, le=50, description="peak/mean rate multiplier during bursts")
    burst_every_s: float = Field(20.0, gt=0, description="seconds between bursts")
    burst_length_s: float = Field(1.0, ge=0, description="how long a burst lasts")
    host: str = Field("127.0.0.1", description="address the simulator binds (loopback by default)")
    ws_port: int = Field(9101, ge=1, le=65535, description="simulator WebSocket port")
    rest_port: int = Field(9102, ge=1, le=65535, description="simulator REST and admin port")
    max_frame_bytes: int = Field(65536, ge=1024, description="largest WebSocket frame the simulator sends")
    send_buffer_max_bytes: int = Field(
        16 * 1024**2, ge=65536, description="unsent bytes at which a slow WebSocket client is disconnected"
    )
    wallet_usdt: float = Field(100_000.0, ge=0, description="simulated account's starting USDT wallet balance")
    default_leverage: int = Field(10, ge=1, le=125, description="simulated account's leverage per symbol until set")
    maker_fee_rate: float = Field(0.0002, ge=0, le=0.01, description="simulated maker fee, fraction of notional")
    taker_fee_rate: float = Field(0.0005, ge=0, le=0.01, description="simulated taker fee, fraction of notional")
    depth_levels: int = Field(10, ge=1, le=1000, description="price levels modelled behind the simulated touch")


class RedisConfig(Section):
    url: str | None = Field(None, description="redis://host:port/db; None: start the bundled valkey-server")
    host: str = Field("127.0.0.1", description="address of the bundled valkey-server")
    port: int = Field(6390, ge=1, le=65535, description="port of the bundled valkey-server")
    appendfsync: Literal["always", "everysec", "no"] = Field(
        "everysec", description="AOF fsync policy of the bundled valkey-server"
    )
    stream_cap_entries: int = Field(
        200_000, ge=1000, description="stream length at which producers apply back-pressure (never trimmed)"
    )


class ClickHouseConfig(Section):
    url: str | None = Field(None, description="http://user:pass@host:8123; None: embedded chDB")
    database: str = Field("hftops", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="database holding every table")


class CollectorConfig(Section):
    flush_ms: float = Field(2.0, gt=0, le=1000, description="flush a symbol's batch after this long")
    flush_max: int = Field(256, ge=1, le=100_000, description="flush a symbol's batch at this many messages")
    buffer_max: int = Field(200_000, ge=1000, description="messages held while Redis is unavailable")
    read_slice_bytes: int = Field(
        16384,
        ge=1024,
        description="WebSocket bytes handled per turn of the event loop before Redis answers and timers get theirs "
        "(a backlog is worked off in slices instead of one long run)",
    )
    reconnect_initial_s: float = Field(1.0, gt=0, description="first reconnect delay (doubles with jitter)")
    reconnect_max_s: float = Field(30.0, gt=0, description="reconnect delay cap")
    reconnect_stable_s: float = Field(30.0, gt=0, description="connected this long resets the backoff")
    backfill_limit: int = Field(
        1000, ge=1, le=1000, description="trades per REST backfill request (Binance allows at most 1000)"
    )
    rest_timeout_s: float = Field(5.0, gt=0, description="timeout of one REST backfill request")
    max_frame_bytes: int = Field(
        65536, ge=1024, description="frames above this are dead-lettered as oversized (Binance frames are < 2 KB)"
    )


class RecorderConfig(Section):
    group: str = Field("recorder", description="consumer group name on every stream")
    consumer: str = Field("recorder-0", description="consumer name within the group")
    batch_max_rows: int = Field(20_000, ge=1, description="insert a batch at this many rows")
    # Each lane (book tickers; everything else) closes a batch this long after its first entry, the two in
    # turn at least half of it apart. Each insert makes a part that chDB merges in the background: at 50 ms
    # (40 parts/s at 20,000 msg/s) the merges took 0.3 core and event -> DB p99 went to 370-510 ms; at 100 ms
    # the recorder used 0.83 core against 0.55; at 150 ms the p99 is <= 250-275 ms (<= 350-400 while the host
    # ran slow) with the recorder at 0.6-0.7 core (bench/pipeline_e2e.py --realtime collector=10,redis=10).
    batch_max_ms: float = Field(150.0, gt=0, description="insert a batch after this long")
    read_count: int = Field(512, ge=1, description="stream entries per XREADGROUP call")
    max_deliveries: int = Field(5, ge=1, description="deliveries before an entry is dead-lettered")
    claim_idle_ms: int = Field(60_000, ge=1000, description="pending this long on another consumer: claim it")
    trim_interval_s: float = Field(1.0, gt=0, description="trim acknowledged stream entries this often")
    query_host: str = Field("127.0.0.1", description="address of the read-only query endpoint")
    query_port: int = Field(
        9103, ge=1, le=65535, description="port of the read-only query endpoint (POST /query, GET /wal)"
    )
    wal_segment_bytes: int = Field(16 * 1024 * 1024, ge=4096, description="start a new WAL segment at this size")
    wal_max_bytes: int = Field(2 * 1024**3, ge=65536, description="disk guard: stop acking above this WAL size")
    disk_free_min_bytes: int = Field(512 * 1024**2, ge=0, description="disk guard: stop acking below this free space")
    disk_guard_hysteresis: float = Field(
        0.1, ge=0, le=0.9, description="disk guard resumes this fraction below its limits"
    )
    db_retry_s: float = Field(1.0, gt=0, description="probe the database this often while writing to the WAL")
    wal_archive_max_bytes: int = Field(
        1024**3, ge=0, description="replayed WAL segments kept under wal/archive (oldest pruned; already stored)"
    )


class ApiConfig(Section):
    host: str = Field("127.0.0.1", description="address the control API binds (loopback by default)")
    port: int = Field(9100, ge=1, le=65535, description="control API, dashboard and /metrics port")
    token: str | None = Field(None, description="bearer token for mutating calls; prefer HFT_API_TOKEN")


# On a shared box the collector's hop and the engine's reaction wait for a CPU whenever the throughput side
# is busy. The recorder batches (150 ms) and the simulated venue only stands in for an exchange: both yield.
# bench/pipeline_e2e.py, same host: every component at 0, 20,000 msg/s: hop p99 <= 30 ms, e2e p99 416-718 ms.
# Recorder 5, venue 10: hop p99 <= 10 ms, e2e p99 228 ms; 50,000 msg/s: e2e p99 570 ms. Recorder at 10 kept the
# hop as low but fell 7-10 s behind at 50,000 msg/s (no loss: Redis held it).
# With the collector on the realtime class (realtime_priority) it preempts everything fair at once, and a recorder
# at 5 then only lost the CPU to the other fair processes: 20,000 msg/s, collector and Valkey on FIFO, recorder
# at 5: e2e p99 416 ms, 50,000 msg/s carried 49,830/s; recorder at 0: 239 ms and 50,096/s, hop p99 <= 5 ms.
DEFAULT_NICE: dict[str, int] = {"recorder": 5, "venue": 10}
DEFAULT_NICE_BEHIND_REALTIME: dict[str, int] = {"recorder": 0, "venue": 10}


class ComponentConfig(Section):
    enabled: bool = Field(True, description="start this component")
    cpu_affinity: tuple[int, ...] = Field((), description="CPU cores to pin the process to; empty: any")
    nice: int | None = Field(
        None,
        ge=-20,
        le=19,
        description="scheduling niceness, applied to the process and its session's autogroup (higher yields the "
        "CPU to the others; below 0 needs CAP_SYS_NICE); 0 keeps the niceness the supervisor runs at; unset: 5 for "
        "the batching recorder (0 when the collector has a realtime_priority, which already puts it first), 10 for "
        "the simulated venue, 0 for the rest",
    )
    realtime_priority: int | None = Field(
        None,
        ge=1,
        le=99,
        description="run every thread on SCHED_FIFO at this priority: woken, it preempts the fair class at once "
        "(the collector's hop on a busy box; README: Sharing the CPUs); needs CAP_SYS_NICE or RLIMIT_RTPRIO; a "
        "process that never sleeps then owns a CPU, bounded only by kernel.sched_rt_runtime_us; unset: normal",
    )
    stop_timeout_s: float = Field(10.0, gt=0, description="SIGTERM to SIGKILL grace period")


class SupervisorConfig(Section):
    heartbeat_timeout_s: float = Field(15.0, gt=0, description="restart a component silent this long")
    ready_timeout_s: float = Field(60.0, gt=0, description="a component must report ready within this long")
    backoff_initial_s: float = Field(1.0, gt=0, description="first restart delay (doubles)")
    backoff_max_s: float = Field(60.0, gt=0, description="restart delay cap")
    start_limit_burst: int = Field(5, ge=1, description="at most this many starts per start_limit_interval_s")
    start_limit_interval_s: float = Field(300.0, gt=0, description="window of start_limit_burst")
    components: dict[str, ComponentConfig] = Field(
        default_factory=dict, description="per-component settings, keyed by component name"
    )

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: dict[str, ComponentConfig]) -> dict[str, ComponentConfig]:
        from hftops.model.components import COMPONENT_NAMES

        unknown = sorted(set(value) - set(COMPONENT_NAMES))
        if unknown:
            raise ValueError(f"unknown component(s) {unknown}; known: {list(COMPONENT_NAMES)}")
        return value


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="minimum level written to the logs")
    max_bytes: int = Field(20 * 1024**2, ge=65536, description="rotate a component log at this size")
    backups: int = Field(5, ge=1, le=100, description="rotated log files kept per component")


class LimitsConfig(Section):
    """Order limits of one strategy, applied per symbol by the engine's gate chain."""

    max_position_qty: Decimal = Field(Decimal("1"), gt=0, description="max |position| per symbol, base units")
    max_notional: Decimal = Field(
        Decimal("100000"), gt=0, description="max |position| x price per symbol, quote currency"
    )
    max_order_qty: Decimal = Field(Decimal("0.5"), gt=0, description="larger orders are clamped to this")
    price_band_bps: Decimal = Field(Decimal("100"), gt=0, description="LIMIT price at most this far from the mid")
    max_orders_per_s: float = Field(20.0, gt=0, description="new/amend orders per second per strategy")
    order_burst: int = Field(40, ge=1, description="orders allowed in a burst above max_orders_per_s")


class StrategyConfig(Section):
    """One strategy instance: `path` is `package.module:Class` or `package.module.Class`."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$", description="strategy id in orders, positions, metrics")
    path: str = Field(description="dotted path of the Strategy subclass")
    symbols: tuple[str, ...] = Field(description="symbols it trades (must be in venue.symbols)")
    params: dict[str, Any] = Field(default_factory=dict, description="passed to the strategy unchanged")
    enabled: bool = Field(True, description="load this strategy")
    limits: LimitsConfig | None = Field(None, description="overrides engine.limits for this strategy")


def _default_strategies() -> tuple[StrategyConfig, ...]:
    # Tuned to the simulator's default market (BTC moves ~2 bps/s): the maker's quotes sit 3 bps out and are
    # left in place until the mid has moved 6 bps, so the market walks into them (a fill every few seconds);
    # a 2 bps requote would chase the mid and never fill. Each strategy's inventory cap is also its gate limit,
    # so resting orders (a quote whose cancel is on its way included) can never take it past the cap.
    return (
        StrategyConfig(
            id="mm1",
            path="hftops.engine.strategies.market_maker:QuotingMarketMaker",
            symbols=("BTCUSDT",),
            params={
                "qty": "0.01",
                "half_spread_bps": "3",
                "requote_bps": "6",
                "skew_bps_per_unit": "0.5",
                "max_inventory": "0.05",
                "tick": "0.1",
            },
            limits=LimitsConfig(max_position_qty=Decimal("0.05")),
        ),
        StrategyConfig(
            id="mom1",
            path="hftops.engine.strategies.momentum:MomentumTaker",
            symbols=("ETHUSDT",),
            params={"fast": 50, "slow": 200, "qty": "0.1", "max_position": "0.3"},
            limits=LimitsConfig(max_position_qty=Decimal("0.3")),
        ),
    )


class EngineConfig(Section):
    """The trading engine: which strategies run and the limits of the gate chain."""

    strategies: tuple[StrategyConfig, ...] = Field(
        default_factory=_default_strategies, description="strategies to run (ids unique)"
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="default limits of every strategy")
    initial_equity: Decimal = Field(Decimal("100000"), ge=0, description="equity before any PnL, quote currency")
    checkpoint_interval_s: float = Field(5.0, gt=0, description="write the position checkpoint this often")
    recon_interval_s: float = Field(5.0, gt=0, description="compare positions with the broker this often")
    recon_drift_checks: int = Field(3, ge=1, description="drift must persist this many checks to be reported")
    cancel_on_stop: bool = Field(True, description="cancel resting orders when the engine stops")

    @field_validator("strategies")
    @classmethod
    def _unique_ids(cls, value: tuple[StrategyConfig, ...]) -> tuple[StrategyConfig, ...]:
        ids = [s.id for s in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"strategy ids must be unique, got {ids}")
        if "MANUAL" in ids:
            raise ValueError("strategy id MANUAL is reserved for positions adopted from the broker")
        return value


class BrokerConfig(Section):
    """The broker adapter (Binance USD-M futures REST + user-data stream). URLs default to the venue's."""

    rest_url: str | None = Field(None, description="REST base, e.g. https://demo-fapi.binance.com; None: venue's")
    ws_url: str | None = Field(None, description="user-data WebSocket base; None: the venue's ws base")
    api_key_env: str = Field("HFT_BROKER_API_KEY", description="name of the env var holding the API key")
    api_secret_env: str = Field("HFT_BROKER_API_SECRET", description="name of the env var holding the secret")
    recv_window_ms: int = Field(5000, ge=1, le=60000, description="Binance recvWindow of signed requests")
    timeout_s: float = Field(5.0, gt=0, description="timeout of one REST request")
    max_attempts: int = Field(3, ge=1, le=10, description="tries of one request on retryable errors")
    listen_key_keepalive_s: float = Field(1800.0, gt=0, description="PUT /fapi/v1/listenKey this often")
    reconnect_initial_s: float = Field(0.5, gt=0, description="first user-stream reconnect delay (doubles)")
    reconnect_max_s: float = Field(30.0, gt=0, description="user-stream reconnect delay cap")


class TelegramConfig(Section):
    """Telegram Bot API channel. The token and chat id come from the environment (or a token file outside
    the repository), never from this file: it is committed, secrets are not."""

    enabled: bool = Field(False, description="send notifications to Telegram (env HFT_TELEGRAM_ENABLED)")
    base_url: str = Field("https://api.telegram.org", description="Bot API base URL (a stand-in server in tests)")
    token_env: str = Field("HFT_TELEGRAM_BOT_TOKEN", description="name of the env var holding the bot token")
    token_file: Path | None = Field(None, description="file holding the bot token (outside the repository, mode 600)")
    chat_id_env: str = Field("HFT_TELEGRAM_CHAT_ID", description="name of the env var holding the chat id")
    timeout_s: float = Field(10.0, gt=0, le=120, description="timeout of one sendMessage request")
    min_interval_s: float = Field(10.0, ge=0, description="at most one non-critical message per this many seconds")


class WebhookConfig(Section):
    """Generic JSON webhook channel: each notification is POSTed as a JSON object."""

    enabled: bool = Field(False, description="POST notifications to a webhook (env HFT_WEBHOOK_ENABLED)")
    url_env: str = Field("HFT_NOTIFY_WEBHOOK_URL", description="name of the env var holding the webhook URL")
    timeout_s: float = Field(10.0, gt=0, le=120, description="timeout of one POST")
    min_interval_s: float = Field(10.0, ge=0, description="at most one non-critical message per this many seconds")


class NotifyConfig(Section):
    """Operator notifications: channels behind one dispatcher; critical messages bypass the rate limit."""

    telegram: TelegramConfig = TelegramConfig()
    webhook: WebhookConfig = WebhookConfig()
    heartbeat_interval_s: float = Field(3600.0, ge=0, description="send an 'alive' message this often; 0: never")
    max_attempts: int = Field(5, ge=1, le=20, description="tries of one message on timeouts, 5xx, connection errors")
    max_rate_limit_waits: int = Field(10, ge=0, le=100, description="HTTP 429 answers waited out before giving up")
    critical_queue_max: int = Field(1000, ge=10, description="critical messages queued per channel (more: dropped)")
    digest_lines: int = Field(20, ge=1, le=200, description="kinds of held-back messages listed in a digest")
    max_parts: int = Field(10, ge=1, le=50, description="a long message is split into at most this many parts")
    stop_flush_s: float = Field(2.0, ge=0, le=30, description="at stop, wait this long for queued messages")


class Config(Section):
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="every piece of state lives under it (HFT_DATA_DIR)")
    venue: VenueConfig = VenueConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    redis: RedisConfig = RedisConfig()
    clickhouse: ClickHouseConfig = ClickHouseConfig()
    collector: CollectorConfig = CollectorConfig()
    recorder: RecorderConfig = RecorderConfig()
    api: ApiConfig = ApiConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    log: LogConfig = LogConfig()
    engine: EngineConfig = EngineConfig()
    broker: BrokerConfig = BrokerConfig()
    notify: NotifyConfig = NotifyConfig()
    autonomy: AutonomyConfig = AutonomyConfig()
    flatten: FlattenConfig = FlattenConfig()
    margin: MarginConfig = MarginConfig()
    tracks: tuple[TrackConfig, ...] = Field(
        default_factory=default_tracks,
        description="trading tracks: calendar, time zone, symbols and daily phase schedule (see README)",
    )

    @field_validator("tracks")
    @classmethod
    def _unique_track_names(cls, value: tuple[TrackConfig, ...]) -> tuple[TrackConfig, ...]:
        return check_track_names(value)

    @model_validator(mode="after")
    def _simulated_venue_has_no_urls(self) -> Config:
        if self.venue.kind != "simulated" and not (self.venue.ws_url and self.venue.rest_url):
            raise ValueError("venue.ws_url and venue.rest_url are required when venue.kind is not 'simulated'")
        return self

    @model_validator(mode="after")
    def _strategy_symbols_are_captured(self) -> Config:
        if "strategies" not in self.engine.model_fields_set:
            return self  # the demo defaults trade only the symbols that are captured (engine.loader)
        for strategy in self.engine.strategies:
            missing = sorted(set(strategy.symbols) - set(self.venue.symbols))
            if strategy.enabled and missing:
                raise ValueError(
                    f"engine.strategies[{strategy.id}].symbols {missing} are not in venue.symbols "
                    f"{list(self.venue.symbols)}; add them there or remove them from the strategy"
                )
        return self

    def component(self, name: str) -> ComponentConfig:
        """The component's settings with its defaults filled in (nice: see DEFAULT_NICE)."""
        settings = self.supervisor.components.get(name, ComponentConfig())
        if settings.nice is None:
            collector = self.supervisor.components.get("collector")
            behind_realtime = collector is not None and collector.realtime_priority is not None
            defaults = DEFAULT_NICE_BEHIND_REALTIME if behind_realtime else DEFAULT_NICE
            settings = settings.model_copy(update={"nice": defaults.get(name, 0)})
        return settings

    @property
    def ws_base_url(self) -> str:
        if self.venue.ws_url:
            return self.venue.ws_url.rstrip("/")
        return f"ws://{self.simulator.host}:{self.simulator.ws_port}"

    @property
    def rest_base_url(self) -> str:
        if self.venue.rest_url:
            return self.venue.rest_url.rstrip("/")
        return f"http://{self.simulator.host}:{self.simulator.rest_port}"

    @property
    def broker_rest_url(self) -> str:
        return self.broker.rest_url.rstrip("/") if self.broker.rest_url else self.rest_base_url

    @property
    def broker_ws_url(self) -> str:
        return self.broker.ws_url.rstrip("/") if self.broker.ws_url else self.ws_base_url

    @property
    def redis_url(self) -> str:
        return self.redis.url or f"redis://{self.redis.host}:{self.redis.port}/0"

    @property
    def recorder_query_url(self) -> str:
        return f"http://{self.recorder.query_host}:{self.recorder.query_port}"
