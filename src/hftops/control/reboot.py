"""`trading pre-reboot` (drain-stop, verify, snapshot, checklist) and `trading post-reboot-check`
(starts nothing; compares the saved snapshot with what the database holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hftops.config.paths import DataPaths
from hftops.config.schema import Config
from hftops.control import dataflow, verdicts
from hftops.control.audit import AuditLog
from hftops.control.backup import backup_matches
from hftops.control.operations import Outcome, current_status, snapshot, stop_platform
from hftops.control.shutdown_plan import ShutdownPlan
from hftops.control.snapshot import compare_tables, load_snapshot


@dataclass
class Checklist:
    items: list[tuple[str, str, str]] = field(default_factory=list)  # (verdict ok|warn|FAIL, item, detail)

    def add(self, verdict: str, item: str, detail: str = "") -> None:
        self.items.append((verdict, item, detail))

    @property
    def ok(self) -> bool:
        return all(v != "FAIL" for v, _, _ in self.items)


def pre_reboot(
    config: Config, operator: str, timeout_s: float | None, drain_timeout_s: float
) -> tuple[Checklist, dict[str, Any]]:
    before = current_status(config, with_ledger=False)
    stop = stop_platform(
        config,
        ShutdownPlan(
            actor=operator,
            drain=True,
            timeout_s=timeout_s,
            drain_timeout_s=drain_timeout_s,
            reason="pre-reboot",
        ),
    )
    report = stop.data
    after = current_status(config, with_ledger=False)
    checks = Checklist()
    still = {n: c["pid"] for n, c in after["components"].items() if c["state"] == "running"}
    checks.add("ok" if not still else "FAIL", "every component stopped", f"still running: {still}" if still else "")
    if report.get("nothing_running"):
        checks.add("warn", "streams drained", "nothing was running; nothing to drain")
        saved = snapshot(config, operator, reason="pre-reboot")  # post-reboot-check compares against it
        report["snapshot"] = saved.message
        checks.add("ok", "state snapshot saved", saved.message)
    else:
        drained = report.get("drained") or {}
        checks.add(
            "ok" if drained.get("drained") else "FAIL",
            "streams drained by the recorder",
            f"waited {drained.get('waited_s')} s" if drained.get("drained") else str(drained),
        )
        forced = report.get("forced") or []
        checks.add("ok" if not forced else "FAIL", "no forced kills", f"killed: {forced}" if forced else "")
        verdict = verdicts.ledger_verdict(report.get("ledger_after") or {})
        ledger = report.get("ledger_after") or {}
        checks.add(
            {"balanced": "ok", "unknown": "warn"}.get(verdict, "FAIL"),
            "ledger balanced",
            ledger.get("summary") or ledger.get("reason") or verdict,
        )
        checks.add("ok" if report.get("snapshot") else "FAIL", "state snapshot saved", str(report.get("snapshot")))
    backup, same = backup_matches(config)
    checks.add(
        "ok" if backup and same else ("warn" if backup else "FAIL"),
        "config backup exists",
        f"{backup}{'' if same else ' (differs from the current config: run trading start once)'}"
        if backup
        else "no backup under <data>/backups; `trading start` makes one",
    )
    chain = AuditLog(DataPaths(config.data_dir).audit).verify()
    checks.add("ok" if chain.ok else "FAIL", "audit chain intact", chain.describe())
    return checks, {"before": before, "stop": report, "exit_code": stop.code}


def post_reboot_check(config: Config) -> Outcome:
    paths = DataPaths(config.data_dir)
    snap = load_snapshot(paths)
    if snap is None:
        return Outcome(2, f"no snapshot under {paths.snapshots}; `trading pre-reboot` or `trading snapshot` saves one")
    tables_now = dataflow.table_rows(config)
    ok, lines = compare_tables(snap, tables_now)
    data: dict[str, Any] = {
        "snapshot": snap.get("path"),
        "taken_at": snap.get("taken_at"),
        "tables_now": tables_now,
        "lines": lines,
    }
    wal_then = (snap.get("wal") or {}).get("bytes")
    wal_now = dataflow.wal_info(config)
    data["wal_now"] = wal_now
    if (
        wal_then is not None
        and wal_now.get("bytes") is not None
        and wal_now["bytes"] < wal_then
        and wal_now.get("source") == "disk"
    ):
        lines.append(f"WAL: {wal_then} bytes at the snapshot, {wal_now['bytes']} now (replayed or lost?)")
    if "error" in tables_now:
        return Outcome(2, "cannot read the database: " + tables_now["error"], data)
    return Outcome(0 if ok else 1, "", data)
