"""Prometheus families of the notifier, from the `notify` part of the engine's ops:stats document:
`hftops_notify_messages_total{channel,outcome}`, retries, 429s, queue depths and the heartbeat count."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

OUTCOMES = ("sent", "failed", "rate_limited", "digested", "dropped")


def _channels(stats: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    names = [n for n in str(stats.get("channels") or "").split(",") if n]
    return [(n, stats[n]) for n in names if isinstance(stats.get(n), Mapping)]


def notify_metric_families(stats: Mapping[str, Any]) -> Iterator[Metric]:
    channels = _channels(stats)
    messages = CounterMetricFamily(
        "hftops_notify_messages", "notifications by channel and outcome", labels=["channel", "outcome"]
    )
    retries = CounterMetricFamily(
        "hftops_notify_retries", "send attempts repeated (429 or transient)", labels=["channel"]
    )
    throttled = CounterMetricFamily("hftops_notify_throttled", "HTTP 429 answers received", labels=["channel"])
    critical = GaugeMetricFamily("hftops_notify_critical_queue", "critical messages waiting", labels=["channel"])
    digest = GaugeMetricFamily("hftops_notify_digest_pending", "messages held for the next digest", labels=["channel"])
    backoff = GaugeMetricFamily("hftops_notify_backoff_seconds", "left of a 429 backoff", labels=["channel"])
    for name, figures in channels:
        for outcome in OUTCOMES:
            messages.add_metric([name, outcome], float(figures.get(f"{outcome}_total") or 0))
        retries.add_metric([name], float(figures.get("retried_total") or 0))
        throttled.add_metric([name], float(figures.get("throttled_total") or 0))
        critical.add_metric([name], float(figures.get("critical_queue") or 0))
        digest.add_metric([name], float(figures.get("digest_pending") or 0))
        backoff.add_metric([name], float(figures.get("backoff_s") or 0))
    heartbeats = CounterMetricFamily("hftops_notify_heartbeats", "heartbeat messages queued")
    heartbeats.add_metric([], float(stats.get("heartbeats_total") or 0))
    yield from (messages, retries, throttled, critical, digest, backoff, heartbeats)
