"""DataDirLock: one owner per data directory, clear errors, release on exit and on SIGKILL."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import vecstore
from vecstore.errors import InvalidArgument, NotFoundError, StorageError, VecstoreError
from vecstore.storage.lock import DataDirLock, DataDirLocked, LockOwner

PYTHON_DIR = str(Path(vecstore.__file__).resolve().parents[1])

# A child that takes the lock, says so, and holds it until stdin closes (or it is killed).
HOLDER = """
import sys
from vecstore.storage.lock import DataDirLock
lock = DataDirLock(sys.argv[1], role="server unix:/tmp/vs.sock").acquire()
print("locked", flush=True)
sys.stdin.read()
lock.release()
print("released", flush=True)
"""

# A child that tries the lock and prints what happened.
TRIER = """
import sys
from vecstore.storage.lock import DataDirLock, DataDirLocked
try:
    DataDirLock(sys.argv[1]).acquire()
except DataDirLocked as e:
    print("LOCKED", e.owner.pid, e)
else:
    print("ACQUIRED")
"""


def python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **kwargs)


@pytest.fixture
def holder(tmp_path):
    p = python(HOLDER, str(tmp_path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == "locked"
    yield p
    if p.poll() is None:
        p.kill()
    p.wait(timeout=30)
    p.stdin.close()
    p.stdout.close()


def test_acquire_writes_owner_and_release_clears_it(tmp_path):
    lock = DataDirLock(tmp_path, role="embedded")
    assert not lock.held
    assert lock.acquire() is lock and lock.held
    owner = json.loads((tmp_path / "LOCK").read_text())
    assert owner["pid"] == os.getpid()
    assert owner["hostname"] == socket.gethostname()
    assert owner["role"] == "embedded"
    assert owner["started_at"].endswith("Z")
    lock.release()
    assert not lock.held and (tmp_path / "LOCK").read_bytes() == b""
    lock.release()  # idempotent
    with lock:  # re-acquirable, and a context manager
        assert lock.held
    assert not lock.held


def test_second_lock_in_same_process_conflicts(tmp_path):
    with DataDirLock(tmp_path, role="first"):
        with pytest.raises(DataDirLocked) as info:
            DataDirLock(tmp_path).acquire()
        e = info.value
        assert isinstance(e, StorageError) and isinstance(e, VecstoreError)
        assert str(tmp_path) in str(e) and f"pid {os.getpid()} (this process)" in str(e)
        assert "role 'first'" in str(e) and "close the other client" in str(e)
        assert e.directory == str(tmp_path) and e.owner.role == "first"
    with DataDirLock(tmp_path):  # free once the first is released
        pass


def test_conflict_with_another_process_names_its_pid(tmp_path, holder):
    with pytest.raises(DataDirLocked) as info:
        DataDirLock(tmp_path).acquire()
    e = info.value
    assert f"pid {holder.pid} on host {socket.gethostname()}" in str(e)
    assert "server unix:/tmp/vs.sock" in str(e) and str(tmp_path) in str(e)
    assert e.owner == LockOwner(
        holder.pid, socket.gethostname(), e.owner.started_at, "server unix:/tmp/vs.sock"
    )
    holder.stdin.close()  # the holder releases and exits
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait(timeout=30) == 0
    with DataDirLock(tmp_path):
        pass


def test_lock_is_released_when_the_owner_is_killed(tmp_path, holder):
    with pytest.raises(DataDirLocked, match=f"pid {holder.pid}"):
        DataDirLock(tmp_path).acquire()
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    with DataDirLock(tmp_path, role="after the crash") as lock:
        assert lock.held
        assert json.loads((tmp_path / "LOCK").read_text())["role"] == "after the crash"


def test_other_process_sees_our_lock(tmp_path):
    with DataDirLock(tmp_path, role="embedded"):
        p = python(TRIER, str(tmp_path), stdout=subprocess.PIPE)
        out, _ = p.communicate(timeout=60)
        assert out.startswith(f"LOCKED {os.getpid()} ")
        assert f"pid {os.getpid()} on host" in out  # not "this process": it is another one


def test_bad_arguments_and_missing_directory(tmp_path):
    with pytest.raises(NotFoundError, match="create=True"):
        DataDirLock(tmp_path / "missing").acquire()
    assert not (tmp_path / "missing").exists()
    with DataDirLock(tmp_path / "new" / "dir", create=True):
        assert (tmp_path / "new" / "dir" / "LOCK").exists()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="not a directory"):
        DataDirLock(tmp_path / "file").acquire()
    with pytest.raises(InvalidArgument):
        DataDirLock(3)
    with pytest.raises(InvalidArgument, match="role"):
        DataDirLock(tmp_path, role=1)
    with DataDirLock(tmp_path) as lock:
        with pytest.raises(InvalidArgument, match="already holds"):
            lock.acquire()


def test_error_pickles_with_its_details(tmp_path):
    with DataDirLock(tmp_path, role="r"):
        with pytest.raises(DataDirLocked) as info:
            DataDirLock(tmp_path).acquire()
    e = pickle.loads(pickle.dumps(info.value))
    assert isinstance(e, DataDirLocked) and e.owner == info.value.owner
    assert str(e) == str(info.value) and e.code == DataDirLocked.code == 2002
