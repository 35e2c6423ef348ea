"""Component lifecycle: states, and readiness/heartbeat through the systemd notify protocol.

The same `READY=1` / `WATCHDOG=1` datagrams serve systemd (Type=notify) and the platform's own
supervisor, which sets NOTIFY_SOCKET to a socket of its own for every child it starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from enum import StrEnum
from typing import NoReturn


class ComponentState(StrEnum):
    INITIALISED = "initialised"
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAULTED = "faulted"


def sd_notify(message: str) -> bool:
    """Send one notify datagram; a no-op (False) when no NOTIFY_SOCKET is set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        # Non-blocking: the kernel queues only a few datagrams; a supervisor that stops reading must cost a
        # missed heartbeat, never a frozen event loop in the component.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(address)
            sock.send(message.encode())
        return True
    except OSError:
        return False  # the supervisor went away or its queue is full; the component keeps working


def notify_ready(status: str = "") -> bool:
    return sd_notify("READY=1" + (f"\nSTATUS={status}" if status else "") + f"\nMAINPID={os.getpid()}")


def notify_watchdog() -> bool:
    return sd_notify("WATCHDOG=1")


def notify_stopping() -> bool:
    return sd_notify("STOPPING=1")


def notify_status(status: str) -> bool:
    return sd_notify(f"STATUS={status}")


def exit_now(code: int) -> NoReturn:
    """End a component process once its own orderly stop has returned: flush the logs and the standard
    streams, then `os._exit`, skipping the interpreter's module teardown (0.1-0.2 s per process, paid
    inside every `trading stop`). Only for `__main__`: everything that must be closed was closed by then."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
