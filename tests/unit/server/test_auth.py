"""`vecstore serve --auth`: no call is served without valid credentials, root may do everything,
and users get exactly what their roles were granted (Milvus's RBAC RPCs, through pymilvus)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

pytest.importorskip("pymilvus")

import grpc  # noqa: E402
from pymilvus import MilvusClient, MilvusException  # noqa: E402

from .conftest import spawn, stop, wait_ready  # noqa: E402

ROOT_PW = "root-secret-1"
PREFIX = "/milvus.proto.milvus.MilvusService/"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("auth")
    proc = spawn(data, args=("--auth", "--metrics-port", "0"),
                 env={"VECSTORE_ROOT_PASSWORD": ROOT_PW})
    port = wait_ready(proc)
    info = json.loads((data / "server.json").read_text())
    yield {"uri": f"http://127.0.0.1:{port}", "port": port, "data": data,
           "metrics": info["metrics_port"]}
    assert stop(proc) == 0


@pytest.fixture(scope="module")
def root(auth_server):
    client = MilvusClient(auth_server["uri"], token=f"root:{ROOT_PW}", timeout=10)
    yield client
    client.close()


def _authenticates(server, user: str, password: str) -> bool:
    """A raw Connect with these credentials (pymilvus would reuse a cached connection)."""
    header = base64.b64encode(f"{user}:{password}".encode()).decode()
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as channel:
        try:
            channel.unary_unary(PREFIX + "Connect")(b"", timeout=10,
                                                    metadata=[("authorization", header)])
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED
            return False
    return True


def _denied(fn, code=1401):
    with pytest.raises(MilvusException) as e:
        fn()
    assert e.value.code == code, e.value
    return e.value.message


def test_unauthenticated_calls_are_refused(auth_server):
    with pytest.raises(MilvusException):
        MilvusClient(auth_server["uri"], timeout=5)
    with pytest.raises(MilvusException):
        MilvusClient(auth_server["uri"], token="root:wrong-password", timeout=5)
    with pytest.raises(MilvusException):
        MilvusClient(auth_server["uri"], user="nobody", password="whatever1", timeout=5)
    channel = grpc.insecure_channel(f"127.0.0.1:{auth_server['port']}")
    bad = base64.b64encode(b"root:nope").decode()
    for method, metadata in [("ShowCollections", None), ("Insert", None),
                             ("CreateCredential", [("authorization", bad)]),
                             ("Search", [("authorization", "not base64!")])]:
        call = channel.unary_unary(PREFIX + method)
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=10, metadata=metadata)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "auth check failure" in e.value.details()
    channel.close()
    # Nothing unauthenticated was served: every request-log line without a user was refused.
    lines = [json.loads(x) for x in (auth_server["data"] / "server.log").read_text().splitlines()]
    anonymous = [x for x in lines if x["user"] == "-"]
    assert len(anonymous) >= 7
    assert {x["status"] for x in anonymous} == {"UNAUTHENTICATED"}


def test_root_can_do_everything(root):
    root.create_collection("docs", dimension=4)
    root.insert("docs", [{"id": i, "vector": [i, 1, 0, 0]} for i in range(10)])
    assert len(root.search("docs", [[1, 1, 0, 0]], limit=3)[0]) == 3
    assert root.query("docs", filter="id < 3", output_fields=["id"])
    root.delete("docs", ids=[0])
    assert "docs" in root.list_collections()
    assert "root" in root.list_users()
    assert {"admin", "public"} <= set(root.list_roles())


def test_user_with_search_on_one_collection(auth_server, root):
    root.create_collection("ca", dimension=4)
    root.create_collection("cb", dimension=4)
    root.insert("ca", [{"id": 1, "vector": [1, 0, 0, 0]}])
    root.create_user("alice", "alice-pw-1")
    root.create_role("reader_a")
    root.grant_privilege("reader_a", "Collection", "Search", "ca")
    root.grant_privilege("reader_a", "Collection", "Query", "ca")
    root.grant_role("alice", "reader_a")

    alice = MilvusClient(auth_server["uri"], user="alice", password="alice-pw-1", timeout=10)
    assert alice.search("ca", [[1, 0, 0, 0]], limit=1)[0][0]["id"] == 1
    assert alice.query("ca", filter="id == 1")
    msg = _denied(lambda: alice.insert("ca", [{"id": 2, "vector": [0, 1, 0, 0]}]))
    assert "PrivilegeInsert" in msg and "alice" in msg and "ca" in msg
    msg = _denied(lambda: alice.search("cb", [[1, 0, 0, 0]], limit=1))
    assert "PrivilegeSearch" in msg and "cb" in msg
    _denied(lambda: alice.drop_collection("ca"))
    _denied(lambda: alice.create_collection("mine", dimension=4))
    _denied(lambda: alice.create_user("mallory", "mallory-pw"))
    _denied(lambda: alice.grant_role("alice", "admin"))
    _denied(lambda: alice.list_users())
    assert alice.describe_user("alice")["roles"] == ("reader_a",)  # a user may read itself
    assert root.has_collection("ca")
    alice.close()


def test_grant_and_revoke_round_trip(auth_server, root):
    root.create_collection("cr", dimension=4)
    root.create_user("bob", "bob-pw-123")
    root.create_role("writer")
    root.grant_role("bob", "writer")
    assert root.describe_user("bob")["roles"] == ("writer",)
    bob = MilvusClient(auth_server["uri"], token="bob:bob-pw-123", timeout=10)
    _denied(lambda: bob.insert("cr", [{"id": 1, "vector": [1, 0, 0, 0]}]))

    root.grant_privilege("writer", "Collection", "Insert", "cr")
    privileges = root.describe_role("writer")["privileges"]
    assert [(p["object_name"], p["privilege"]) for p in privileges] == [("cr", "Insert")]
    assert bob.insert("cr", [{"id": 1, "vector": [1, 0, 0, 0]}])["insert_count"] == 1

    root.revoke_privilege("writer", "Collection", "Insert", "cr")
    assert root.describe_role("writer")["privileges"] == []
    _denied(lambda: bob.insert("cr", [{"id": 2, "vector": [1, 0, 0, 0]}]))

    root.grant_privilege_v2("writer", "CollectionReadWrite", "*")  # a built-in group
    bob.insert("cr", [{"id": 3, "vector": [0, 0, 1, 0]}])
    root.revoke_privilege_v2("writer", "CollectionReadWrite", "*")
    _denied(lambda: bob.insert("cr", [{"id": 4, "vector": [1, 0, 0, 0]}]))

    root.grant_role("bob", "admin")
    bob.create_collection("bobs", dimension=4)  # admin may do everything
    root.revoke_role("bob", "admin")
    _denied(lambda: bob.drop_collection("bobs"))

    root.revoke_role("bob", "writer")
    assert root.describe_user("bob")["roles"] == ()
    root.drop_role("writer")
    assert "writer" not in root.list_roles()
    bob.close()
    assert _authenticates(auth_server, "bob", "bob-pw-123")
    root.drop_user("bob")
    assert "bob" not in root.list_users()
    assert not _authenticates(auth_server, "bob", "bob-pw-123")


def test_custom_privilege_groups(auth_server, root):
    root.create_collection("cg", dimension=4)
    root.create_user("dave", "dave-pw-123")
    root.create_role("ingest")
    root.grant_role("dave", "ingest")
    dave = MilvusClient(auth_server["uri"], token="dave:dave-pw-123", timeout=10)
    root.create_privilege_group("writers")
    root.add_privileges_to_group("writers", ["Insert", "Query"])
    groups = {g["privilege_group"]: set(g["privileges"]) for g in root.list_privilege_groups()}
    assert groups["writers"] == {"Insert", "Query"}
    assert "Search" in groups["CollectionReadOnly"]  # the built-in groups are listed too
    _denied(lambda: dave.insert("cg", [{"id": 1, "vector": [1, 0, 0, 0]}]))
    root.grant_privilege_v2("ingest", "writers", "cg")
    assert dave.insert("cg", [{"id": 1, "vector": [1, 0, 0, 0]}])["insert_count"] == 1
    assert dave.query("cg", filter="id >= 0", output_fields=["id"]) == [{"id": 1}]
    _denied(lambda: dave.search("cg", [[1, 0, 0, 0]], limit=1))  # not in the group
    _denied(lambda: dave.list_privilege_groups())  # managing groups is for admins
    root.add_privileges_to_group("writers", ["Search"])  # takes effect at once
    assert dave.search("cg", [[1, 0, 0, 0]], limit=1)[0][0]["id"] == 1
    root.remove_privileges_from_group("writers", ["Insert"])
    _denied(lambda: dave.insert("cg", [{"id": 2, "vector": [1, 0, 0, 0]}]))
    with pytest.raises(MilvusException, match="invalid privilege name"):
        root.add_privileges_to_group("writers", ["Fly"])
    with pytest.raises(MilvusException, match="cannot be changed"):
        root.add_privileges_to_group("CollectionReadOnly", ["Insert"])
    with pytest.raises(MilvusException, match="already exists"):
        root.create_privilege_group("writers")
    with pytest.raises(MilvusException, match="granted to role ingest"):
        root.drop_privilege_group("writers")
    root.revoke_privilege_v2("ingest", "writers", "cg")
    root.drop_privilege_group("writers")
    assert "writers" not in {g["privilege_group"] for g in root.list_privilege_groups()}
    dave.close()


def test_password_change_and_storage(auth_server, root):
    root.create_user("carol", "carol-pw-1")
    carol = MilvusClient(auth_server["uri"], token="carol:carol-pw-1", timeout=10)
    _denied(lambda: carol.update_password("carol", "wrong-old", "carol-pw-2"), code=1400)
    carol.update_password("carol", "carol-pw-1", "carol-pw-2", reset_connection=True)
    carol.describe_user("carol")
    carol.close()
    assert not _authenticates(auth_server, "carol", "carol-pw-1")
    assert _authenticates(auth_server, "carol", "carol-pw-2")
    stored = (auth_server["data"] / "auth.json").read_text()
    assert "carol-pw" not in stored and ROOT_PW not in stored
    assert '"salt"' in stored


def test_metrics_need_credentials(auth_server, root):
    url = f"http://127.0.0.1:{auth_server['metrics']}/metrics"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    e.value.close()
    assert e.value.code == 401
    req = urllib.request.Request(url, headers={
        "Authorization": "Basic " + base64.b64encode(b"root:wrong-pw").decode()})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    e.value.close()
    assert e.value.code == 401
    req = urllib.request.Request(url, headers={
        "Authorization": "Basic " + base64.b64encode(f"root:{ROOT_PW}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read().decode()
    assert 'vecstore_requests_total{method="Connect",status="UNAUTHENTICATED"}' in body


def test_refuses_to_start_insecurely(tmp_path):
    proc = spawn(tmp_path / "a", args=("--auth",))
    assert proc.wait(60) == 2
    assert "root has no password" in proc.stderr.read()
    stop(proc)
    proc = spawn(tmp_path / "b", args=("--host", "0.0.0.0"))
    assert proc.wait(60) == 2
    err = proc.stderr.read()
    assert "not a loopback address" in err and "--insecure-bind" in err
    stop(proc)
