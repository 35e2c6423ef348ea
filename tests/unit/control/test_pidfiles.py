import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psutil

from hftops.control.instance_lock import InstanceLock
from hftops.control.pidfiles import PidFiles, is_same_process, signal_process, sweep


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "30"])


def test_record_identity_matches_its_process(tmp_path: Path) -> None:
    proc = _sleeper()
    try:
        record = PidFiles(tmp_path).write("collector", proc.pid)
        assert is_same_process(record)
        assert PidFiles(tmp_path).live("collector") == record
        assert oct(tmp_path.stat().st_mode & 0o777) == oct(0o700)
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    """A stale file names a PID that now belongs to an unrelated process (here: `sleep`)."""
    stranger = _sleeper()
    try:
        pidfiles = PidFiles(tmp_path)
        real = pidfiles.write("recorder", stranger.pid)
        stale = replace(
            real,
            create_time=real.create_time - 3600,
            cmdline=(sys.executable, "-m", "hftops.pipeline.recorder"),
        )
        pidfiles.path("recorder").write_text(stale.to_json())
        assert not signal_process(stale, signal.SIGKILL)
        assert stranger.poll() is None, "the unrelated process was killed"
        assert pidfiles.live("recorder") is None  # and the stale file is cleaned up
        assert not pidfiles.path("recorder").exists()
        assert psutil.pid_exists(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


def test_a_dead_pid_is_stale(tmp_path: Path) -> None:
    proc = _sleeper()
    pidfiles = PidFiles(tmp_path)
    pidfiles.write("venue", proc.pid)
    proc.kill()
    proc.wait()
    live, stale = sweep(pidfiles, ["venue", "collector"])
    assert live == {} and [r.component for r in stale] == ["venue"]
    assert not pidfiles.path("venue").exists()


def test_garbage_pid_file_is_stale(tmp_path: Path) -> None:
    pidfiles = PidFiles(tmp_path)
    pidfiles.ensure()
    pidfiles.path("venue").write_text("not json")
    assert pidfiles.live("venue") is None


def test_matching_identity_is_signalled(tmp_path: Path) -> None:
    proc = _sleeper()
    record = PidFiles(tmp_path).write("venue", proc.pid)
    assert signal_process(record, signal.SIGTERM)
    assert proc.wait(5) == -signal.SIGTERM


def test_instance_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path), InstanceLock(tmp_path)
    assert first.acquire()
    try:
        assert not second.acquire()
        assert second.is_held_elsewhere()
    finally:
        first.release()
    assert not second.is_held_elsewhere()
    assert second.acquire()
    second.release()
    assert os.path.exists(tmp_path / "supervisor.lock")
