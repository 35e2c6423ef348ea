"""The API's halt and rearm (no engine running: the persisted state): token required, one audit entry per
call, refusals answered 409 and audited too; GET /api/autonomy and the status section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

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
        yield client, config


def _count(config: Any) -> int:
    return len(events(config))


async def test_halt_and_rearm_need_the_token_and_write_one_audit_entry_each(api) -> None:  # type: ignore[no-untyped-def]
    client, config = api
    body = {"operator": "alice", "reason": "api drill"}
    before = _count(config)
    assert (await client.post("/api/halt", json=body)).status_code == 401
    assert _count(config) == before
    answer = await client.post("/api/halt", json=body, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["mode"] == "HALT"
    assert [e["event"] for e in events(config)[before:]] == ["API_CALL_HALT"]
    view = (await client.get("/api/autonomy")).json()
    assert view["mode"] == "HALT" and view["reasons"] == ["manual_operator"] and view["manual_rearm_required"]
    status = (await client.get("/api/status", params={"ledger": "false"})).json()
    assert status["autonomy"]["mode"] == "HALT"

    answer = await client.post("/api/rearm", json={**body, "reason": "done"}, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["mode"] == "NORMAL"
    again = await client.post("/api/rearm", json={**body, "reason": "again"}, headers=AUTH)
    assert again.status_code == 409 and "nothing to rearm" in again.json()["error"]
    entries = events(config)[before:]
    assert [e["event"] for e in entries] == ["API_CALL_HALT", "API_CALL_REARM", "API_CALL_REARM"]
    assert entries[-1]["result"]["refused"] is True and entries[1]["result"]["refused"] is False


async def test_bad_input_is_rejected_before_anything_changes(api) -> None:  # type: ignore[no-untyped-def]
    client, config = api
    before = _count(config)
    for body in (
        {"operator": "alice"},
        {"operator": "a b", "reason": "x"},
        {"operator": "alice", "reason": ""},
        {"operator": "alice", "reason": "x", "force": "yes"},
    ):
        path = "/api/rearm" if "force" in body else "/api/halt"
        assert (await client.post(path, json=body, headers=AUTH)).status_code == 422, body
    assert _count(config) == before
    assert (await client.get("/api/autonomy")).json()["mode"] == "NORMAL"
