"""Status as one JSON document (`trading status --json`, `GET /api/status`) and its health verdict."""

from __future__ import annotations

from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import dataflow, latch
from hftops.control.autonomy_view import autonomy_view
from hftops.control.engine_view import engine_section
from hftops.control.pidfiles import SUPERVISOR, PidFiles
from hftops.control.procinfo import process_facts
from hftops.control.registry import build_registry
from hftops.control.session_view import sessions_view
from hftops.model.components import API, COMPONENT_NAMES

EXIT_HEALTHY = 0
EXIT_DEGRADED = 1
EXIT_STOPPED = 2


FLOW_KEYS = ("streams", "tables", "symbols", "wal", "dlq", "redis", "totals", "stats", "cursor")


def health(status: dict[str, Any]) -> tuple[str, int]:
    """healthy (0): every enabled component running with live heartbeats; stopped (2): no pipeline
    component runs; degraded (1): anything in between."""
    comps = status["components"]
    enabled = {n: c for n, c in comps.items() if c["state"] != "disabled"}
    pipeline = {n: c for n, c in enabled.items() if n != API}
    running = {n: c for n, c in pipeline.items() if c["state"] == "running"}
    if not running:
        return "stopped", EXIT_STOPPED
    all_up = all(c["state"] == "running" for c in enabled.values())
    beating = all(c.get("watchdog") not in ("late", "lost", "unsupervised") for c in running.values())
    redis_ok = (status.get("redis") or {}).get("reachable", True)
    if all_up and beating and redis_ok:
        return "healthy", EXIT_HEALTHY
    return "degraded", EXIT_DEGRADED


def offline_status(config: Config, *, with_ledger: bool = True) -> dict[str, Any]:
    """Status without a supervisor: PID files (identity-checked), Redis, the recorder, the ledger."""
    paths = DataPaths(config.data_dir)
    pidfiles = PidFiles(paths.run)
    registry = build_registry(config)
    components: dict[str, Any] = {}
    for name in COMPONENT_NAMES:
        spec = registry.get(name)
        if spec is None:
            components[name] = {
                "state": "disabled",
                "detail": registry.skipped.get(name, ""),
                "pid": None,
                "uptime_s": None,
                "rss_bytes": None,
                "cpu_affinity": None,
                "scheduling": None,
                "restarts": 0,
                "watchdog": "n/a",
            }
            continue
        record = pidfiles.live(name) if spec.is_process else None
        facts = process_facts(record.pid) if record else {}
        components[name] = {
            "state": "running" if record else "stopped",
            "detail": "running without a supervisor (no watchdog)" if record else "",
            "pid": record.pid if record else None,
            "uptime_s": facts.get("uptime_s"),
            "rss_bytes": facts.get("rss_bytes"),
            "cpu_affinity": facts.get("cpu_affinity"),
            "scheduling": facts.get("scheduling"),
            "restarts": None,
            "watchdog": "unsupervised" if record else "n/a",
        }
    flow = dataflow.collect(config)
    ledger = (
        dataflow.ledger(config)
        if with_ledger and flow["redis"]["reachable"]
        else {
            "available": False,
            "reason": "not computed (nothing running)" if with_ledger else "not requested",
        }
    )
    supervisor = pidfiles.live(SUPERVISOR)
    return assemble(
        {
            "pid": supervisor.pid if supervisor else None,
            "phase": "unresponsive" if supervisor else "down",
            "restarts_blocked": latch.restarts_blocked(paths),
            "latch": latch.read_latch(paths),
        },
        components,
        flow,
        ledger,
        config=config,
    )


def assemble(
    supervisor: dict[str, Any],
    components: dict[str, Any],
    flow: dict[str, Any],
    ledger: dict[str, Any],
    *,
    config: Config | None = None,
) -> dict[str, Any]:
    """The one shape of `status --json` and `GET /api/status`, whoever computed the parts."""
    status: dict[str, Any] = {
        "supervisor": supervisor,
        "components": components,
        "ledger": ledger,
        **{key: flow[key] for key in FLOW_KEYS},
    }
    status["sessions"] = sessions_view(components, flow)  # track -> phase, next_phase, next_at
    status["autonomy"] = autonomy_view(components, flow, config)  # mode, reasons, since, strategies
    status["engine"] = engine_section(components, flow)  # strategies, open orders, positions, equity
    status["health"], status["exit_code"] = health(status)
    return status
