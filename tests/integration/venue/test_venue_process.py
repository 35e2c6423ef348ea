"""`python -m hftops.venue` as a real process: Binance frames, faults on wire and REST, shutdown, restart."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import websockets

from hftops.model.binance import AggTrade, RestAggTrade
from tests.integration.venue.helpers import NotifySocket, VenueProcess, connect, decode_combined, decode_event
from tests.support.platform import TestPlatform as Platform
from tests.support.waiting import async_wait_for, wait_for

STREAMS = "btcusdt@aggTrade/btcusdt@bookTicker/ethusdt@aggTrade/ethusdt@bookTicker"


@pytest.fixture(scope="module")
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory, notify: NotifySocket) -> Iterator[VenueProcess]:
    platform = Platform(
        tmp_path_factory.mktemp("venue"),
        {"simulator": {"rate": 2000, "burst_factor": 1, "send_buffer_max_bytes": 65536}},
    )
    process = VenueProcess(platform, notify).start()
    yield process
    process.close()


@pytest.fixture(autouse=True)
def clean_venue(venue: VenueProcess) -> Iterator[None]:
    yield
    venue.admin("DELETE", "/admin/fault")
    venue.admin("POST", "/admin/publishing", {"paused": False})
    venue.admin("POST", "/admin/rate", {"rate": 2000})


def test_ready_then_watchdog_every_second(notify: NotifySocket, venue: VenueProcess) -> None:
    wait_for(lambda: notify.count("READY=1") == 1, 5, what="READY=1")
    seen = notify.count("WATCHDOG=1")
    wait_for(lambda: notify.count("WATCHDOG=1") >= seen + 2, 3, what="two more WATCHDOG=1 within 3 s")


async def test_combined_stream_frames_decode_with_sequential_ids(venue: VenueProcess) -> None:
    ids: dict[str, list[int]] = {}
    async with await connect(f"{venue.ws_base}/stream?streams={STREAMS}") as ws, asyncio.timeout(10):
        while sum(len(v) for v in ids.values()) < 400:
            stream, event = decode_combined(await ws.recv())
            ids.setdefault(stream, []).append(event.a if isinstance(event, AggTrade) else event.u)
    assert set(ids) == set(STREAMS.split("/"))
    for stream, seen in ids.items():
        assert seen == list(range(seen[0], seen[0] + len(seen))), f"{stream} ids not contiguous"


async def test_raw_streams_and_spot_trades(venue: VenueProcess) -> None:
    for stream in ("ethusdt@bookTicker", "btcusdt@trade"):
        async with await connect(f"{venue.ws_base}/ws/{stream}") as ws, asyncio.timeout(5):
            event = decode_event(stream, (await ws.recv()).encode())
            assert event.s == stream.split("@")[0].upper()


async def test_live_subscribe_on_a_bare_connection(venue: VenueProcess) -> None:
    async with await connect(f"{venue.ws_base}/stream") as ws, asyncio.timeout(5):
        await ws.send('{"method": "SUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": 7}')
        assert msgspec.json.decode(await ws.recv()) == {"result": None, "id": 7}
        stream, _ = decode_combined(await ws.recv())
        assert stream == "ethusdt@aggTrade"
        await ws.send('{"method": "SUBSCRIBE", "params": ["ethusdt@depth"], "id": 8}')
        while (reply := msgspec.json.decode(await ws.recv())).get("id") != 8:
            pass
        assert reply["error"]["code"] == 2 and "ethusdt@depth" in reply["error"]["msg"]


async def test_unknown_stream_names_are_refused(venue: VenueProcess) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(f"{venue.ws_base}/stream?streams=btcusdt@aggTrade/dogeusdt@aggTrade")
    assert refused.value.response.status_code == 400
    assert msgspec.json.decode(refused.value.response.body)["code"] == 2


async def test_skipped_ids_are_missing_on_the_wire_but_served_by_rest(venue: VenueProcess) -> None:
    seen: list[int] = []
    async with await connect(f"{venue.ws_base}/ws/btcusdt@aggTrade") as ws, asyncio.timeout(10):
        seen.append(msgspec.json.decode(await ws.recv(), type=AggTrade).a)
        venue.admin("POST", "/admin/fault", {"fault": "skip_ids", "symbol": "BTCUSDT", "count": 20})
        while len(seen) < 60:
            seen.append(msgspec.json.decode(await ws.recv(), type=AggTrade).a)
    jumps = [(a, b) for a, b in itertools.pairwise(seen) if b != a + 1]
    assert len(jumps) == 1 and jumps[0][1] - jumps[0][0] == 21, jumps
    first_missing = jumps[0][0] + 1
    response = venue.rest.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": first_missing, "limit": 20})
    served = msgspec.json.decode(response.content, type=list[RestAggTrade])
    assert [t.a for t in served] == list(range(first_missing, first_missing + 20))
    assert venue.admin("GET", "/admin/faults")["counters"]["skipped_on_wire"] == 20


async def test_malformed_frames_arrive_between_good_ones(venue: VenueProcess) -> None:
    for kind, count in (("bad_json", 2), ("nan_price", 1), ("oversized", 1), ("missing_field", 1)):
        venue.admin("POST", "/admin/fault", {"fault": "malformed", "kind": kind, "count": count})
    bad, good_after_bad = [], 0
    async with await connect(f"{venue.ws_base}/stream?streams={STREAMS}") as ws, asyncio.timeout(10):
        while len(bad) < 5 or good_after_bad < 20:
            message = await ws.recv()
            try:
                _, event = decode_combined(message)
            except msgspec.DecodeError:
                bad.append(message)
                continue
            if len(message) > 65536 or (isinstance(event, AggTrade) and event.p == "NaN"):
                bad.append(message)
            elif bad:
                good_after_bad += 1
    assert any(len(m) > 65536 for m in bad)
    assert sum('"NaN"' in m for m in bad) == 1
    assert venue.admin("GET", "/admin/faults")["counters"]["malformed_sent"] == 5


async def test_drop_connections_closes_every_client(venue: VenueProcess) -> None:
    async with await connect(f"{venue.ws_base}/ws/btcusdt@aggTrade") as ws, asyncio.timeout(5):
        await ws.recv()
        venue.admin("POST", "/admin/fault", {"fault": "drop_connections"})
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 1001


def test_pause_and_resume_publishing(venue: VenueProcess) -> None:
    venue.admin("POST", "/admin/publishing", {"paused": True})
    frozen = venue.last_id("BTCUSDT")
    time.sleep(0.3)  # nothing to await: the check is that nothing happens for a while
    assert venue.last_id("BTCUSDT") == frozen
    venue.admin("POST", "/admin/publishing", {"paused": False})
    wait_for(lambda: venue.last_id("BTCUSDT") > frozen, 5, what="publishing resumed")


async def test_down_refuses_everything_then_comes_back(venue: VenueProcess) -> None:
    async with await connect(f"{venue.ws_base}/ws/btcusdt@aggTrade") as ws, asyncio.timeout(10):
        await ws.recv()
        venue.admin("POST", "/admin/fault", {"fault": "down", "seconds": 1.5})
        frozen = venue.last_id("BTCUSDT")
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await ws.recv()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(f"{venue.ws_base}/ws/btcusdt@aggTrade")
    assert refused.value.response.status_code == 503
    assert venue.rest.get("/fapi/v1/aggTrades", params={"symbol": "BTCUSDT"}).status_code == 503
    assert venue.last_id("BTCUSDT") == frozen  # generation pauses while down

    async def back() -> bool:
        return venue.rest.get("/fapi/v1/ping").status_code == 200

    await async_wait_for(back, 5, what="REST back after down")
    async with await connect(f"{venue.ws_base}/ws/btcusdt@aggTrade") as ws, asyncio.timeout(5):
        assert msgspec.json.decode(await ws.recv(), type=AggTrade).a > frozen


async def test_a_client_that_stops_reading_is_cut_off(venue: VenueProcess) -> None:
    before = venue.admin("GET", "/admin/stats")["hub"]["slow_consumers_closed"]
    venue.admin("POST", "/admin/rate", {"rate": 60_000})
    async with await connect(f"{venue.ws_base}/stream?streams={STREAMS}", max_queue=1) as ws:

        async def cut_off() -> bool:
            return venue.admin("GET", "/admin/stats")["hub"]["slow_consumers_closed"] > before

        await async_wait_for(cut_off, 15, what="the venue closing the slow consumer")
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()


def test_sigterm_exits_zero_and_a_restart_keeps_the_ground_truth(tmp_path: Path) -> None:
    platform = Platform(tmp_path, {"simulator": {"rate": 3000, "burst_factor": 1}})
    first = VenueProcess(platform).start()
    try:
        seen = asyncio.run(_read_trades(first.ws_base, 200))
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.close()
    second = VenueProcess(platform).start()
    try:
        # Every trade a client saw before kill -9 is in the reloaded ground truth, unchanged.
        assert second.last_id("BTCUSDT") >= seen[-1].a
        response = second.rest.get(
            "/fapi/v1/aggTrades", params={"symbol": "BTCUSDT", "fromId": seen[0].a, "limit": len(seen)}
        )
        served = msgspec.json.decode(response.content, type=list[RestAggTrade])
        assert [(t.a, t.p, t.q, t.T, t.m) for t in served] == [(t.a, t.p, t.q, t.T, t.m) for t in seen]
        resumed = asyncio.run(_read_trades(second.ws_base, 5))
        assert resumed[0].a > seen[-1].a
        started = time.monotonic()
        assert second.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 2.0
    finally:
        second.close()


async def _read_trades(ws_base: str, count: int) -> list[AggTrade]:
    async with await connect(f"{ws_base}/ws/btcusdt@aggTrade") as ws, asyncio.timeout(10):
        return [msgspec.json.decode(await ws.recv(), type=AggTrade) for _ in range(count)]


def test_cli_drives_the_running_venue(venue: VenueProcess) -> None:
    from typer.testing import CliRunner

    from hftops.cli.main import app

    runner = CliRunner()
    env = {"HFT_CONFIG": str(venue.platform.config_path)}
    truth = runner.invoke(app, ["venue", "ground-truth", "--json"], env=env)
    assert truth.exit_code == 0, truth.output
    assert msgspec.json.decode(truth.stdout)["symbols"]["BTCUSDT"]["first_id"] == 1
    armed = runner.invoke(app, ["venue", "fault", "skip_ids", "--symbol", "ETHUSDT", "--count", "3"], env=env)
    headline, faults = armed.stdout.split("\n", 1)
    assert armed.exit_code == 0 and headline == "fault skip_ids armed"
    assert msgspec.json.decode(faults)["skip_ids"] == {"ETHUSDT": 3}  # as armed, before any tick took some
    refused = runner.invoke(app, ["venue", "fault", "down"], env=env)
    assert refused.exit_code == 1 and "seconds is required" in refused.stderr
    assert runner.invoke(app, ["venue", "pause"], env=env).exit_code == 0
    assert venue.admin("GET", "/admin/publishing") == {"paused": True}
    assert runner.invoke(app, ["venue", "rate", "3000"], env=env).exit_code == 0
    assert venue.admin("GET", "/admin/rate") == {"rate": 3000.0}
    assert runner.invoke(app, ["venue", "clear-faults"], env=env).exit_code == 0
    stats = runner.invoke(app, ["venue", "stats"], env=env)
    assert stats.exit_code == 0 and "paused" in stats.stdout


def test_cli_names_the_url_when_nothing_answers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hftops.cli.main import app

    platform = Platform(tmp_path)  # ports are free: no venue there
    result = CliRunner().invoke(app, ["venue", "stats"], env={"HFT_CONFIG": str(platform.config_path)})
    assert result.exit_code == 1
    assert platform.config.rest_base_url in result.stderr and "connection refused" in result.stderr
