"""Consistency levels: parsing as pymilvus accepts them, the guarantee each picks, and reads at
every level seeing every acknowledged write in the embedded wiring."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vecstore import MilvusClient
from vecstore.errors import InvalidArgument
from vecstore.proxy.consistency import (
    GRACEFUL_TIME_MS,
    ConsistencyLevel,
    guarantee_ts,
    parse_level,
)


@pytest.mark.parametrize("value,want", [
    ("Strong", ConsistencyLevel.Strong), ("session", ConsistencyLevel.Session),
    ("BOUNDED", ConsistencyLevel.Bounded), (3, ConsistencyLevel.Eventually),
    (ConsistencyLevel.Strong, ConsistencyLevel.Strong),
])
def test_parse_level(value, want):
    assert parse_level(value) is want


@pytest.mark.parametrize("value", ["strict", 7, -1, True, None, 2.0])
def test_parse_level_rejects(value):
    with pytest.raises(InvalidArgument, match="consistency level"):
        parse_level(value)


def test_guarantee_per_level():
    now = (1_700_000_000_000 << 18) | 5
    assert guarantee_ts(ConsistencyLevel.Strong, now, 42) == now
    assert guarantee_ts(ConsistencyLevel.Session, now, 42) == 42
    assert guarantee_ts(ConsistencyLevel.Bounded, now, 42) == now - (GRACEFUL_TIME_MS << 18)
    assert guarantee_ts(ConsistencyLevel.Eventually, now, 42) == 1
    with pytest.raises(InvalidArgument, match="Customized"):
        guarantee_ts(ConsistencyLevel.Customized, now, 42)


@pytest.fixture
def client(tmp_path):
    c = MilvusClient(str(tmp_path / "db"))
    yield c
    c.close()


def test_collection_level_is_recorded_and_validated(client):
    client.create_collection("s", dimension=4, consistency_level="Strong")
    assert client.describe_collection("s")["consistency_level"] == 0
    client.create_collection("d", dimension=4)
    assert client.describe_collection("d")["consistency_level"] == 2  # Milvus's default
    with pytest.raises(InvalidArgument, match="consistency level"):
        client.create_collection("bad", dimension=4, consistency_level="Linearizable")
    assert not client.has_collection("bad")


@pytest.mark.parametrize("level", ["Strong", "Session", "Bounded", "Eventually", 0, 1, 2, 3])
def test_every_level_reads_its_own_writes(client, level):
    client.create_collection("c", dimension=4, metric_type="L2")
    client.insert("c", [{"id": i, "vector": [float(i)] * 4} for i in range(10)])
    assert client.query("c", "id >= 0", consistency_level=level)[-1]["id"] == 9
    assert client.get("c", [3], consistency_level=level)[0]["id"] == 3
    hits = client.search("c", [[9.0] * 4], limit=1, consistency_level=level)
    assert hits[0][0]["id"] == 9
    client.delete("c", ids=[9])
    assert client.search("c", [[9.0] * 4], limit=1, consistency_level=level)[0][0]["id"] == 8


def test_bad_request_level_is_refused(client):
    client.create_collection("c", dimension=4)
    with pytest.raises(InvalidArgument, match="consistency level"):
        client.query("c", "id >= 0", consistency_level="Sometimes")


def test_strong_read_sees_every_write_acknowledged_before_it(client):
    """A writer thread publishes each acknowledged batch's last id; a Strong count started after
    reading that id must include it (the guarantee is taken after the acknowledgement)."""
    client.create_collection("c", dimension=4, consistency_level="Strong")
    acked = [-1]
    done = threading.Event()

    def writer():
        rng = np.random.default_rng(5)
        for b in range(40):
            rows = [{"id": b * 10 + i, "vector": rng.random(4).tolist()} for i in range(10)]
            client.insert("c", rows)
            acked[0] = b * 10 + 9
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    while not done.is_set():
        seen = acked[0]
        count = client.query("c", "", output_fields=["count(*)"])[0]["count(*)"]
        assert count >= seen + 1
    t.join()
    assert client.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 400
