"""Composition of the execution layer: REST client + order router + user-data stream, from the config."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hftops.config import Config
from hftops.execution.ids import ClientOrderIds, new_session_id
from hftops.execution.rest import BinanceFuturesRest
from hftops.execution.router import OrderRouter, ResyncReport
from hftops.execution.signing import load_credentials
from hftops.execution.user_stream import UserDataStream
from hftops.execution.wire import AccountUpdate
from hftops.model.orders import Fill, OrderUpdate


@dataclass
class ExecutionLayer:
    rest: BinanceFuturesRest
    router: OrderRouter
    stream: UserDataStream
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self, connect_timeout_s: float = 10.0) -> None:
        """Sync the clock, open the user-data stream and wait until it is connected."""
        await self.rest.sync_time()
        self._task = asyncio.create_task(self.stream.run(), name="user-data-stream")
        await asyncio.wait_for(self.stream.synced.wait(), connect_timeout_s)

    async def stop(self, cancel_open_orders: bool = True) -> ResyncReport | None:
        report = None
        if cancel_open_orders:
            report = await self.router.cancel_all()
        await self.stream.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5.0)
        await self.rest.aclose()
        return report

    def stats(self) -> dict[str, Any]:
        return {"rest": self.rest.counters.snapshot(), "router": self.router.stats(), "stream": self.stream.stats()}


def _ignore(_: Any) -> None:
    return None


def build_execution(
    config: Config,
    *,
    environ: Mapping[str, str] | None = None,
    session: str | None = None,
    on_order: Callable[[OrderUpdate], None] = _ignore,
    on_fill: Callable[[Fill], None] = _ignore,
    on_account: Callable[[AccountUpdate], None] = _ignore,
    on_bad_event: Callable[[str, str], None] = lambda reason, payload: None,
) -> ExecutionLayer:
    broker = config.broker
    simulated = config.venue.kind == "simulated" and broker.rest_url is None
    credentials = load_credentials(
        broker.api_key_env,
        broker.api_secret_env,
        os.environ if environ is None else environ,
        allow_dev_default=simulated,
    )
    rest = BinanceFuturesRest(
        config.broker_rest_url,
        credentials,
        recv_window_ms=broker.recv_window_ms,
        timeout_s=broker.timeout_s,
        max_attempts=broker.max_attempts,
    )
    router = OrderRouter(
        rest,
        ClientOrderIds(session or new_session_id()),
        on_order=on_order,
        on_fill=on_fill,
        on_account=on_account,
        on_bad_event=on_bad_event,
        place_attempts=broker.max_attempts,
        cancel_wait_s=broker.timeout_s * (broker.max_attempts + 1) * 2,
    )
    stream = UserDataStream(
        rest,
        config.broker_ws_url,
        router.on_user_event,
        on_down=router.note_stream_down,
        resync=router.resync,
        on_bad_frame=lambda reason, raw: on_bad_event(reason, raw.decode("utf-8", "replace")),
        keepalive_s=broker.listen_key_keepalive_s,
        reconnect_initial_s=broker.reconnect_initial_s,
        reconnect_max_s=broker.reconnect_max_s,
    )
    return ExecutionLayer(rest, router, stream)
