"""Running `python -m hftops.venue` as a real process for tests, and reading its streams."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

import httpx
import msgspec
import websockets

from hftops.model.binance import AggTrade, BookTicker, CombinedFrame, SpotTrade
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_for


class NotifySocket:
    """Collects the READY=1 / WATCHDOG=1 datagrams the venue sends to $NOTIFY_SOCKET.

    A thread drains the socket all the time: the kernel queues only ~10 datagrams
    (net.unix.max_dgram_qlen), and a sender blocks once that queue is full.
    """

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="vn", dir="/tmp")  # AF_UNIX paths must stay short
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._closed = False
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._closed:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def count(self, prefix: str) -> int:
        return sum(1 for m in list(self.messages) if m.startswith(prefix))

    def close(self) -> None:
        self._closed = True
        self._reader.join(1)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class VenueProcess:
    def __init__(self, platform: TestPlatform, notify: NotifySocket | None = None) -> None:
        self.platform = platform
        self.rest = httpx.Client(base_url=platform.config.rest_base_url, timeout=5)
        self.ws_base = platform.config.ws_base_url
        self.notify = notify
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> VenueProcess:
        extra = {"NOTIFY_SOCKET": self.notify.path} if self.notify else {}
        log = open(self.platform.root / "venue.out", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hftops.venue"],
            env=self.platform.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, 20, what="venue REST answering")
        return self

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"venue exited with {self.process.returncode}: "
                + (self.platform.root / "venue.out").read_text()[-2000:]
            )
        try:
            return self.rest.get("/fapi/v1/ping").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"venue did not exit within {timeout}s of signal {sig}") from None

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.rest.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def last_id(self, symbol: str) -> int:
        return int(self.admin("GET", "/admin/ground-truth")["symbols"][symbol]["last_id"])

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.rest.close()


def decode_event(stream: str, data: bytes) -> AggTrade | SpotTrade | BookTicker:
    kind = stream.partition("@")[2]
    struct = {"aggTrade": AggTrade, "trade": SpotTrade, "bookTicker": BookTicker}[kind]
    return msgspec.json.decode(data, type=struct)


def decode_combined(message: str | bytes) -> tuple[str, AggTrade | SpotTrade | BookTicker]:
    frame = msgspec.json.decode(message, type=CombinedFrame)
    return frame.stream, decode_event(frame.stream, bytes(frame.data))


async def connect(url: str, **kwargs: Any) -> websockets.ClientConnection:
    return await websockets.connect(url, open_timeout=5, **kwargs)
