"""A `vecstore serve` subprocess on a free loopback port, and helpers to start more."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vecstore

pytest.importorskip("grpc")
pytest.importorskip("pymilvus")

# The directory holding the vecstore this test imported: the server child must run the same
# build (the source tree has no compiled _core when the package is installed, as in CI).
PACKAGE_DIR = str(Path(vecstore.__file__).resolve().parents[1])


def spawn(data: Path, port: int = 0, args: tuple[str, ...] = (),
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """``vecstore serve`` on ``data`` with extra command-line ``args`` and environment ``env``
    (the caller's ``VECSTORE_ROOT_PASSWORD`` is not inherited)."""
    full = {k: v for k, v in os.environ.items() if k != "VECSTORE_ROOT_PASSWORD"}
    full.update(env or {})
    full["PYTHONPATH"] = PACKAGE_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "vecstore", "serve", "--data", str(data), "--port", str(port),
         "--workers", "4", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def wait_ready(proc: subprocess.Popen, timeout: float = 60) -> int:
    """The port from the readiness line (the server prints it once the port accepts)."""
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    if not line.startswith("vecstore serving") or time.monotonic() > deadline:
        proc.kill()
        raise AssertionError(f"server did not start: {line!r} {proc.stderr.read()!r}")
    return int(line.rsplit(":", 1)[1])


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie still does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def role_logs(data: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of every role's log under ``data``: what a failed fault test
    prints, so that a failure seen once (in CI) can be explained afterwards."""
    out = []
    for log in sorted(Path(data).glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(out)


def ingest(client, name: str, start: int, stop_at: threading.Event, acked: list[int],
           failed: list[int], seed: int, dim: int = 8) -> None:
    """Inserts 20-row batches of ids from ``start`` until told to stop, recording which were
    acknowledged and which failed (a failed batch may or may not have reached the log)."""
    rng = np.random.default_rng(seed)
    lo = start
    while not stop_at.is_set():
        rows = [{"id": i, "vector": rng.standard_normal(dim).tolist()} for i in range(lo, lo + 20)]
        try:
            client.insert(name, rows)
            acked.extend(range(lo, lo + 20))
        except Exception:  # noqa: BLE001 - the node died under this write: not acknowledged
            failed.extend(range(lo, lo + 20))
            time.sleep(0.05)
        lo += 20


@contextlib.contextmanager
def ingesting(client, name: str, seed: int = 0):
    """Runs :func:`ingest` into ``name`` in a thread while the block runs (stopped and joined on
    leaving it); yields (acknowledged ids, failed ids), growing meanwhile."""
    stop_at = threading.Event()
    acked: list[int] = []
    failed: list[int] = []
    writer = threading.Thread(target=ingest, args=(client, name, 0, stop_at, acked, failed, seed))
    writer.start()
    try:
        yield acked, failed
    finally:
        stop_at.set()
        writer.join()


def wait_until(predicate, what: str, timeout: float = 60, pause: float = 0.1) -> None:
    """Polls ``predicate`` until it is true; AssertionError ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(pause)


def until_accepted(write, what: str, timeout: float = 30, pause: float = 0.1):
    """Calls ``write()`` until it raises no VecstoreError (a channel being recovered refuses
    writes meanwhile) and returns its result; AssertionError ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return write()
        except vecstore.VecstoreError:
            assert time.monotonic() < deadline, what
            time.sleep(pause)


def ids_of(client, name: str) -> set[int]:
    """Every primary key of ``name`` (through a query iterator: one query returns at most
    16384 rows)."""
    out: set[int] = set()
    it = client.query_iterator(name, filter="id >= 0", output_fields=["id"], batch_size=8192)
    while batch := it.next():
        out.update(r["id"] for r in batch)
    it.close()
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("served")
    proc = spawn(data)
    port = wait_ready(proc)
    yield {"uri": f"http://127.0.0.1:{port}", "port": port, "data": data, "proc": proc}
    assert stop(proc) == 0


@pytest.fixture(scope="module")
def remote(server):
    from pymilvus import MilvusClient

    client = MilvusClient(server["uri"], timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    from vecstore import MilvusClient

    client = MilvusClient(str(tmp_path_factory.mktemp("embedded")))
    yield client
    client.close()
