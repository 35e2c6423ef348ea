from __future__ import annotations

from hftops.api.metrics import exposition


def test_notify_figures_become_prometheus_families() -> None:
    notify = {
        "channels": "telegram,webhook",
        "heartbeats_total": 4,
        "telegram": {
            "sent_total": 3,
            "failed_total": 1,
            "rate_limited_total": 7,
            "retried_total": 2,
            "throttled_total": 2,
            "critical_queue": 1,
            "backoff_s": 12.5,
        },
        "webhook": {"sent_total": 9},
    }
    text = exposition({"components": {}, "stats": {"engine": {"notify": notify}}}, None).decode()
    assert 'hftops_notify_messages_total{channel="telegram",outcome="rate_limited"} 7.0' in text
    assert 'hftops_notify_messages_total{channel="webhook",outcome="sent"} 9.0' in text
    assert 'hftops_notify_throttled_total{channel="telegram"} 2.0' in text
    assert 'hftops_notify_backoff_seconds{channel="telegram"} 12.5' in text
    assert "hftops_notify_heartbeats_total 4.0" in text


def test_no_engine_stats_no_notify_families() -> None:
    assert "hftops_notify_messages" not in exposition({"components": {}}, None).decode()
