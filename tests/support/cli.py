"""Run the real `trading` command against a test platform and read its JSON answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from tests.support.platform import TestPlatform
from tests.support.processes import process_gone
from tests.support.waiting import wait_for

TRADING = [sys.executable, "-m", "hftops.cli.main"]


def trading(
    platform: TestPlatform,
    *args: str,
    timeout: float = 120,
    check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*TRADING, *args], env=env or platform.env(), capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"trading {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def trading_json(platform: TestPlatform, *args: str, timeout: float = 120) -> tuple[int, Any]:
    result = trading(platform, *args, "--json", timeout=timeout)
    try:
        return result.returncode, json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(
            f"trading {' '.join(args)} --json printed no JSON (exit {result.returncode})\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        ) from exc


def component_pid(platform: TestPlatform, name: str) -> int | None:
    _, status = trading_json(platform, "status")
    component = status["components"].get(name) or {}
    pid = component.get("pid")
    return int(pid) if pid and component.get("state") in ("running", "ready") else None


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: process_gone(pid),
        timeout_s=5,
        what=f"pid {pid} gone after SIGKILL",
    )


def wait_restarted(platform: TestPlatform, name: str, old_pid: int, timeout_s: float = 60) -> int:
    def new_pid() -> int | None:
        pid = component_pid(platform, name)
        return pid if pid and pid != old_pid else None

    return wait_for(new_pid, timeout_s=timeout_s, interval_s=0.25, what=f"{name} restarted by the watchdog")
