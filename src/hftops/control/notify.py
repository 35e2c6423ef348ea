"""The supervisor's end of the notify protocol: one datagram socket per component, so READY=1 and
WATCHDOG=1 are attributed to the child that owns that socket."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

# sockaddr_un holds 108 bytes; deeper run directories fall back to the abstract namespace.
_MAX_PATH = 100


def parse_notify(datagram: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value
    return fields


class NotifySocket:
    def __init__(self, run_dir: Path, name: str) -> None:
        path = run_dir / f"notify-{name}.sock"
        if len(str(path)) <= _MAX_PATH:
            self._path: Path | None = path
            self.address = str(path)
            self._bind_to = str(path)
        else:
            digest = hashlib.sha1(str(run_dir).encode()).hexdigest()[:12]
            self._path = None
            self.address = f"@hftops-{digest}-{name}"
            self._bind_to = "\0" + self.address[1:]
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, on_message: Callable[[dict[str, str]], None]) -> None:
        if self._sock is not None:
            return
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        sock.bind(self._bind_to)
        if self._path is not None:
            os.chmod(self._path, 0o600)
        self._sock = sock
        self._loop = asyncio.get_running_loop()

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                on_message(parse_notify(data))

        self._loop.add_reader(sock.fileno(), readable)

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
