"""The catalog: databases, collections, partitions and aliases, kept in the meta store.

Keys (values are JSON)::

    catalog/seq                   last issued collection id
    catalog/db/<db>               {"created_ts", "properties"}  ("default" is implicit)
    catalog/col/<db>/<name>       CollectionMeta as JSON
    catalog/alias/<db>/<alias>    {"collection": <name>}

Every change is one meta-store transaction guarded by compares (etcd style), so concurrent DDL
from several proxies cannot interleave: creating a collection checks that neither a collection
nor an alias has the name; dropping one checks that no alias points at it (Milvus refuses to drop
a collection with aliases). Names are validated with Milvus's rules before anything is written.
Thread-safe as far as the meta store is.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

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
from vecstore.schema import CollectionSchema, validate_collection_name
from vecstore.schema.verify import name_problem
from vecstore.storage.meta import Compare, Delete, MetaStore, Put

DEFAULT_DB = "default"
DEFAULT_PARTITION = "_default"
MAX_PARTITIONS = 1024  # Milvus rootCoord.maxPartitionNum
MAX_DATABASES = 64  # Milvus rootCoord.maxDatabaseNum
_SEQ = "catalog/seq"


@dataclass
class CollectionMeta:
    """What the catalog records of a collection (the schema as its describe dict)."""

    id: int
    name: str
    db: str
    schema: dict[str, Any]
    created_ts: int
    consistency_level: str = "Bounded"
    num_shards: int = 1
    properties: dict[str, str] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=lambda: [DEFAULT_PARTITION])
    # Creation timestamp of each partition's current incarnation (absent: 0). Rows stay tagged
    # with their partition's name, so after a drop (and a re-create under the same name) only
    # rows stamped at or after the current incarnation's creation belong to it.
    partition_ts: dict[str, int] = field(default_factory=dict)
    partitions_dropped: int = 0  # how many drops happened: 0 lets reads skip the check

    def partition_visible(self) -> dict[str, int] | None:
        """None when every stored row belongs to a live partition (nothing was ever dropped);
        otherwise each live partition's first visible timestamp."""
        if not self.partitions_dropped:
            return None
        return {p: self.partition_ts.get(p, 0) for p in self.partitions}

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CollectionMeta:
        return cls(**json.loads(raw))

    def collection_schema(self) -> CollectionSchema:
        return CollectionSchema.from_dict(self.schema)


def next_counter(meta: MetaStore, key: str) -> int:
    """Increments the integer counter at ``key`` (absent = 0) with compare-and-put, so concurrent
    callers, in this process or another, always get distinct values; returns the new value."""
    while True:
        raw = meta.get(key)
        cur = int(raw) if raw else 0
        cmp = Compare.absent(key) if raw is None else Compare.value_equals(key, raw)
        if meta.txn([cmp], [Put(key, str(cur + 1).encode())]).succeeded:
            return cur + 1


def _check_partition_name(name: object) -> None:
    """Milvus's validatePartitionTag: the collection-name rules, worded for partitions."""
    if not isinstance(name, str) or not name:
        raise InvalidArgument("partition name should not be empty; pass a non-empty str")
    if name_problem(name) is not None:
        raise InvalidArgument(
            f"Invalid partition name: {name}. The first character of a partition name must be an "
            "underscore or letter, the rest letters, digits or underscores, at most 255 characters"
        )


def _col_key(db: str, name: str) -> str:
    return f"catalog/col/{db}/{name}"


def _alias_key(db: str, alias: str) -> str:
    return f"catalog/alias/{db}/{alias}"


def _db_key(db: str) -> str:
    return f"catalog/db/{db}"


