"""Shaping read results: which fields a request asks for, and gathering them for chosen rows.

``output_fields`` resolves a request's ``output_fields`` (``*``, schema fields, dynamic keys)
against the schema; ``entities`` gathers those fields for some rows of one read part, column by
column (never row by row from storage), into the dicts pymilvus returns.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import Layout
from vecstore.proxy.parts import Part
from vecstore.schema import CollectionSchema, DataType


def entities(part: Part, rows: np.ndarray, fields: list[str], schema: CollectionSchema,
             layout: Layout, dynamic_keys: list[str] | None) -> list[dict[str, Any]]:
    """The output fields of ``rows`` of one part, gathered column by column."""
    table = part.table(layout.pk)
    columns: dict[str, list[Any]] = {}
    for f in fields:
        if f in layout.vectors:
            v = part.vectors(f)[rows]
            columns[f] = ([bytes(r) for r in v] if layout.vectors[f].kind == "binary"
                          else v.tolist())
        else:
            values = table.column(f).take(pa.array(rows)).to_pylist()
            if f != layout.pk and is_json(schema, f):
                values = [None if v is None else json.loads(v) for v in values]
            columns[f] = values
    out = [{f: columns[f][n] for f in fields} for n in range(rows.size)]
    if dynamic_keys is not None and "$meta" in table.column_names:
        metas = table.column("$meta").take(pa.array(rows)).to_pylist()
        for entity, raw in zip(out, metas):
            meta_obj = json.loads(raw or "{}")
            for k in (meta_obj if dynamic_keys == ["*"] else dynamic_keys):
                if k in meta_obj:
                    entity[k] = meta_obj[k]
    return out


def output_fields(schema: CollectionSchema, layout: Layout, requested: Any, default_all: bool
                  ) -> tuple[list[str], list[str] | None]:
    """(schema fields, dynamic keys or ``["*"]`` or None) that ``requested`` names."""
    names = [f.name for f in schema.fields]
    if requested is None:
        requested = ["*"] if default_all else []
    if isinstance(requested, str) or not all(isinstance(f, str) for f in requested):
        raise InvalidArgument("output_fields must be a list of field names")
    fields: list[str] = []
    dynamic: list[str] | None = None
    for f in requested:
        if f == "*":
            fields.extend(n for n in names if n not in fields)
            if layout.dynamic:
                dynamic = ["*"]
        elif f in names:
            if f not in fields:
                fields.append(f)
        elif layout.dynamic:
            dynamic = (dynamic or []) + [f] if dynamic != ["*"] else dynamic
        else:
            raise InvalidArgument(f"field {f} not exist; output_fields names fields of the "
                                  "schema (or dynamic keys when the dynamic field is on)")
    return fields, dynamic


def is_json(schema: CollectionSchema, field: str) -> bool:
    return any(f.name == field and f.dtype == DataType.JSON for f in schema.fields)


def int_param(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high], or InvalidArgument naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not \
            low <= int(value) <= high:
        raise InvalidArgument(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)
