"""Prometheus exposition for `GET /metrics`: supervisor figures, the components' `ops:stats`, and the
recorder's own /metrics appended when it answers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hftops.control.session_view import session_metric_families
from hftops.notify.metrics import notify_metric_families

_STATES = ("running", "starting", "stopping", "stopped", "backoff", "failed", "emergency_stopped", "disabled")


def _numbers(prefix: str, data: Any, out: list[tuple[str, float]], depth: int = 0) -> None:
    """Flatten numeric leaves of a stats document into (dotted.key, value); bounded depth."""
    if depth > 3:
        return
    if isinstance(data, bool):
        out.append((prefix, float(data)))
    elif isinstance(data, int | float):
        if math.isfinite(data):
            out.append((prefix, float(data)))
    elif isinstance(data, dict):
        for key, value in data.items():
            _numbers(f"{prefix}.{key}" if prefix else str(key), value, out, depth + 1)


class StatusCollector(Collector):
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        comps = self.status.get("components", {})
        up = GaugeMetricFamily("hftops_component_up", "1 if the component runs", labels=["component"])
        state = GaugeMetricFamily(
            "hftops_component_state", "current state (1 for the active one)", labels=["component", "state"]
        )
        restarts = GaugeMetricFamily("hftops_component_restarts", "restarts by the watchdog", labels=["component"])
        rss = GaugeMetricFamily("hftops_component_rss_bytes", "resident memory", labels=["component"])
        uptime = GaugeMetricFamily("hftops_component_uptime_seconds", "process uptime", labels=["component"])
        heartbeat = GaugeMetricFamily(
            "hftops_component_heartbeat_age_seconds", "time since WATCHDOG=1", labels=["component"]
        )
        for name, info in comps.items():
            up.add_metric([name], 1.0 if info.get("state") == "running" else 0.0)
            for s in _STATES:
                state.add_metric([name, s], 1.0 if info.get("state") == s else 0.0)
            restarts.add_metric([name], float(info.get("restarts") or 0))
            if info.get("rss_bytes") is not None:
                rss.add_metric([name], float(info["rss_bytes"]))
            if info.get("uptime_s") is not None:
                uptime.add_metric([name], float(info["uptime_s"]))
            if info.get("heartbeat_age_s") is not None:
                heartbeat.add_metric([name], float(info["heartbeat_age_s"]))
        yield from (up, state, restarts, rss, uptime, heartbeat)

        health = GaugeMetricFamily("hftops_platform_health", "0 healthy, 1 degraded, 2 stopped")
        health.add_metric([], float(self.status.get("exit_code", 2)))
        yield health

        length = GaugeMetricFamily("hftops_stream_length", "entries in the stream", labels=["stream"])
        pending = GaugeMetricFamily("hftops_stream_pending", "delivered, not acknowledged", labels=["stream", "group"])
        lag = GaugeMetricFamily("hftops_stream_lag", "entries not yet delivered", labels=["stream", "group"])
        for key, info in (self.status.get("streams") or {}).items():
            length.add_metric([key], float(info.get("length", 0)))
            for group, g in (info.get("groups") or {}).items():
                pending.add_metric([key, group], float(g.get("pending") or 0))
                if g.get("lag") is not None:
                    lag.add_metric([key, group], float(g["lag"]))
        yield from (length, pending, lag)

        rows = GaugeMetricFamily("hftops_table_rows", "rows per table", labels=["table"])
        tables = self.status.get("tables") or {}
        if "error" not in tables:
            for table, info in tables.items():
                rows.add_metric([table], float(info.get("rows", 0)))
        yield rows

        stat = GaugeMetricFamily(
            "hftops_component_stat",
            "numeric fields of each component's ops:stats",
            labels=["component", "stat"],
        )
        for component, doc in (self.status.get("stats") or {}).items():
            flat: list[tuple[str, float]] = []
            _numbers("", doc, flat)
            for key, value in flat[:200]:  # bounded label values per component
                stat.add_metric([component, key], value)
        yield stat

        engine_stats = (self.status.get("stats") or {}).get("engine") or {}
        if isinstance(engine_stats.get("notify"), dict):
            yield from notify_metric_families(engine_stats["notify"])
        yield from session_metric_families(self.status.get("sessions") or {}, engine_stats.get("session_gate") or {})


def exposition(status: dict[str, Any], recorder_url: str | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status))
    text = generate_latest(registry)
    if recorder_url and (status.get("components", {}).get("recorder", {}).get("state") == "running"):
        try:
            response = httpx.get(f"{recorder_url}/metrics", timeout=1.0)
            if response.status_code == 200:
                text += b"# recorder /metrics\n" + response.content
        except httpx.HTTPError:
            pass
    return text
