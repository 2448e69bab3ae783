"""Partitions on the read and write paths: which rows a read may see, and where rows go.

Rows carry their partition's name in the hidden ``$partition`` column. A read is restricted by

- the partitions it names (``partition_names``), which must exist and be loaded;
- the load state: a collection can be loaded partially (``load_partitions``), and a read that
  names no partition sees only the loaded ones;
- drops: a dropped partition's rows stay in storage until compaction, so a partition's current
  incarnation owns only rows stamped at or after its creation (``CollectionMeta.partition_ts``),
  and rows of partitions that no longer exist are invisible.

The result is a *rule*: None (no restriction, the common case, costs nothing) or a dict from each
visible partition name to its first visible timestamp. With a partition key field
(``is_partition_key``), rows are routed to ``_default_<i>`` by a hash of the key, and requests may
not name partitions (as in Milvus).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.errors import InvalidArgument, VecstoreError

LOADED = "vecstore.loaded"  # "true": every partition is loaded
LOADED_PARTITIONS = "vecstore.loaded_partitions"  # JSON list, when only some are


class PartitionNotLoaded(VecstoreError):
    code = 101  # Milvus: collection/partition not loaded


def loaded_partitions(meta: Any) -> set[str] | None:
    """The loaded partitions of a collection; None when all of them are loaded."""
    if meta.properties.get(LOADED) == "true":
        return None
    return set(json.loads(meta.properties.get(LOADED_PARTITIONS, "[]"))) & set(meta.partitions)


def partition_key_field(meta: Any) -> str | None:
    for f in meta.schema.get("fields", []):
        if f.get("is_partition_key"):
            return str(f["name"])
    return None


def read_rule(meta: Any, names: object, ignore_load: bool = False) -> dict[str, int] | None:
    """The partition rule of a read naming ``names`` (None or [] for all loaded partitions, or
    all partitions with ``ignore_load``)."""
    if names is not None and names != []:
        if isinstance(names, str) or not isinstance(names, (list, tuple)) or \
                not all(isinstance(n, str) for n in names):
            raise InvalidArgument("partition_names must be a list of partition names")
        if partition_key_field(meta) is not None:
            raise InvalidArgument("not support manually specifying the partition names if "
                                  "partition key mode is used; filter on the partition key "
                                  "field instead")
        for n in names:
            if n not in meta.partitions:
                raise InvalidArgument(f"partition not found[partition={n}]")
    loaded = None if ignore_load else loaded_partitions(meta)
    if names:
        wanted = list(dict.fromkeys(names))
        if loaded is not None:
            missing = [n for n in wanted if n not in loaded]
            if missing:
                raise PartitionNotLoaded(f"partition not loaded[partition={missing[0]}]: call "
                                         "load_partitions (or load_collection) first")
    elif loaded is not None:
        wanted = [p for p in meta.partitions if p in loaded]
    else:
        since = meta.partition_visible()
        return since  # None unless a partition was ever dropped
    return {p: meta.partition_ts.get(p, 0) if meta.partitions_dropped else 0 for p in wanted}


def rule_mask(partition_column: pa.ChunkedArray | pa.Array, timestamps: np.ndarray,
              rule: dict[str, int]) -> np.ndarray:
    """Rows whose partition is in ``rule`` and whose timestamp is at or after its entry."""
    encoded = pc.dictionary_encode(partition_column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = encoded.dictionary.to_pylist()
    # Per distinct name (a handful), its first visible timestamp; absent names can never match.
    never = np.iinfo(np.uint64).max
    first = np.array([rule.get(n, never) for n in names], np.uint64)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return timestamps >= first[codes] if len(names) else np.zeros(len(timestamps), bool)


def route(meta: Any, table: pa.Table, partition: str | None) -> pa.Array:
    """The partition of every row of a validated insert batch, as a string array."""
    n = table.num_rows
    key = partition_key_field(meta)
    if key is None:
        part = partition or "_default"
        if part not in meta.partitions:
            raise InvalidArgument(f"partition not found[partition={part}]")
        return pa.repeat(pa.scalar(part, pa.string()), n)
    if partition:
        raise InvalidArgument("not support manually specifying the partition names if partition "
                              "key mode is used; rows go to the partition their key hashes to")
    buckets = key_buckets(table.column(key), len(meta.partitions))
    names = np.array(sorted(meta.partitions, key=lambda p: int(p.rsplit("_", 1)[1])))
    return pa.array(names[buckets], type=pa.string())


def key_buckets(column: pa.ChunkedArray, partitions: int) -> np.ndarray:
    """Bucket (0..partitions-1) of every partition-key value: integers by a multiplicative hash,
    strings by CRC-32 of their UTF-8 bytes (computed once per distinct value). Nulls go to 0."""
    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_integer(col.type):
        v = col.fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint64)
        mixed = (v * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
        return (mixed % np.uint64(partitions)).astype(np.int64)
    encoded = pc.dictionary_encode(col.fill_null(""))
    crc = np.array([zlib.crc32(s.encode()) % partitions for s in encoded.dictionary.to_pylist()],
                   dtype=np.int64)
    return crc[encoded.indices.to_numpy(zero_copy_only=False)] if len(crc) else \
        np.zeros(len(col), np.int64)
