"""The catalog: Milvus's DDL semantics for databases, collections, partitions and aliases."""

from __future__ import annotations

import threading

import pytest

from vecstore.coordinator.catalog import Catalog
from vecstore.coordinator.errors import (
    AliasAlreadyExists,
    AliasConflict,
    AliasNotFound,
    CollectionNotFound,
    DatabaseNameInvalid,
    DatabaseNotFound,
    PartitionNotFound,
)
from vecstore.errors import InvalidArgument
from vecstore.schema import CollectionSchema, DataType
from vecstore.storage.meta import SqliteMetaStore


def schema(dim=8):
    s = CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    return s


@pytest.fixture
def cat(tmp_path):
    meta = SqliteMetaStore(str(tmp_path / "meta.sqlite"))
    yield Catalog(meta)
    meta.close()


def test_collections_lifecycle_and_persistence(tmp_path):
    with SqliteMetaStore(str(tmp_path / "m.sqlite")) as meta:
        cat = Catalog(meta)
        a = cat.create_collection("default", "docs", schema(), ts=1)
        b = cat.create_collection("default", "imgs", schema(16), ts=2)
        assert a.id != b.id
        assert cat.create_collection("default", "docs", schema(), ts=3).id == a.id  # idempotent
        with pytest.raises(InvalidArgument, match="different parameters"):
            cat.create_collection("default", "docs", schema(4), ts=4)
    with SqliteMetaStore(str(tmp_path / "m.sqlite")) as meta:
        cat = Catalog(meta)
        assert cat.list_collections() == ["docs", "imgs"]
        got = cat.resolve("default", "docs")
        assert got.id == a.id and got.partitions == ["_default"]
        assert got.collection_schema().to_dict() == schema().assign_field_ids().to_dict()
        assert [f["field_id"] for f in got.schema["fields"]] == [100, 101]
        assert cat.drop_collection("default", "docs").id == a.id
        assert cat.drop_collection("default", "docs") is None
        assert not cat.has_collection("default", "docs")
        with pytest.raises(CollectionNotFound) as e:
            cat.resolve("default", "docs")
        assert e.value.code == 100


def test_bad_names_change_nothing(cat):
    for bad in ("1abc", "a-b", "", "x" * 256, "has space"):
        with pytest.raises(InvalidArgument):
            cat.create_collection("default", bad, schema(), ts=1)
    assert cat.list_collections() == []
    with pytest.raises(DatabaseNameInvalid):
        cat.create_database("bad-name", ts=1)


def test_databases(cat):
    cat.create_database("analytics", ts=1, properties={"owner": "me"})
    assert cat.list_databases() == ["default", "analytics"]
    with pytest.raises(InvalidArgument, match="already exist"):
        cat.create_database("analytics", ts=2)
    cat.create_collection("analytics", "docs", schema(), ts=3)
    assert cat.list_collections("analytics") == ["docs"] and cat.list_collections() == []
    with pytest.raises(InvalidArgument, match="not empty"):
        cat.drop_database("analytics")
    cat.drop_collection("analytics", "docs")
    cat.drop_database("analytics")
    with pytest.raises(DatabaseNotFound):
        cat.list_collections("analytics")
    with pytest.raises(InvalidArgument, match="can not drop default database"):
        cat.drop_database("default")
    assert cat.describe_database("default")["name"] == "default"


def test_partitions(cat):
    cat.create_collection("default", "docs", schema(), ts=1)
    with pytest.raises(InvalidArgument, match="Invalid partition name: 2024"):
        cat.create_partition("default", "docs", "2024")
    cat.create_partition("default", "docs", "y2024")
    cat.create_partition("default", "docs", "y2024")  # existing: fine
    assert cat.list_partitions("default", "docs") == ["_default", "y2024"]
    assert cat.has_partition("default", "docs", "y2024")
    with pytest.raises(InvalidArgument, match="default partition cannot be deleted"):
        cat.drop_partition("default", "docs", "_default")
    cat.drop_partition("default", "docs", "y2024")
    with pytest.raises(PartitionNotFound):
        cat.require_partition("default", "docs", "y2024")
    keyed = CollectionSchema()
    keyed.add_field("id", DataType.INT64, is_primary=True)
    keyed.add_field("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True)
    keyed.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    cat.create_collection("default", "keyed", keyed, ts=2)
    with pytest.raises(InvalidArgument, match="partition key"):
        cat.create_partition("default", "keyed", "p1")


def test_aliases(cat):
    cat.create_collection("default", "docs", schema(), ts=1)
    cat.create_collection("default", "docs2", schema(), ts=2)
    cat.create_alias("default", "docs", "prod")
    assert cat.resolve("default", "prod").name == "docs"
    assert cat.describe_alias("default", "prod") == {
        "alias": "prod", "collection_name": "docs", "db_name": "default"}
    with pytest.raises(AliasAlreadyExists) as e:
        cat.create_alias("default", "docs2", "prod")
    assert e.value.code == 1602
    with pytest.raises(AliasConflict):
        cat.create_alias("default", "docs", "docs2")
    with pytest.raises(AliasConflict):
        cat.create_collection("default", "prod", schema(), ts=3)
    with pytest.raises(InvalidArgument, match="has aliases"):
        cat.drop_collection("default", "docs")
    cat.alter_alias("default", "docs2", "prod")
    assert cat.list_aliases("default", "docs2")["aliases"] == ["prod"]
    assert cat.list_aliases("default", "docs")["aliases"] == []
    with pytest.raises(AliasNotFound):
        cat.alter_alias("default", "docs", "nope")
    cat.drop_alias("default", "prod")
    cat.drop_alias("default", "prod")
    with pytest.raises(AliasNotFound):
        cat.describe_alias("default", "prod")
    cat.drop_collection("default", "docs")


def test_rename(cat):
    cat.create_collection("default", "old", schema(), ts=1)
    cat.create_database("other", ts=2)
    cat.rename_collection("default", "old", "new")
    assert cat.list_collections() == ["new"]
    cat.rename_collection("default", "new", "moved", new_db="other")
    assert cat.list_collections("other") == ["moved"] and cat.list_collections() == []
    with pytest.raises(CollectionNotFound):
        cat.rename_collection("default", "new", "x")


def test_concurrent_creates_get_distinct_ids(cat):
    ids = []

    def make(i):
        ids.append(cat.create_collection("default", f"c{i}", schema(), ts=i).id)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 9))
