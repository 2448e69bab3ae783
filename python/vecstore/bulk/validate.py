"""A chunk of imported rows through insert's validation, with bad rows reported or skipped.

:func:`validate_chunk` applies exactly what ``insert`` applies (``CollectionSchema.validate_rows``
for JSON rows, ``validate_columns`` for Parquet batches and NumPy arrays): types, dims, lengths,
nulls and defaults, the dynamic field, auto_id keys, duplicate keys within the chunk. It returns
the canonical Arrow table.

A bad row raises :class:`BadRow` naming the file and the row (0-based among the file's rows).
With ``skip=True`` bad rows are dropped instead and returned with their reasons: rows are
bisected (a half that validates is kept whole), so a chunk with ``b`` bad rows costs about
``b * log2(batch)`` validations of shrinking parts, then one validation of the rows kept, which
catches what only shows between rows (a key repeated within the chunk: the later row goes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.bulk.sources import BadLine, Chunk
from vecstore.errors import InvalidArgument


class BadRow(InvalidArgument):
    """A row of an import file does not fit the collection's schema."""

    def __init__(self, source: str, row: int | None, message: str) -> None:
        where = f"{source}, row {row} (0-based)" if row is not None else source
        super().__init__(f"{where}: {message}")
        self.source = source
        self.row = row


def _reason(e: InvalidArgument) -> str:
    """The error's message without the batch-relative row prefix DataError adds."""
    text = str(e)
    field, row = getattr(e, "field", None), getattr(e, "row", None)
    where = [f"field {field!r}"] if field is not None else []
    if row is not None:
        prefix = ", ".join(where + [f"row {row}"]) + ": "
        if text.startswith(prefix):
            text = (where[0] + ": " if where else "") + text[len(prefix):]
    return text


def _subset(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, pa.RecordBatch):
        return data.take(pa.array(idx, pa.int64()))
    if isinstance(data, dict):
        return {k: v[idx] for k, v in data.items()}
    return [data[i] for i in idx]


def _validate(schema: Any, data: Any) -> pa.Table:
    if isinstance(data, list):
        bad = next((i for i, r in enumerate(data) if isinstance(r, BadLine)), None)
        if bad is not None:
            err = InvalidArgument(data[bad].error)
            err.row = bad  # type: ignore[attr-defined]
            raise err
        return schema.validate_rows(data)
    return schema.validate_columns(data)


def validate_chunk(schema: Any, chunk: Chunk, source: str, skip: bool
                   ) -> tuple[pa.Table, list[tuple[int, str]]]:
    """(canonical table of the chunk's valid rows, [(file row, reason) of skipped rows])."""
    try:
        return _validate(schema, chunk.data), []
    except InvalidArgument as e:
        if not skip:
            row = getattr(e, "row", None)
            raise BadRow(source, None if row is None else chunk.start + row, _reason(e)) from None
    bad: list[tuple[int, str]] = []

    def keep(idx: np.ndarray) -> list[np.ndarray]:
        try:
            _validate(schema, _subset(chunk.data, idx))
            return [idx]
        except InvalidArgument as e:
            if len(idx) == 1:
                bad.append((chunk.start + int(idx[0]), _reason(e)))
                return []
            mid = len(idx) // 2
            return keep(idx[:mid]) + keep(idx[mid:])

    parts = keep(np.arange(chunk.rows))
    kept = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    while True:
        try:
            table = _validate(schema, _subset(chunk.data, kept))
            break
        except InvalidArgument as e:
            row = getattr(e, "row", None)
            if row is None:  # every row passes alone and the error names none: cannot skip
                raise BadRow(source, None, _reason(e)) from None
            bad.append((chunk.start + int(kept[row]), _reason(e)))
            kept = np.delete(kept, row)
    bad.sort()
    return table, bad
