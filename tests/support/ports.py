"""Free loopback ports for test servers.

A port the kernel picks with `bind(port 0)` comes from the ephemeral range, the same range it draws every
outgoing connection's source port from; between the moment a test picks such a port and the moment its server
binds it, any client in the suite (a Redis connection, an HTTP request) may take it, and two picks in a row may
even return the same port. The servers then fail with "address already in use" (it happened on CI: the venue
of an e2e test could not bind). So ports come from below the ephemeral range, where only an explicit bind can
take one, and none is handed out twice in one test run.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

_LOWEST = 10_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
_next: int | None = None


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range, not handed out before in this process."""
    global _next
    top = _ephemeral_low()
    if top - _LOWEST < 1_000:  # an unusual port range: fall back on the kernel's pick, still never twice
        return _kernel_pick()
    span = top - _LOWEST
    if _next is None:  # each test process starts at its own place, so two suites on one host rarely meet
        _next = _LOWEST + (os.getpid() * 7919) % span
    for _ in range(span):
        port = _next
        _next = _LOWEST + (_next - _LOWEST + 1) % span
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port between {_LOWEST} and {top}")


def _kernel_pick() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
