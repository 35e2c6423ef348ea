"""The control API against a supervisor with real child processes: auth, malformed input, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftops.api.app import create_app
from tests.integration.control.conftest import events, make_config
from tests.integration.control.fakes import fake_env

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(tmp_path: Path, valkey, supervisors):  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, valkey.url, enabled=("collector", "recorder"), token=TOKEN)
    sup = supervisors(config, fake_env(collector=[], recorder=[]))
    assert (await sup.start_pipeline("tester"))["ok"]
    app = create_app(sup, token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, sup, config


def _audit_count(config: Any) -> int:
    return len(events(config))


async def test_reads_are_open_and_describe_the_platform(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    assert (await client.get("/healthz")).json()["status"] == "ok"
    status = (await client.get("/api/status", params={"ledger": "false"})).json()
    assert {"components", "streams", "tables", "ledger"} <= status.keys()
    assert status["components"]["collector"]["state"] == "running"
    assert {"state", "pid", "uptime_s", "rss_bytes", "cpu_affinity", "restarts"} <= status["components"][
        "collector"
    ].keys()
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/api/pipeline/stop", "/api/emergency-stop", "/api/status", "/metrics"} <= paths.keys()
    metrics = (await client.get("/metrics")).text
    assert 'hftops_component_up{component="collector"} 1.0' in metrics
    assert "hftops_platform_health" in metrics
    assert (await client.get("/")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}, {"Authorization": TOKEN}],
)
async def test_missing_or_wrong_token_is_401_without_side_effect(api, headers) -> None:  # type: ignore[no-untyped-def]
    client, sup, config = api
    before = _audit_count(config)
    for path, body in (
        ("/api/pipeline/stop", {}),
        ("/api/emergency-stop", {"confirm": True}),
        ("/api/pipeline/restart", {}),
        ("/api/emergency-stop", "not json"),
    ):
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "token" in response.json()["error"].lower() or "authorization" in response.json()["error"].lower()
    assert sup.runners["collector"].alive and sup.runners["recorder"].alive
    assert _audit_count(config) == before
    assert TOKEN not in Path(config.data_dir, "audit", "audit.jsonl").read_text()


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/emergency-stop", {}, "confirm"),
        ("/api/emergency-stop", {"confirm": "yes"}, "confirm"),
        ("/api/emergency-stop", {"confirm": True, "extra": 1}, "extra"),
        ("/api/emergency-stop", {"confirm": True, "reason": "DROP TABLE"}, "reason"),
        ("/api/pipeline/stop", {"timeout_s": -1}, "timeout_s"),
        ("/api/pipeline/stop", {"drain": "sure"}, "drain"),
        ("/api/pipeline/stop", [1, 2], "body"),
        ("/api/pipeline/start", {"operator": "bob smith; rm -rf"}, "operator"),
    ],
)
async def test_malformed_requests_are_4xx_naming_the_problem(api, path, body, needle) -> None:  # type: ignore[no-untyped-def]
    client, sup, config = api
    before = _audit_count(config)
    response = await client.post(path, json=body, headers=AUTH)
    assert 400 <= response.status_code < 500, response.text
    assert needle in response.text
    assert sup.runners["collector"].alive and _audit_count(config) == before


async def test_invalid_json_and_bad_queries_are_4xx(api) -> None:  # type: ignore[no-untyped-def]
    client, sup, _ = api
    response = await client.post(
        "/api/emergency-stop", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422 and "json" in response.text.lower()
    assert (await client.post("/api/emergency-stop", json={"confirm": False}, headers=AUTH)).status_code == 400
    assert (await client.get("/api/logs", params={"n": 0})).status_code == 422
    assert (await client.get("/api/logs", params={"component": "../../etc/passwd"})).status_code == 400
    assert sup.runners["collector"].alive


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=6,
    )
)
async def test_generated_bodies_never_500_and_never_kill(api, body) -> None:  # type: ignore[no-untyped-def]
    if isinstance(body, dict) and body.get("confirm") is True:
        body = {**body, "confirm": False}
    client, sup, _ = api
    response = await client.post("/api/emergency-stop", json=body, headers=AUTH)
    assert 400 <= response.status_code < 500
    assert sup.runners["collector"].alive


async def test_each_accepted_call_writes_exactly_one_api_entry(api) -> None:  # type: ignore[no-untyped-def]
    client, sup, config = api

    def api_calls() -> list[str]:
        return [e["event"] for e in events(config) if e["event"].startswith("API_CALL_")]

    response = await client.post("/api/pipeline/stop", json={"operator": "carol"}, headers=AUTH)
    assert response.status_code == 200 and response.json()["exit_code"] == 0
    assert api_calls() == ["API_CALL_STOP"]
    assert not sup.runners["collector"].alive
    assert events(config, "API_CALL_STOP")[0]["actor"] == "carol@127.0.0.1"

    response = await client.post("/api/pipeline/start", headers=AUTH)
    assert response.status_code == 200 and response.json()["ok"]
    assert sup.runners["collector"].alive
    response = await client.post("/api/pipeline/start", headers=AUTH)
    assert response.status_code == 409 and "collector" in response.json()["pids"]
    assert api_calls() == ["API_CALL_STOP", "API_CALL_START", "API_CALL_START"]

    response = await client.post("/api/emergency-stop", json={"confirm": True}, headers=AUTH)
    assert response.status_code == 200 and sorted(response.json()["killed"]) == ["collector", "recorder"]
    assert api_calls()[-1] == "API_CALL_EMERGENCY_STOP" and len(api_calls()) == 4


async def test_without_a_configured_token_mutations_are_refused(tmp_path: Path, valkey, supervisors) -> None:
    config = make_config(tmp_path, valkey.url)
    sup = supervisors(config, fake_env(collector=[]))
    assert (await sup.start_pipeline("tester"))["ok"]
    app = create_app(sup, token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/api/pipeline/stop", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403 and "HFT_API_TOKEN" in response.json()["error"]
    assert sup.runners["collector"].alive
