"""Proxy: the embedded access layer. Validates every request completely before any side effect,
routes writes to the collection's shard (streaming node), fans reads out to the query node's
sealed segments and the shard's growing data, applies MVCC, filters and partitions through one
allow-mask per part, merges top-k lists and shapes results the way pymilvus returns them.

The proxy holds no data; it gets the roles it talks to at construction (the in-process wiring in
:mod:`vecstore.transport.embedded`), and never imports their modules.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.common.mvcc import visible
from vecstore.common.pks import pks_to_numpy
from vecstore.errors import InvalidArgument
from vecstore.proxy.convert import PARTITION_COLUMN, Layout, query_vectors, split_batch
from vecstore.proxy.parts import Part, growing_part, sealed_part
from vecstore.proxy.reduce import merge_topk_sources
from vecstore.schema import CollectionSchema, DataType

_METRICS = {"L2", "IP", "COSINE", "HAMMING", "JACCARD"}


def _filter_schema(schema: CollectionSchema) -> Any:
    from vecstore.expr import Schema

    fields = []
    for f in schema.fields:
        entry = {"name": f.name, "type": DataType(f.dtype).name,
                 "nullable": bool(getattr(f, "nullable", False))}
        et = f.params.get("element_type") if hasattr(f, "params") else None
        if f.dtype == DataType.ARRAY:
            entry["element_type"] = DataType(f.element_type).name
        elif et is not None:
            entry["element_type"] = et
        fields.append(entry)
    return Schema.from_dict({"fields": fields, "primary_key": schema.primary_field.name,
                             "enable_dynamic_field": schema.enable_dynamic_field})


class Proxy:
    def __init__(self, coordinator: Any, streaming: Any, query: Any) -> None:
        self._coord = coordinator
        self._streaming = streaming
        self._query = query
        self._schemas: dict[int, tuple[CollectionSchema, Layout, Any]] = {}

    # ---- helpers -----------------------------------------------------------------------------

    def collection(self, db: str, name: str) -> tuple[Any, CollectionSchema, Layout]:
        meta = self._coord.catalog.resolve(db, name)
        cached = self._schemas.get(meta.id)
        if cached is None:
            schema = meta.collection_schema()
            cached = (schema, Layout.of(schema), None)
            self._schemas[meta.id] = cached
        return meta, cached[0], cached[1]

    def _compiled_filter(self, meta: Any, schema: CollectionSchema, text: str,
                         params: dict | None) -> Any:
        if not isinstance(text, str):
            raise InvalidArgument(f"filter must be a string, got {type(text).__name__}")
        if not text.strip():
            return None
        from vecstore.expr import compile_filter

        entry = self._schemas[meta.id]
        if entry[2] is None:
            entry = (entry[0], entry[1], _filter_schema(schema))
            self._schemas[meta.id] = entry
        return compile_filter(text, entry[2], params or {})

    def _parts(self, meta: Any, layout: Layout) -> tuple[list[Part], int, np.ndarray, np.ndarray]:
        shard = self._streaming.shard(meta.id)
        snap = shard.snapshot()
        dtype = np.dtype(np.int64) if layout.pk_kind == "int64" else np.dtype(str)
        qpk, qts = self._query.deletes(meta.id, dtype)
        del_pk = np.concatenate([qpk, snap.delete_pks.astype(qpk.dtype, copy=False)])
        del_ts = np.concatenate([qts, snap.delete_ts])
        parts = [sealed_part(s, snap.snapshot, del_pk, del_ts)
                 for _, s in self._query.segments(meta.id)]
        parts += [growing_part(v) for _, v in snap.views()]
        return parts, snap.snapshot, del_pk, del_ts

    def _masks(self, parts: list[Part], layout: Layout, snapshot: int, del_pk: np.ndarray,
               del_ts: np.ndarray, flt: Any, partitions: list[str] | None,
               ids: np.ndarray | None = None) -> list[np.ndarray]:
        masks = []
        for p in parts:
            m = visible(p.pks, p.timestamps, del_pk, del_ts, snapshot)
            if ids is not None:
                m &= np.isin(p.pks, ids)
            if partitions is not None and p.rows:
                col = p.table(layout.pk).column(PARTITION_COLUMN).to_numpy(zero_copy_only=False)
                m &= np.isin(col.astype(str), partitions)
            if flt is not None and m.any():
                m &= np.asarray(flt.evaluate(p.table(layout.pk), cache=p.json_cache), dtype=bool)
            masks.append(m)
        return masks

    def _partitions(self, meta: Any, names: object) -> list[str] | None:
        if names is None or names == []:
            return None
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):  # type: ignore
            raise InvalidArgument("partition_names must be a list of partition names")
        for n in names:  # type: ignore[union-attr]
            if n not in meta.partitions:
                raise InvalidArgument(f"partition not found[partition={n}]")
        return list(names)  # type: ignore[arg-type]

    # ---- writes ------------------------------------------------------------------------------

    def insert(self, db: str, name: str, data: Any, partition: str | None,
               upsert: bool = False) -> dict[str, Any]:
        meta, schema, layout = self.collection(db, name)
        if upsert and layout.auto_id:
            raise InvalidArgument(
                "upsert into an auto_id collection is not supported by vecstore yet: its primary "
                "keys are generated, so insert new rows and delete old ones instead")
        part = partition or "_default"
        if part not in meta.partitions:
            raise InvalidArgument(f"partition not found[partition={part}]")
        if isinstance(data, dict) and not any(
                isinstance(v, (list, tuple, np.ndarray)) for v in data.values()):
            data = [data]  # one row as a dict
        if isinstance(data, list):
            table = schema.validate_rows(data)
        else:
            table = schema.validate_columns(data)
        n = table.num_rows
        if n == 0:
            raise InvalidArgument("insert needs at least one row")
        if layout.auto_id:
            first = self._coord.tso.allocate(min(n, 1 << 18))
            ids = np.arange(first, first + n, dtype=np.int64) if n <= (1 << 18) else np.concatenate(
                [np.arange(s, s + c, dtype=np.int64) for s, c in self._id_blocks(n)])
            pks = ids if layout.pk_kind == "int64" else ids.astype(str)
        else:
            pks = pks_to_numpy(table.column(layout.pk))
        vectors, scalars = split_batch(table, layout, pks, part)
        self._streaming.shard(meta.id).insert(pks, vectors, scalars, upsert=upsert)
        return {"upsert_count" if upsert else "insert_count": n, "ids": pks.tolist()}

    def _id_blocks(self, n: int) -> list[tuple[int, int]]:
        out, left = [], n
        while left:
            c = min(left, 1 << 18)
            out.append((self._coord.tso.allocate(c), c))
            left -= c
        return out

    def delete(self, db: str, name: str, ids: Any, flt: str | None, params: dict | None,
               partition: str | None) -> dict[str, int]:
        meta, schema, layout = self.collection(db, name)
        if ids is not None and flt:
            raise InvalidArgument("Ambiguous filter parameter, only one deletion condition can "
                                  "be specified: pass ids or filter, not both")
        if ids is None and not flt:
            raise InvalidArgument("delete needs ids or a filter")
        if ids is not None:
            pks = self._pk_values(ids, layout)
        else:
            rows = self.query(db, name, flt or "", [layout.pk], None, 0, params,
                              [partition] if partition else None, None)
            pks = np.asarray([r[layout.pk] for r in rows],
                             dtype=np.int64 if layout.pk_kind == "int64" else str)
        if pks.size:
            self._streaming.shard(meta.id).delete(pks)
        return {"delete_count": int(pks.size)}

    def _pk_values(self, ids: Any, layout: Layout) -> np.ndarray:
        values = list(ids) if isinstance(ids, (list, tuple, np.ndarray)) else [ids]
        if layout.pk_kind == "int64":
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in values):
                raise InvalidArgument("primary keys of this collection are integers")
            return np.asarray(values, dtype=np.int64)
        if not all(isinstance(v, str) for v in values):
            raise InvalidArgument("primary keys of this collection are strings")
        return np.asarray(values, dtype=str)

    # ---- reads -------------------------------------------------------------------------------

    def _entities(self, part: Part, rows: np.ndarray, fields: list[str],
                  schema: CollectionSchema, layout: Layout, dynamic_keys: list[str] | None
                  ) -> list[dict[str, Any]]:
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
                if f != layout.pk and _is_json(schema, f):
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

    def _output_fields(self, schema: CollectionSchema, layout: Layout, output_fields: Any,
                       default_all: bool) -> tuple[list[str], list[str] | None]:
        names = [f.name for f in schema.fields]
        if output_fields is None:
            output_fields = ["*"] if default_all else []
        if isinstance(output_fields, str) or not all(isinstance(f, str) for f in output_fields):
            raise InvalidArgument("output_fields must be a list of field names")
        fields, dynamic = [], None
        for f in output_fields:
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

    def search(self, db: str, name: str, data: Any, limit: int, output_fields: Any, flt: str,
               params: dict | None, search_params: dict | None, anns_field: str | None,
               partitions: Any, offset: int, round_decimal: int) -> list[list[dict[str, Any]]]:
        meta, schema, layout = self.collection(db, name)
        field = anns_field or (next(iter(layout.vectors)) if len(layout.vectors) == 1 else None)
        if field is None:
            raise InvalidArgument("multiple anns_fields exist, please specify a anns_field")
        if field not in layout.vectors:
            raise InvalidArgument(f"anns_field {field} is not a vector field of {name}")
        spec = layout.vectors[field]
        sp = dict(search_params or {})
        index_metric = meta.properties.get(f"metric_type.{field}")
        metric = str(sp.pop("metric_type", "") or index_metric or
                     ("HAMMING" if spec.kind == "binary" else "COSINE")).upper()
        if metric not in _METRICS:
            raise InvalidArgument(f"metric type {metric} is not supported")
        if index_metric and metric != index_metric:
            raise InvalidArgument(f"metric type not match: invalid parameter[expected="
                                  f"{index_metric}][actual={metric}]")
        for k in ("radius", "range_filter", "group_by_field"):
            if k in sp or k in (sp.get("params") or {}):
                raise InvalidArgument(f"search parameter {k} is not supported by vecstore yet")
        limit_i = _int_param(limit, "limit", 1, 16384)
        offset_i = _int_param(sp.pop("offset", offset), "offset", 0, 16384)
        if limit_i + offset_i > 16384:
            raise InvalidArgument("topk [limit + offset] should be in range [1, 16384]")
        queries = query_vectors(data, spec)
        partition_list = self._partitions(meta, partitions)
        fields, dynamic = self._output_fields(schema, layout, output_fields, False)
        compiled = self._compiled_filter(meta, schema, flt, params)
        parts, snapshot, del_pk, del_ts = self._parts(meta, layout)
        masks = self._masks(parts, layout, snapshot, del_pk, del_ts, compiled, partition_list)
        k = limit_i + offset_i
        results = []
        for p, m in zip(parts, masks):
            if p.rows == 0 or not m.any():
                continue
            rows, dist = p.search_rows(field, queries, k, metric, m)
            results.append((p, rows, dist))
        out: list[list[dict[str, Any]]] = [[] for _ in range(queries.shape[0])]
        if not results:
            return out
        # Reduce on primary keys (slots without a hit carry an infinite distance, which the merge
        # drops); each kept hit's column in the concatenated parts gives its part and row.
        merged = merge_topk_sources([(p.pks[np.maximum(r, 0)], d) for p, r, d in results], k,
                                    metric)
        part_of_col = np.repeat(np.arange(len(results)), [r.shape[1] for _, r, _ in results])
        rows_cat = np.concatenate([r for _, r, _ in results], axis=1)
        for q, (ids, dists, cols) in enumerate(merged):
            ids, dists, cols = ids[offset_i:], dists[offset_i:], cols[offset_i:]
            entities: list[dict[str, Any]] = [{} for _ in range(ids.size)]
            if fields or dynamic:
                for pi in np.unique(part_of_col[cols]):
                    at = np.flatnonzero(part_of_col[cols] == pi)
                    got = self._entities(results[pi][0], rows_cat[q, cols[at]], fields, schema,
                                         layout, dynamic)
                    for n, entity in zip(at.tolist(), got):
                        entities[n] = entity
            for pk, d, entity in zip(ids.tolist(), dists.tolist(), entities):
                dv = round(d, round_decimal) if round_decimal >= 0 else d
                out[q].append({"id": pk, "distance": dv, "entity": entity})
        return out

    def query(self, db: str, name: str, flt: str, output_fields: Any, limit: Any, offset: Any,
              params: dict | None, partitions: Any, ids: Any) -> list[dict[str, Any]]:
        meta, schema, layout = self.collection(db, name)
        count = output_fields is not None and not isinstance(output_fields, str) and \
            list(output_fields) == ["count(*)"]
        if not count and not (flt or "").strip() and ids is None and limit is None:
            raise InvalidArgument("empty expression should be used with limit")
        lim = None if limit is None else _int_param(limit, "limit", 0, 16384)
        off = _int_param(offset or 0, "offset", 0, 16384)
        pk_filter = None if ids is None else self._pk_values(ids, layout)
        fields, dynamic = ([], None) if count else self._output_fields(
            schema, layout, output_fields, False)
        if not count and layout.pk not in fields:
            fields = [layout.pk] + fields
        compiled = self._compiled_filter(meta, schema, flt or "", params)
        parts, snapshot, del_pk, del_ts = self._parts(meta, layout)
        masks = self._masks(parts, layout, snapshot, del_pk, del_ts, compiled,
                            self._partitions(meta, partitions), pk_filter)
        if count:
            # A pk can sit in a sealing growing segment and its sealed copy at once: count once.
            seen = [p.pks[m] for p, m in zip(parts, masks)]
            return [{"count(*)": int(np.unique(np.concatenate(seen)).size) if seen else 0}]
        # A pk can sit in a sealing growing segment and its sealed copy at once: keep the first.
        picked = [np.flatnonzero(m) for m in masks]
        all_pks = np.concatenate([p.pks[r] for p, r in zip(parts, picked)]) if parts else []
        _, first = np.unique(all_pks, return_index=True)
        keep = np.zeros(len(all_pks), dtype=bool)
        keep[first] = True
        rows: list[dict[str, Any]] = []
        start = 0
        for p, r in zip(parts, picked):
            mine = r[keep[start:start + r.size]]
            start += r.size
            if mine.size:
                rows.extend(self._entities(p, mine, fields, schema, layout, dynamic))
        rows.sort(key=lambda e: e[layout.pk])
        end = None if lim is None else off + lim
        return rows[off:end]


def _is_json(schema: CollectionSchema, field: str) -> bool:
    return any(f.name == field and f.dtype == DataType.JSON for f in schema.fields)


def _int_param(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not \
            low <= int(value) <= high:
        raise InvalidArgument(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)
