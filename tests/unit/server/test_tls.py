"""`vecstore serve --tls-cert/--tls-key`: pymilvus connects over https with the server's
certificate, and a plaintext client gets no answer from the TLS port. The self-signed
certificate is made with the ``openssl`` command (skipped without it)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytest.importorskip("pymilvus")

import grpc  # noqa: E402

from .conftest import spawn, stop, wait_ready  # noqa: E402


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not available to make a test certificate")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-200:]!r}")
    proc = spawn(tmp / "data", args=("--tls-cert", str(cert), "--tls-key", str(key)))
    port = wait_ready(proc)
    yield {"port": port, "cert": str(cert)}
    assert stop(proc) == 0


def test_pymilvus_connects_over_tls(tls_server):
    from pymilvus import MilvusClient

    client = MilvusClient(f"https://localhost:{tls_server['port']}",
                          server_pem_path=tls_server["cert"], server_name="localhost",
                          timeout=10)
    client.create_collection("secure", dimension=4)
    client.insert("secure", [{"id": 1, "vector": [1, 0, 0, 0]}])
    assert client.search("secure", [[1, 0, 0, 0]], limit=1)[0][0]["id"] == 1
    client.close()


def test_plaintext_to_tls_port_fails(tls_server):
    with grpc.insecure_channel(f"127.0.0.1:{tls_server['port']}") as channel:
        with pytest.raises(grpc.RpcError) as e:
            channel.unary_unary("/milvus.proto.milvus.MilvusService/GetVersion")(b"",
                                                                               timeout=5)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_tls_needs_both_files(tmp_path):
    proc = spawn(tmp_path, args=("--tls-cert", str(tmp_path / "cert.pem")))
    assert proc.wait(60) == 2
    assert "--tls-key" in proc.stderr.read()
    stop(proc)
