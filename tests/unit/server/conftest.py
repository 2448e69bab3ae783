"""A `vecstore serve` subprocess on a free loopback port, and helpers to start more."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
