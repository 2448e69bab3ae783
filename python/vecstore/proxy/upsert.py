"""Partial upsert (``upsert(partial_update=True)``, Milvus's merge mode, 2.6.2+).

The request carries the primary key and only the fields to change. As Milvus does, the proxy reads
the stored entities of those keys, overlays the request's fields on each (dynamic-field keys are
merged key by key), and upserts the complete rows; keys not stored yet become plain inserts, so
they must carry every field that has no default and is not nullable. The read and the write are
two steps, as in Milvus: a concurrent writer to the same key between them can be overwritten.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.errors import InvalidArgument


def request_rows(data: Any) -> list[dict[str, Any]]:
    """The request as row dicts, whatever form it came in (rows, columns, Arrow, pandas)."""
    if isinstance(data, dict) and not any(
            isinstance(v, (list, tuple, np.ndarray)) for v in data.values()):
        return [dict(data)]
    if isinstance(data, list):
        if not all(isinstance(r, dict) for r in data):
            raise InvalidArgument("upsert rows must be dicts of field name to value")
        return [dict(r) for r in data]
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return data.to_pylist()
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas.DataFrame
        return data.to_dict(orient="records")
    if isinstance(data, dict):
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1:
            raise InvalidArgument("columns of an upsert must all have the same length")
        n = lengths.pop()
        return [{k: v[i] for k, v in data.items()} for i in range(n)]
    raise InvalidArgument(f"upsert data must be rows (list of dicts) or columns, got "
                          f"{type(data).__name__}")


def check_rows(rows: list[dict[str, Any]], pk: str) -> None:
    """A partial upsert's rows all carry the primary key and the same set of fields."""
    if not rows:
        raise InvalidArgument("upsert needs at least one row")
    fields = set(rows[0])
    if pk not in fields:
        raise InvalidArgument(f"partial upsert needs the primary key field {pk!r} in every row")
    for n, r in enumerate(rows):
        if set(r) != fields:
            raise InvalidArgument(
                f"partial upsert rows must all carry the same fields: row 0 has "
                f"{sorted(fields)}, row {n} has {sorted(r)}")


def merge_rows(rows: list[dict[str, Any]], stored: list[dict[str, Any]], pk: str
               ) -> list[dict[str, Any]]:
    """Each request row (checked by :func:`check_rows`) laid over the stored entity with its key,
    if there is one; dynamic-field keys merge one by one because stored rows carry them flat."""
    by_pk = {r[pk]: r for r in stored}
    merged = []
    for r in rows:
        base = by_pk.get(r[pk])
        merged.append(r if base is None else {**base, **r})
    return merged
