"""What the MilvusClient modules share: its errors, ``IndexParams``, and argument checks."""

from __future__ import annotations

from typing import Any

from vecstore.errors import InvalidArgument, NotSupported, VecstoreError  # noqa: F401 (re-export)
from vecstore.schema import CollectionSchema


class CollectionNotLoaded(VecstoreError):
    code = 101


class IndexParams(list):
    """``MilvusClient.prepare_index_params()``: a list of index descriptions."""

    def add_index(self, field_name: str, index_type: str = "", index_name: str = "",
                  metric_type: str | None = None, params: dict | None = None, **kwargs: Any
                  ) -> None:
        self.append({"field_name": field_name, "index_type": (index_type or "").upper(),
                     "index_name": index_name or field_name, "metric_type": metric_type,
                     "params": dict(params or {}), **kwargs})


def key_partitions(schema: CollectionSchema, num_partitions: object) -> list[str] | None:
    """The partitions of a new collection: Milvus gives a partition-key collection
    ``num_partitions`` (default 16) partitions named ``_default_<i>``; others start with
    ``_default`` alone."""
    if not any(f.is_partition_key for f in schema.fields):
        if num_partitions is not None:
            raise InvalidArgument("num_partitions should only be specified with partition key "
                                  "field enabled")
        return None
    n = 16 if num_partitions is None else num_partitions
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
        raise InvalidArgument(f"num_partitions must be an int in [1, 1024], got {n!r}")
    return [f"_default_{i}" for i in range(n)]


def replicas(value: object) -> None:
    """``replica_number``: an embedded deployment serves one replica of everything."""
    if value is not None and value != 1:
        raise NotSupported(f"replica_number={value!r}: an embedded deployment has one query node, "
                           "so it loads exactly one replica; pass 1 or leave it out")


def reject(kwargs: dict[str, Any], method: str, allowed: tuple[str, ...] = ()) -> None:
    extra = sorted(k for k, v in kwargs.items() if k not in allowed and v is not None)
    if extra:
        raise NotSupported(f"{method}: parameter(s) {extra} are not supported by vecstore yet")


def iterator_filter(method: str, flt: object, params: object, reserved: str
                    ) -> tuple[str, dict]:
    """An iterator's ``filter`` and ``filter_params``, checked; ``reserved`` is the template name
    the iterator adds to the filter itself (its cursor or exclusion list)."""
    if flt is None:
        flt = ""
    if not isinstance(flt, str):
        raise InvalidArgument(f"{method}: filter must be a string, got {type(flt).__name__}")
    if params is not None and not isinstance(params, dict):
        raise InvalidArgument(f"{method}: filter_params must be a dict")
    if params and reserved in params:
        raise InvalidArgument(f"{method}: filter_params may not use the reserved name "
                              f"{reserved!r}")
    return flt, dict(params or {})