class Catalog:
    """DDL over a MetaStore. All methods raise VecstoreError subclasses before changing anything
    when an argument is bad or a name is missing or taken."""

    def __init__(self, meta: MetaStore) -> None:
        self._meta = meta
        self._cache: dict[tuple[str, str], CollectionMeta] = {}  # see resolve
        self._generation = 0  # bumped by every write, under _cache_mu
        self._cache_mu = threading.Lock()

    # Every catalog write goes through these: the resolve cache is cleared after the write (a
    # resolve racing the write may cache the old value only until this clear).
    def _invalidate(self) -> None:
        with self._cache_mu:
            self._generation += 1
            self._cache.clear()

    def _txn(self, compares: list, ops: list) -> Any:
        try:
            return self._meta.txn(compares, ops)
        finally:
            self._invalidate()

    def _put(self, key: str, value: bytes) -> None:
        try:
            self._meta.put(key, value)
        finally:
            self._invalidate()

    def _delete(self, key: str) -> None:
        try:
            self._meta.delete(key)
        finally:
            self._invalidate()

    # ---- databases ---------------------------------------------------------------------------

    def _check_db_name(self, db: object) -> str:
        if not isinstance(db, str) or not db or name_problem(db) is not None:
            raise DatabaseNameInvalid(
                f"invalid database name {db!r}: the first character must be a letter or an "
                "underscore, then letters, digits or underscores, at most 255 characters"
            )
        return db

    def _require_db(self, db: str) -> str:
        self._check_db_name(db)
        if db != DEFAULT_DB and self._meta.get(_db_key(db)) is None:
            raise DatabaseNotFound(f"database not found[database={db}]")
        return db

    def list_databases(self) -> list[str]:
        names = [k[len("catalog/db/"):] for k, _ in self._meta.scan("catalog/db/")]
        return [DEFAULT_DB] + sorted(n for n in names if n != DEFAULT_DB)

    def create_database(self, db: str, ts: int, properties: dict[str, str] | None = None) -> None:
        self._check_db_name(db)
        if db == DEFAULT_DB or self._meta.get(_db_key(db)) is not None:
            raise InvalidArgument(f"database already exist: {db}")
        if len(self.list_databases()) >= MAX_DATABASES:
            raise InvalidArgument(
                f"exceeded the limit number of database: at most {MAX_DATABASES} databases; "
                "drop one first")
        value = json.dumps({"created_ts": ts, "properties": properties or {}}).encode()
        if not self._txn([Compare.absent(_db_key(db))], [Put(_db_key(db), value)]).succeeded:
            raise InvalidArgument(f"database already exist: {db}")

    def drop_database(self, db: str) -> None:
        self._require_db(db)
        if db == DEFAULT_DB:
            raise InvalidArgument("can not drop default database")
        if self.list_collections(db):
            raise InvalidArgument(
                f"database:{db} not empty, must drop all collections before drop database")
        self._delete(_db_key(db))

    def describe_database(self, db: str) -> dict[str, Any]:
        self._require_db(db)
        raw = self._meta.get(_db_key(db))
        info = json.loads(raw) if raw else {"created_ts": 0, "properties": {}}
        return {"name": db, **info["properties"]}

    def alter_database_properties(self, db: str, set_: dict[str, Any], drop: list[str]) -> None:
        """Sets then removes database properties in one compare-guarded write (the default
        database gets a record on its first change)."""
        self._require_db(db)
        key = _db_key(db)
        raw = self._meta.get(key)
        info = json.loads(raw) if raw else {"created_ts": 0, "properties": {}}
        info["properties"].update({str(k): str(v) for k, v in set_.items()})
        for k in drop:
            info["properties"].pop(str(k), None)
        guard = Compare.absent(key) if raw is None else Compare.value_equals(key, raw)
        if not self._txn([guard], [Put(key, json.dumps(info).encode())]).succeeded:
            raise InvalidArgument(f"database {db} changed concurrently; retry")

    # ---- collections -------------------------------------------------------------------------

    def _next_id(self) -> int:
        return next_counter(self._meta, _SEQ)

    def create_collection(self, db: str, name: str, schema: CollectionSchema, ts: int, *,
                          consistency_level: str = "Bounded", num_shards: int = 1,
                          properties: dict[str, str] | None = None,
                          partitions: list[str] | None = None) -> CollectionMeta:
        """Records a verified schema. Creating a collection that exists with the same schema
        returns the existing one (Milvus is idempotent there); a different schema is an error."""
        self._require_db(db)
        validate_collection_name(name)
        schema.verify(name)
        schema = CollectionSchema.from_dict(schema.to_dict()).assign_field_ids()
        existing = self._meta.get(_col_key(db, name))
        if existing is not None:
            meta = CollectionMeta.from_json(existing)
            if meta.schema == schema.to_dict():
                return meta
            raise InvalidArgument(
                f"create duplicate collection with different parameters, collection: {name}")
        if self._meta.get(_alias_key(db, name)) is not None:
            raise AliasConflict(
                f"alias and collection name conflict: {name} is an alias; pick another name")
        meta = CollectionMeta(
            id=self._next_id(), name=name, db=db, schema=schema.to_dict(), created_ts=ts,
            consistency_level=consistency_level, num_shards=num_shards,
            properties=dict(properties or {}),
            partitions=list(partitions or [DEFAULT_PARTITION]))
        ok = self._txn(
            [Compare.absent(_col_key(db, name)), Compare.absent(_alias_key(db, name))],
            [Put(_col_key(db, name), meta.to_json())],
        ).succeeded
        if not ok:
            raise InvalidArgument(f"collection {name} was created concurrently; retry")
        return meta

    def resolve(self, db: str, name: str) -> CollectionMeta:
        """The collection called ``name`` (or the one the alias ``name`` points at).

        Cached: every request resolves its collection, and two meta-store reads per request cost
        more than an exact search's bookkeeping. The cache is cleared on every catalog write;
        the data directory's lock makes this catalog the only writer (a multi-process catalog
        must invalidate from the meta store's watch instead). Callers must not mutate the
        returned object (DDL copies it first, see ``_update``)."""
        cached = self._cache.get((db, name))
        if cached is not None:
            return cached
        generation = self._generation
        self._require_db(db)
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"collection name must be a non-empty string, got {name!r}")
        raw = self._meta.get(_col_key(db, name))
        if raw is None:
            alias = self._meta.get(_alias_key(db, name))
            if alias is not None:
                raw = self._meta.get(_col_key(db, json.loads(alias)["collection"]))
        if raw is None:
            raise CollectionNotFound(
                f"can't find collection[database={db}][collection={name}]")
        meta = CollectionMeta.from_json(raw)
        with self._cache_mu:
            if generation == self._generation:  # no write since the reads above
                self._cache[(db, name)] = meta
        return meta

    def has_collection(self, db: str, name: str) -> bool:
        try:
            self.resolve(db, name)
        except CollectionNotFound:
            return False
        return True

    def list_collections(self, db: str = DEFAULT_DB) -> list[str]:
        self._require_db(db)
        prefix = f"catalog/col/{db}/"
        return sorted(k[len(prefix):] for k, _ in self._meta.scan(prefix))

    def aliases_of(self, db: str, name: str) -> list[str]:
        prefix = f"catalog/alias/{db}/"
        return sorted(k[len(prefix):] for k, v in self._meta.scan(prefix)
                      if json.loads(v)["collection"] == name)

    def drop_collection(self, db: str, name: str) -> CollectionMeta | None:
        """Removes a collection; dropping a missing one is a no-op (as in Milvus). Returns the
        dropped meta so the caller can release its data."""
        self._require_db(db)
        raw = self._meta.get(_col_key(db, name))
        if raw is None:
            return None
        aliases = self.aliases_of(db, name)
        if aliases:
            raise InvalidArgument(
                f"unable to drop the collection [{name}] because it has aliases {aliases}, "
                "please remove all aliases before dropping the collection")
        self._txn([Compare.value_equals(_col_key(db, name), raw)],
                       [Delete(_col_key(db, name))])
        return CollectionMeta.from_json(raw)

    def rename_collection(self, db: str, old: str, new: str, new_db: str | None = None) -> None:
        target_db = self._require_db(new_db or db)
        meta = self.resolve(db, old)
        if meta.name != old:
            raise InvalidArgument(f"{old} is an alias; rename the collection it points at")
        validate_collection_name(new)
        if self.has_collection(target_db, new):
            raise InvalidArgument(f"duplicated new collection name {new} in database {target_db}")
        if self.aliases_of(db, old):
            raise InvalidArgument(
                f"unable to rename collection {old} because it has aliases; drop them first")
        old_raw = meta.to_json()
        meta.name, meta.db = new, target_db
        ok = self._txn(
            [Compare.value_equals(_col_key(db, old), old_raw),
             Compare.absent(_col_key(target_db, new))],
            [Delete(_col_key(db, old)), Put(_col_key(target_db, new), meta.to_json())],
        ).succeeded
        if not ok:
            raise InvalidArgument(f"collection {old} changed concurrently; retry")

    def _update(self, before: CollectionMeta, after: CollectionMeta) -> None:
        key = _col_key(before.db, before.name)
        ok = self._txn([Compare.value_equals(key, before.to_json())],
                            [Put(key, after.to_json())]).succeeded
        if not ok:
            raise InvalidArgument(f"collection {before.name} changed concurrently; retry")

    def alter_properties(self, db: str, name: str, properties: dict[str, str]) -> None:
        meta = self.resolve(db, name)
        after = CollectionMeta.from_json(meta.to_json())
        after.properties.update({str(k): str(v) for k, v in properties.items()})
        self._update(meta, after)

    def drop_properties(self, db: str, name: str, keys: list[str]) -> None:
        """Removes properties (absent keys are ignored, as Milvus does)."""
        meta = self.resolve(db, name)
        after = CollectionMeta.from_json(meta.to_json())
        for k in keys:
            after.properties.pop(str(k), None)
        self._update(meta, after)

    # ---- partitions --------------------------------------------------------------------------

    def create_partition(self, db: str, collection: str, partition: str, ts: int = 0) -> None:
        meta = self.resolve(db, collection)
        _check_partition_name(partition)
        if any(f.get("is_partition_key") for f in meta.schema.get("fields", [])):
            raise InvalidArgument(
                "disable create partition if partition key mode is used")
        if partition in meta.partitions:
            return  # Milvus: creating an existing partition succeeds
        if len(meta.partitions) >= MAX_PARTITIONS:
            raise InvalidArgument(
                f"partition number ({len(meta.partitions)}) exceeds max configuration "
                f"({MAX_PARTITIONS}), collection: {collection}")
        after = CollectionMeta.from_json(meta.to_json())
        after.partitions.append(partition)
        if ts:
            after.partition_ts[partition] = ts
        self._update(meta, after)

    def drop_partition(self, db: str, collection: str, partition: str) -> None:
        meta = self.resolve(db, collection)
        if partition == DEFAULT_PARTITION:
            raise InvalidArgument("default partition cannot be deleted")
        if partition not in meta.partitions:
            return
        if any(f.get("is_partition_key") for f in meta.schema.get("fields", [])):
            raise InvalidArgument("disable drop partition if partition key mode is used")
        after = CollectionMeta.from_json(meta.to_json())
        after.partitions.remove(partition)
        after.partition_ts.pop(partition, None)
        after.partitions_dropped += 1
        self._update(meta, after)

    def has_partition(self, db: str, collection: str, partition: str) -> bool:
        return partition in self.resolve(db, collection).partitions

    def list_partitions(self, db: str, collection: str) -> list[str]:
        return list(self.resolve(db, collection).partitions)

    def require_partition(self, db: str, collection: str, partition: str) -> None:
        if partition not in self.resolve(db, collection).partitions:
            raise PartitionNotFound(f"partition not found[partition={partition}]")

    # ---- aliases -----------------------------------------------------------------------------

    def create_alias(self, db: str, collection: str, alias: str) -> None:
        meta = self.resolve(db, collection)
        if meta.name != collection:
            raise InvalidArgument(f"{collection} is an alias; aliases point at collections")
        validate_collection_name(alias)
        if self._meta.get(_col_key(db, alias)) is not None:
            raise AliasConflict(
                f"alias and collection name conflict: a collection is named {alias}")
        existing = self._meta.get(_alias_key(db, alias))
        if existing is not None:
            if json.loads(existing)["collection"] == collection:
                return
            raise AliasAlreadyExists(
                f"alias already exist: {alias} points at {json.loads(existing)['collection']}; "
                "use alter_alias to move it")
        value = json.dumps({"collection": collection}).encode()
        if not self._txn([Compare.absent(_alias_key(db, alias)),
                               Compare.absent(_col_key(db, alias))],
                              [Put(_alias_key(db, alias), value)]).succeeded:
            raise AliasAlreadyExists(f"alias already exist: {alias}")

    def alter_alias(self, db: str, collection: str, alias: str) -> None:
        meta = self.resolve(db, collection)
        if meta.name != collection:
            raise InvalidArgument(f"{collection} is an alias; aliases point at collections")
        if self._meta.get(_alias_key(db, alias)) is None:
            raise AliasNotFound(f"alias not found[database={db}][alias={alias}]")
        self._put(_alias_key(db, alias), json.dumps({"collection": collection}).encode())

    def drop_alias(self, db: str, alias: str) -> None:
        self._require_db(db)
        self._delete(_alias_key(db, alias))  # dropping a missing alias succeeds, as in Milvus

    def describe_alias(self, db: str, alias: str) -> dict[str, str]:
        self._require_db(db)
        raw = self._meta.get(_alias_key(db, alias))
        if raw is None:
            raise AliasNotFound(f"alias not found[database={db}][alias={alias}]")
        return {"alias": alias, "collection_name": json.loads(raw)["collection"], "db_name": db}

    def list_aliases(self, db: str, collection: str = "") -> dict[str, Any]:
        self._require_db(db)
        if collection:
            self.resolve(db, collection)
            return {"aliases": self.aliases_of(db, collection), "collection_name": collection,
                    "db_name": db}
        prefix = f"catalog/alias/{db}/"
        return {"aliases": sorted(k[len(prefix):] for k, _ in self._meta.scan(prefix)),
                "collection_name": "", "db_name": db}
