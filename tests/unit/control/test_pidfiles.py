import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from hftops.control import pidfiles as pidfiles_module
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


def test_a_fresh_child_is_recorded_with_its_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a spawn /proc/<pid>/cmdline can read empty (the kernel is still inside execve): the record
    waits for the real command line instead of keeping an empty one."""
    proc = _sleeper()
    try:
        real = pidfiles_module.identify
        answers = iter([(real(proc.pid) or (0.0, ()))[0]] * 2)

        def mid_exec_then_real(pid: int) -> tuple[float, tuple[str, ...]] | None:
            early = next(answers, None)
            return (early, ()) if early is not None else real(pid)

        monkeypatch.setattr(pidfiles_module, "identify", mid_exec_then_real)
        record = PidFiles(tmp_path).write("collector", proc.pid)
        assert record.cmdline == ("sleep", "30")
    finally:
        proc.kill()
        proc.wait()


def test_a_record_without_a_command_line_is_matched_by_its_start_time(tmp_path: Path) -> None:
    proc = _sleeper()
    try:
        record = replace(PidFiles(tmp_path).write("venue", proc.pid), cmdline=())
        assert is_same_process(record)
        assert not is_same_process(replace(record, create_time=record.create_time - 5))
        assert signal_process(record, signal.SIGTERM)
        assert proc.wait(5) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
