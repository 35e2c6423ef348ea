"""SCHED_FIFO for a component: every thread gets it, and without the privilege the check says what to change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hftops.control.sched import describe, realtime_allowed, set_realtime
from tests.support.processes import without_realtime_privilege

_THREADED_CHILD = textwrap.dedent("""
    import threading, time
    for _ in range(3):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def threaded_child() -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", _THREADED_CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    yield child
    child.kill()
    child.wait()


def test_every_thread_of_the_process_gets_the_priority(threaded_child: subprocess.Popen[str]) -> None:
    threads = [t.id for t in psutil.Process(threaded_child.pid).threads()]
    assert len(threads) == 4
    inherited = os.getpriority(os.PRIO_PROCESS, 0)  # a host may run every process at -10
    assert describe(threaded_child.pid) == f"nice {inherited}"
    if not realtime_allowed(5)[0]:
        with pytest.raises(PermissionError):
            set_realtime(threaded_child.pid, 5)
        return
    assert set_realtime(threaded_child.pid, 5) == 4
    assert all(os.sched_getscheduler(t) == os.SCHED_FIFO and os.sched_getparam(t).sched_priority == 5 for t in threads)
    assert describe(threaded_child.pid) == "fifo 5"
    assert set_realtime(threaded_child.pid, 5) == 0  # applied again after readiness: nothing left to change
    with pytest.raises(ProcessLookupError):
        set_realtime(2**22 + 12345, 5)


def test_without_the_privilege_check_names_the_key_and_the_fix_and_the_kernel_refuses(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, subprocess, sys
        from hftops.config.checks import check_config
        from hftops.config.schema import Config
        from hftops.control.sched import set_realtime
        config = Config.model_validate({{"data_dir": "{tmp_path / "var"}",
            "supervisor": {{"components": {{"collector": {{"realtime_priority": 5}}}}}}}})
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            set_realtime(sleeper.pid, 5)
            refused = ""
        except PermissionError as exc:
            refused = exc.strerror
        finally:
            sleeper.kill()
        print(json.dumps({{"errors": check_config(config).errors, "refused": refused}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=without_realtime_privilege,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["refused"] == "Operation not permitted"
    [error] = [e for e in out["errors"] if "realtime_priority" in e]
    assert error.startswith("supervisor.components.collector.realtime_priority 5: this user has no CAP_SYS_NICE")
    assert "ulimit -r 5" in error and "remove the key" in error


def test_check_warns_when_the_kernel_would_let_a_realtime_process_own_its_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hftops.config.checks import check_config
    from hftops.config.schema import Config
    from hftops.control import sched

    runtime = tmp_path / "sched_rt_runtime_us"  # stands in for /proc/sys/kernel/sched_rt_runtime_us
    monkeypatch.setattr(sched, "RT_RUNTIME", runtime)
    realtime = {"supervisor": {"components": {"collector": {"realtime_priority": 5}}}}
    config = Config.model_validate({"data_dir": str(tmp_path / "var"), **realtime})
    runtime.write_text("-1\n")
    assert any("sched_rt_runtime_us is -1" in w for w in check_config(config).warnings)
    runtime.write_text("950000\n")
    assert not any("sched_rt_runtime_us" in w for w in check_config(config).warnings)
    runtime.write_text("-1\n")
    plain = Config.model_validate({"data_dir": str(tmp_path / "var")})
    assert not any("sched_rt_runtime_us" in w for w in check_config(plain).warnings)  # nothing on FIFO
