"""The control API served by the real supervisor over TCP, the audit chain through the CLI, systemd units."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx

from hftops.config.paths import DataPaths
from hftops.control.audit import AuditLog
from tests.integration.control.fakes import managed_platform
from tests.support.cli import trading

TOKEN = "e2e-token-123"


def test_api_auth_audit_and_emergency_stop_over_tcp(tmp_path: Path) -> None:
    with managed_platform(tmp_path, {"api": {"token": TOKEN}}) as (platform, env):
        assert trading(platform, "start", env=env).returncode == 0
        base = f"http://127.0.0.1:{platform.config.api.port}"
        audit = AuditLog(DataPaths(platform.config.data_dir).audit)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.get("/healthz").json()["status"] == "ok"
            status = client.get("/api/status").json()
            assert status["components"]["collector"]["state"] == "running"
            cli_status = json.loads(trading(platform, "status", "--json", env=env).stdout)
            assert cli_status.keys() == status.keys()  # the same document as `status --json`
            assert "/api/emergency-stop" in client.get("/openapi.json").json()["paths"]

            before = len(list(audit.entries()))
            denied = client.post("/api/emergency-stop", json={"confirm": True})
            assert denied.status_code == 401
            assert client.post("/api/pipeline/stop", headers={"Authorization": "Bearer nope"}).status_code == 401
            assert len(list(audit.entries())) == before
            assert client.get("/api/status").json()["components"]["collector"]["state"] == "running"

            bad = client.post(
                "/api/emergency-stop",
                json={"confirm": "please"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert bad.status_code == 422 and "confirm" in bad.text

            ok = client.post(
                "/api/emergency-stop",
                json={"confirm": True, "operator": "erin"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert ok.status_code == 200, ok.text
            assert sorted(ok.json()["killed"]) == ["collector", "recorder", "venue"]
            calls = [e for e in audit.entries() if e["event"].startswith("API_CALL_")]
            assert [e["event"] for e in calls] == ["API_CALL_EMERGENCY_STOP"] and calls[0]["actor"] == "erin@127.0.0.1"
            logs = client.get("/api/logs", params={"component": "supervisor", "n": 5}).json()
            assert logs["entries"] and all(e["source"] == "supervisor" for e in logs["entries"])
            assert "hftops_component_up" in client.get("/metrics").text
        assert TOKEN not in "".join(p.read_text() for p in DataPaths(platform.config.data_dir).log.glob("*.log"))
        assert trading(platform, "start", env=env).returncode == 0


def test_audit_tampering_is_named_by_the_cli(tmp_path: Path) -> None:
    with managed_platform(tmp_path) as (platform, env):
        assert trading(platform, "start", env=env).returncode == 0
        assert trading(platform, "stop", env=env).returncode == 0
        audit = AuditLog(DataPaths(platform.config.data_dir).audit)
        assert trading(platform, "audit", "verify", env=env).returncode == 0
        shown = trading(platform, "audit", "show", "-n", "3", env=env)
        assert shown.returncode == 0 and "STATE_SNAPSHOT" in shown.stdout
        lines = audit.path.read_text().splitlines(keepends=True)
        assert len(lines) >= 5
        entry = json.loads(lines[3])
        entry["result"] = {"forced": []}
        lines[3] = json.dumps(entry) + "\n"
        audit.path.write_text("".join(lines))
        broken = trading(platform, "audit", "verify", env=env)
        assert broken.returncode == 1 and "line 4" in broken.stderr


def test_systemd_units_through_the_cli(tmp_path: Path) -> None:
    with managed_platform(tmp_path) as (platform, env):
        out = tmp_path / "units"
        result = trading(platform, "systemd", "generate", "--dir", str(out), env=env)
        assert result.returncode == 0, result.stderr
        names = sorted(p.name for p in out.iterdir())
        assert names == [
            "hftops-collector.service",
            "hftops-recorder.service",
            "hftops-redis.service",
            "hftops-venue.service",
            "hftops.target",
        ]
        assert f"HFT_CONFIG={platform.config_path}" in (out / "hftops-collector.service").read_text()
        if shutil.which("systemd-analyze"):
            check = subprocess.run(
                ["systemd-analyze", "verify", "--man=no", *map(str, out.iterdir())],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert check.returncode == 0 and str(out) not in check.stdout + check.stderr, check.stderr
