"""A hypothesis state machine that drives random sequences of MilvusClient operations against a
reference model (a dict of live rows plus numpy brute force) and compares every read.

The machine owns one data directory and one collection whose shape is a :class:`Variant` (INT64 or
VARCHAR primary key, L2/IP/COSINE, nullable scalars, dynamic field on or off); each variant is its
own TestCase. Vectors are small integers from a four-value set, so equal distances are common and
the search checks are tie-aware. Primary keys come from a small pool, so deletes, re-inserts and
upserts of the same keys collide often.

Rules: insert (rows or columns, into any partition), upsert, delete by ids, delete by filter (also
within a partition), flush, close-and-reopen, create/drop partition, and bad inputs that must raise
a VecstoreError and change nothing. Checks: ``count(*)``, ``get`` of every live key (and some dead
ones) after every step; ``query`` with filters and partitions, ``search`` with filters,
partitions and output fields as rules, so hypothesis shrinks their arguments too.

Adding a rule: mutate the client, then mirror the change in ``self.model``; the invariants compare
the two after every step. Bugs the machine found are pinned by minimised tests at the end of the
file.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.reference import ranking_key, ref_cdist, tolerance
from vecstore import DataType, MilvusClient
from vecstore.errors import VecstoreError

COLLECTION = "c"
PK_POOL = 20
VALUES = (-1.0, 0.0, 1.0, 2.0)  # vector components: few values, many ties
TAGS = ("a", "b", "c", "")
COLORS = ("red", "blue")
PARTITIONS = ("p1", "p2")
TAG_MAX_LENGTH = 8


@dataclass(frozen=True)
class Variant:
    name: str
    pk_kind: str  # "int" or "str"
    metric: str
    dim: int
    nullable: bool  # x (INT64) and tag (VARCHAR) are nullable
    dynamic: bool  # enable_dynamic_field: rows may carry a "color" key

    def pool(self) -> list[Any]:
        return list(range(PK_POOL)) if self.pk_kind == "int" else [f"k{i}" for i in range(PK_POOL)]


VARIANTS = {
    "int_l2": Variant("int_l2", "int", "L2", 4, nullable=False, dynamic=False),
    "str_ip": Variant("str_ip", "str", "IP", 5, nullable=True, dynamic=True),
    "int_cosine": Variant("int_cosine", "int", "COSINE", 6, nullable=True, dynamic=True),
    "str_cosine": Variant("str_cosine", "str", "COSINE", 8, nullable=False, dynamic=False),
}


@dataclass
class Row:
    vec: np.ndarray  # float32, (dim,)
    x: int | None
    tag: str | None
    dyn: dict[str, Any] = field(default_factory=dict)
    partition: str = "_default"

    def entity(self, pk: Any, fields: list[str] | None) -> dict[str, Any]:
        """The dict vecstore returns for this row: ``fields`` None means every field."""
        full = {"pk": pk, "vec": self.vec.tolist(), "x": self.x, "tag": self.tag, **self.dyn}
        if fields is None:
            return full
        return {f: full[f] for f in fields if f in full}


@dataclass
class Model:
    rows: dict[Any, Row] = field(default_factory=dict)
    partitions: set[str] = field(default_factory=lambda: {"_default"})

    def live(self) -> list[Any]:
        return sorted(self.rows)


@dataclass(frozen=True)
class Filter:
    text: str
    pred: Callable[[Any, Row], bool]

    def __repr__(self) -> str:  # what hypothesis prints for a failing step
        return f"Filter({self.text!r})"


# ---- strategies -----------------------------------------------------------------------------


def _quote_list(values: list[Any]) -> str:
    return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values) + "]"


def filters(v: Variant) -> st.SearchStrategy[Filter]:
    n = st.integers(-2, 6)
    # Comparisons against null are false; no `not` over nullable fields, so two-valued logic holds.
    atoms = [
        n.map(lambda c: Filter(f"x > {c}", lambda pk, r: r.x is not None and r.x > c)),
        n.map(lambda c: Filter(f"x <= {c}", lambda pk, r: r.x is not None and r.x <= c)),
        n.map(lambda c: Filter(f"x == {c}", lambda pk, r: r.x == c)),
        st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True).map(
            lambda ts: Filter(f"tag in {_quote_list(ts)}", lambda pk, r: r.tag in ts)),
        st.sampled_from(TAGS).map(lambda t: Filter(f'tag == "{t}"', lambda pk, r: r.tag == t)),
        st.sampled_from(TAGS).map(
            lambda t: Filter(f'tag != "{t}"', lambda pk, r: r.tag is not None and r.tag != t)),
    ]
    if v.pk_kind == "int":
        atoms.append(st.integers(0, PK_POOL).map(
            lambda c: Filter(f"pk >= {c}", lambda pk, r: pk >= c)))
    atoms.append(st.lists(st.sampled_from(v.pool()), min_size=1, max_size=4, unique=True).map(
        lambda ks: Filter(f"pk in {_quote_list(ks)}", lambda pk, r: pk in ks)))
    if v.nullable:
        atoms += [st.just(Filter("x is null", lambda pk, r: r.x is None)),
                  st.just(Filter("tag is not null", lambda pk, r: r.tag is not None))]
    if v.dynamic:
        atoms.append(st.sampled_from(COLORS).map(
            lambda c: Filter(f'color == "{c}"', lambda pk, r: r.dyn.get("color") == c)))
    atom = st.one_of(atoms)

    def combine(pair: tuple[Filter, Filter], op: str) -> Filter:
        a, b = pair
        if op == "and":
            return Filter(f"({a.text}) and ({b.text})",
                          lambda pk, r: a.pred(pk, r) and b.pred(pk, r))
        return Filter(f"({a.text}) or ({b.text})", lambda pk, r: a.pred(pk, r) or b.pred(pk, r))

    compound = st.builds(combine, st.tuples(atom, atom), st.sampled_from(["and", "or"]))
    return st.one_of(atom, compound)


def rows_for(v: Variant, pks: list[Any]) -> st.SearchStrategy[list[Row]]:
    vec = st.lists(st.sampled_from(VALUES), min_size=v.dim, max_size=v.dim).map(
        lambda xs: np.asarray(xs, dtype=np.float32))
    x = st.integers(-2, 6)
    tag = st.sampled_from(TAGS)
    if v.nullable:
        x = st.none() | x
        tag = st.none() | tag
    dyn = (st.fixed_dictionaries({}, optional={"color": st.sampled_from(COLORS)})
           if v.dynamic else st.just({}))
    row = st.builds(Row, vec=vec, x=x, tag=tag, dyn=dyn)
    return st.lists(row, min_size=len(pks), max_size=len(pks))


def as_row_dicts(pks: list[Any], rows: list[Row], omit_nulls: bool = False
                 ) -> list[dict[str, Any]]:
    """The batch as row dicts; ``omit_nulls`` leaves null fields out instead of giving None."""
    out = []
    for pk, r in zip(pks, rows):
        d = {"pk": pk, "vec": r.vec.tolist(), "x": r.x, "tag": r.tag, **r.dyn}
        out.append({k: val for k, val in d.items() if val is not None} if omit_nulls else d)
    return out


def as_columns(v: Variant, pks: list[Any], rows: list[Row]) -> dict[str, Any]:
    """The batch as a dict of numpy columns (lists where a column holds nulls)."""
    xs = [r.x for r in rows]
    tags = [r.tag for r in rows]
    cols: dict[str, Any] = {
        "pk": np.asarray(pks, dtype=np.int64 if v.pk_kind == "int" else str),
        "vec": np.stack([r.vec for r in rows]).astype(np.float32),
        "x": xs if None in xs else np.asarray(xs, dtype=np.int64),
        "tag": tags if None in tags else np.asarray(tags, dtype=str),
    }
    if v.dynamic and rows and all("color" in r.dyn for r in rows):
        cols["color"] = [r.dyn["color"] for r in rows]
    return cols


def columnar_rows(rows: list[Row]) -> list[Row]:
    """A dynamic key goes into a column only when every row has it: drop it otherwise."""
    if all("color" in r.dyn for r in rows):
        return rows
    return [Row(r.vec, r.x, r.tag, {}, r.partition) for r in rows]


# ---- search oracle ----------------------------------------------------------------------------


def check_hits(hits: list[dict[str, Any]], q: np.ndarray, cand_pks: list[Any],
               cand_rows: list[Row], metric: str, k: int, fields: list[str] | None,
               dynamic: bool) -> None:
    """Tie-aware: the hits are the k best candidates up to rows tied at the boundary."""
    n = min(k, len(cand_pks))
    assert isinstance(hits, list) and len(hits) == n, (len(hits), n)
    if n == 0:
        return
    vecs = np.stack([r.vec for r in cand_rows])
    d = ref_cdist(q[None], vecs, metric)[0]
    tol = tolerance(q[None], vecs, metric)[0]
    key = ranking_key(d, metric)
    index = {pk: i for i, pk in enumerate(cand_pks)}
    ids = [h["id"] for h in hits]
    assert len(set(ids)) == n, f"duplicate ids in {ids}"
    kth = np.sort(key)[n - 1]
    slack = float(tol.max())
    got_keys = []
    for h in hits:
        assert set(h) == {"id", "distance", "entity"}, h
        assert isinstance(h["distance"], float)
        assert h["id"] in index, f"{h['id']!r} is not a candidate (deleted/filtered/partition)"
        i = index[h["id"]]
        assert h["distance"] == pytest.approx(d[i], abs=tol[i]), (h, d[i])
        assert key[i] <= kth + slack, f"{h['id']!r} at {d[i]} is outside the top {n}"
        got_keys.append(ranking_key(np.float64(h["distance"]), metric))
        want_entity = {} if not fields else cand_rows[i].entity(cand_pks[i], fields)
        assert h["entity"] == want_entity, (h, want_entity)
    # Best first, and the multiset of distances is the oracle's.
    assert all(a <= b + slack for a, b in zip(got_keys, got_keys[1:])), got_keys
    np.testing.assert_allclose(got_keys, np.sort(key)[:n], rtol=0, atol=slack)


# ---- the machine --------------------------------------------------------------------------------


class CollectionMachine(RuleBasedStateMachine):
    VARIANT: Variant = VARIANTS["int_l2"]

    def __init__(self) -> None:
        super().__init__()
        self.v = self.VARIANT
        self.dir = tempfile.mkdtemp(prefix="vecstore-stateful-")
        self.path = f"{self.dir}/data"
        self.client: MilvusClient | None = None
        self.model = Model()

    # ---- setup and teardown -------------------------------------------------------------------

    @initialize(partitions=st.lists(st.sampled_from(PARTITIONS), unique=True))
    def create(self, partitions: list[str]) -> None:
        v = self.v
        schema = MilvusClient.create_schema(enable_dynamic_field=v.dynamic)
        if v.pk_kind == "int":
            schema.add_field("pk", DataType.INT64, is_primary=True)
        else:
            schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=v.dim)
        schema.add_field("x", DataType.INT64, nullable=v.nullable)
        schema.add_field("tag", DataType.VARCHAR, max_length=TAG_MAX_LENGTH, nullable=v.nullable)
        index = MilvusClient.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type=v.metric)
        self.client = MilvusClient(self.path)
        self.client.create_collection(COLLECTION, schema=schema, index_params=index)
        for name in partitions:
            self.client.create_partition(COLLECTION, name)
            self.model.partitions.add(name)

    def teardown(self) -> None:
        if self.client is not None:
            self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def c(self) -> MilvusClient:
        assert self.client is not None
        return self.client

    def _draw_partition(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.model.partitions)), label="partition")

    def _draw_partition_names(self, data: st.DataObject) -> list[str] | None:
        names = data.draw(st.none() | st.lists(
            st.sampled_from(sorted(self.model.partitions)), min_size=1, unique=True),
            label="partition_names")
        return names

    # ---- writes -------------------------------------------------------------------------------

    @rule(data=st.data(), form=st.sampled_from(["rows", "columns"]))
    def insert(self, data: st.DataObject, form: str) -> None:
        free = [pk for pk in self.v.pool() if pk not in self.model.rows]
        if not free:
            return  # inserting a live key duplicates it: outside this model (Milvus allows it)
        pks = data.draw(st.lists(st.sampled_from(free), min_size=1, max_size=6, unique=True),
                        label="pks")
        rows = data.draw(rows_for(self.v, pks), label="rows")
        partition = self._draw_partition(data)
        if form == "columns":
            rows = columnar_rows(rows)
            payload: Any = as_columns(self.v, pks, rows)
        else:
            payload = as_row_dicts(pks, rows, self.v.nullable and data.draw(st.booleans()))
        res = self.c.insert(COLLECTION, payload, partition_name=partition)
        assert res == {"insert_count": len(pks), "ids": pks}
        for pk, r in zip(pks, rows):
            r.partition = partition
            self.model.rows[pk] = r

    @rule(data=st.data(), form=st.sampled_from(["rows", "columns"]))
    def upsert(self, data: st.DataObject, form: str) -> None:
        pks = data.draw(st.lists(st.sampled_from(self.v.pool()), min_size=1, max_size=6,
                                 unique=True), label="pks")
        rows = data.draw(rows_for(self.v, pks), label="rows")
        partition = self._draw_partition(data)
        if form == "columns":
            rows = columnar_rows(rows)
            payload: Any = as_columns(self.v, pks, rows)
        else:
            payload = as_row_dicts(pks, rows, self.v.nullable and data.draw(st.booleans()))
        res = self.c.upsert(COLLECTION, payload, partition_name=partition)
        assert res == {"upsert_count": len(pks), "ids": pks}
        for pk, r in zip(pks, rows):
            r.partition = partition  # an upsert moves the key to the partition it names
            self.model.rows[pk] = r

    @rule(data=st.data())
    def delete_ids(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.v.pool()), min_size=1, max_size=6,
                                 unique=True), label="ids")
        partition = data.draw(st.none() | st.sampled_from(sorted(self.model.partitions)),
                              label="partition_name")
        victims = [pk for pk in ids if pk in self.model.rows
                   and (partition is None or self.model.rows[pk].partition == partition)]
        res = self.c.delete(COLLECTION, ids=ids, partition_name=partition)
        # Milvus counts the keys asked for when deleting by primary key; accept the live count too.
        assert set(res) == {"delete_count"} and res["delete_count"] in (len(ids), len(victims))
        for pk in victims:
            del self.model.rows[pk]

    @rule(data=st.data())
    def delete_filter(self, data: st.DataObject) -> None:
        flt = data.draw(filters(self.v), label="filter")
        partition = data.draw(st.none() | st.sampled_from(sorted(self.model.partitions)),
                              label="partition_name")
        victims = [pk for pk, r in self.model.rows.items() if flt.pred(pk, r)
                   and (partition is None or r.partition == partition)]
        res = self.c.delete(COLLECTION, filter=flt.text, partition_name=partition)
        assert res == {"delete_count": len(victims)}
        for pk in victims:
            del self.model.rows[pk]

    @rule()
    def flush(self) -> None:
        self.c.flush(COLLECTION)

    @rule(flush_first=st.booleans())
    def reopen(self, flush_first: bool) -> None:
        if flush_first:
            self.c.flush(COLLECTION)
        self.c.close()
        self.client = None
        self.client = MilvusClient(self.path)

    @precondition(lambda self: len(self.model.partitions) < 1 + len(PARTITIONS))
    @rule(data=st.data())
    def create_partition(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(
            [p for p in PARTITIONS if p not in self.model.partitions]), label="name")
        self.c.create_partition(COLLECTION, name)
        self.model.partitions.add(name)

    @precondition(lambda self: len(self.model.partitions) > 1)
    @rule(data=st.data())
    def drop_partition(self, data: st.DataObject) -> None:
        """Milvus drops only released partitions; the dropped partition's rows go with it."""
        name = data.draw(st.sampled_from(sorted(self.model.partitions - {"_default"})),
                         label="name")
        with pytest.raises(VecstoreError):  # loaded: refused, nothing changes
            self.c.drop_partition(COLLECTION, name)
        self.c.release_collection(COLLECTION)
        self.c.drop_partition(COLLECTION, name)
        self.c.load_collection(COLLECTION)
        self.model.partitions.discard(name)
        for pk in [pk for pk, r in self.model.rows.items() if r.partition == name]:
            del self.model.rows[pk]

    # ---- bad inputs: raise, change nothing (the invariants check the model still holds) -------

    BAD_KINDS = ("wrong_dim", "nan", "inf", "dup_pk", "unknown_field", "x_str", "x_float",
                 "x_bool", "tag_int", "tag_too_long", "pk_type", "missing_vec", "bad_partition")

    @rule(data=st.data(), kind=st.sampled_from(BAD_KINDS), op=st.sampled_from(["insert", "upsert"]),
          form=st.sampled_from(["rows", "columns"]))
    def bad_write(self, data: st.DataObject, kind: str, op: str, form: str) -> None:
        v = self.v
        # Good rows around the bad one: fresh keys for insert (a partial write would show), any
        # keys for upsert (a partial overwrite would show).
        pool = v.pool() if op == "upsert" else [pk for pk in v.pool() if pk not in self.model.rows]
        if len(pool) < 2:
            return
        pks = data.draw(st.lists(st.sampled_from(pool), min_size=2, max_size=5, unique=True),
                        label="pks")
        rows = as_row_dicts(pks, data.draw(rows_for(v, pks), label="rows"))
        at = data.draw(st.integers(0, len(rows) - 1), label="bad_row")
        bad = rows[at]
        partition = "_default"
        if kind == "wrong_dim":
            bad["vec"] = bad["vec"] + [1.0] if data.draw(st.booleans()) else bad["vec"][:-1]
        elif kind == "nan":
            bad["vec"][0] = float("nan")
        elif kind == "inf":
            bad["vec"][-1] = -math.inf
        elif kind == "dup_pk":
            bad["pk"] = rows[(at + 1) % len(rows)]["pk"]
        elif kind == "unknown_field":
            # With the dynamic field on, unknown keys are legal; `$meta` itself is not.
            bad["$meta" if v.dynamic else "zz"] = {"k": 1} if v.dynamic else 1
        elif kind == "x_str":
            bad["x"] = "3"
        elif kind == "x_float":
            bad["x"] = 1.5
        elif kind == "x_bool":
            bad["x"] = True
        elif kind == "tag_int":
            bad["tag"] = 5
        elif kind == "tag_too_long":
            bad["tag"] = "t" * (TAG_MAX_LENGTH + 1)
        elif kind == "pk_type":
            bad["pk"] = 99 if v.pk_kind == "str" else "k99"
        elif kind == "missing_vec":
            del bad["vec"]
        elif kind == "bad_partition":
            partition = "nope"
        payload: Any = rows
        columnar_ok = kind in ("nan", "inf", "dup_pk", "tag_too_long", "bad_partition")
        if form == "columns" and columnar_ok:
            payload = {
                "pk": np.asarray([r["pk"] for r in rows],
                                 dtype=np.int64 if v.pk_kind == "int" else str),
                "vec": np.asarray([r["vec"] for r in rows], dtype=np.float32),
                "x": [r["x"] for r in rows],
                "tag": [r["tag"] for r in rows],
            }
        write = self.c.insert if op == "insert" else self.c.upsert
        with pytest.raises(VecstoreError):
            write(COLLECTION, payload, partition_name=partition)

    @rule(kind=st.sampled_from(["dim", "partition", "syntax", "output_field", "limit"]))
    def bad_read(self, kind: str) -> None:
        q = [[0.0] * self.v.dim]
        with pytest.raises(VecstoreError):
            if kind == "dim":
                self.c.search(COLLECTION, [[0.0] * (self.v.dim + 1)], limit=3)
            elif kind == "partition":
                self.c.search(COLLECTION, q, limit=3, partition_names=["nope"])
            elif kind == "syntax":
                self.c.query(COLLECTION, filter="x >", output_fields=["x"])
            elif kind == "output_field":
                self.c.search(COLLECTION, q, limit=3,
                              output_fields=["no_such_field" if not self.v.dynamic else 5])
            else:
                self.c.search(COLLECTION, q, limit=0)

    @rule(kind=st.sampled_from(["both", "neither", "syntax", "pk_type"]))
    def bad_delete(self, kind: str) -> None:
        some = self.v.pool()[0]
        with pytest.raises(VecstoreError):
            if kind == "both":
                self.c.delete(COLLECTION, ids=[some], filter="x > 0")
            elif kind == "neither":
                self.c.delete(COLLECTION)
            elif kind == "syntax":
                self.c.delete(COLLECTION, filter="tag in [")
            else:
                self.c.delete(COLLECTION, ids=["k1" if self.v.pk_kind == "int" else 1])

    # ---- read checks driven by hypothesis (so their arguments shrink too) ---------------------

    @rule(data=st.data(), fields=st.sampled_from([None, ["x"], ["tag", "x"], ["*"]]))
    def check_query(self, data: st.DataObject, fields: list[str] | None) -> None:
        flt = data.draw(filters(self.v), label="filter")
        names = self._draw_partition_names(data)
        page = data.draw(st.none() | st.tuples(st.integers(1, 8), st.integers(0, 4)),
                         label="limit, offset")
        want_pks = [pk for pk in self.model.live() if flt.pred(pk, self.model.rows[pk])
                    and (names is None or self.model.rows[pk].partition in names)]
        got = self.c.query(COLLECTION, filter=flt.text, output_fields=fields,
                           partition_names=names,
                           **({} if page is None else {"limit": page[0], "offset": page[1]}))
        want_page = want_pks if page is None else want_pks[page[1]:page[1] + page[0]]
        assert [r["pk"] for r in got] == want_page, flt.text
        shown = None if fields == ["*"] else ["pk"] + (fields or [])
        for r in got:
            assert r == self.model.rows[r["pk"]].entity(r["pk"], shown)
        count = self.c.query(COLLECTION, filter=flt.text, output_fields=["count(*)"],
                             partition_names=names)
        assert count == [{"count(*)": len(want_pks)}]

    @rule(data=st.data(), k=st.integers(1, 10), nq=st.integers(1, 2),
          use_filter=st.booleans())
    def check_search(self, data: st.DataObject, k: int, nq: int, use_filter: bool) -> None:
        v = self.v
        queries = data.draw(st.lists(
            st.lists(st.sampled_from(VALUES), min_size=v.dim, max_size=v.dim),
            min_size=nq, max_size=nq), label="queries")
        flt = data.draw(filters(v), label="filter") if use_filter else None
        names = self._draw_partition_names(data)
        fields_choices: list[list[str] | None] = [None, ["x", "tag"]]
        if v.dynamic:
            fields_choices.append(["tag", "color"])
        fields = data.draw(st.sampled_from(fields_choices), label="output_fields")
        cand = [pk for pk in self.model.live()
                if (flt is None or flt.pred(pk, self.model.rows[pk]))
                and (names is None or self.model.rows[pk].partition in names)]
        kwargs: dict[str, Any] = {"limit": k, "partition_names": names}
        if flt is not None:
            kwargs["filter"] = flt.text
        if fields is not None:
            kwargs["output_fields"] = fields
        res = self.c.search(COLLECTION, queries, **kwargs)
        assert isinstance(res, list) and len(res) == nq
        for q, hits in zip(queries, res):
            check_hits(list(hits), np.asarray(q, np.float32), cand,
                       [self.model.rows[pk] for pk in cand], v.metric, k, fields, v.dynamic)

    # ---- invariants: after every step ---------------------------------------------------------

    @invariant()
    def count_matches(self) -> None:
        if self.client is None:
            return
        assert self.c.query(COLLECTION, filter="", output_fields=["count(*)"]) == [
            {"count(*)": len(self.model.rows)}]

    @invariant()
    def get_matches(self) -> None:
        if self.client is None:
            return
        live = self.model.live()
        dead = [pk for pk in self.v.pool() if pk not in self.model.rows][:3]
        got = self.c.get(COLLECTION, live + dead)
        assert sorted(r["pk"] for r in got) == live, "get returned the wrong keys"
        for r in got:
            want = self.model.rows[r["pk"]].entity(r["pk"], None)
            assert r == want, (r, want)

    @invariant()
    def partitions_match(self) -> None:
        if self.client is None:
            return
        assert sorted(self.c.list_partitions(COLLECTION)) == sorted(self.model.partitions)


# ---- one run per variant ----------------------------------------------------------------------

FAST = settings(max_examples=15, stateful_step_count=25, deadline=None, derandomize=True,
                database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=60, stateful_step_count=50)
# Hypothesis shrinks for up to 300 s, the suite's per-test timeout: keep a failure's report in time.
SHRINK_SECONDS = 120


def machine_for(variant: Variant) -> type[CollectionMachine]:
    return type(f"Machine_{variant.name}", (CollectionMachine,), {"VARIANT": variant})


def run_machine(name: str, config: settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis.internal.conjecture import engine

    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS, raising=False)
    run_state_machine_as_test(machine_for(VARIANTS[name]), settings=config)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_machine(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_machine(name, FAST, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_machine_long(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_machine(name, SLOW, monkeypatch)


# ---- regressions, minimised from the machine ----------------------------------------------------


def test_delete_by_ids_is_scoped_to_its_partition(tmp_path) -> None:
    """delete(ids=..., partition_name=p) deletes the keys stored in p only, as Milvus does."""
    c = MilvusClient(str(tmp_path / "db"))
    try:
        c.create_collection("c", dimension=4, metric_type="L2")
        c.create_partition("c", "p1")
        c.insert("c", [{"id": 1, "vector": [1, 0, 0, 0]}])  # into _default
        c.delete("c", ids=[1], partition_name="p1")  # p1 holds no key 1
        assert c.get("c", [1], output_fields=["id"]) == [{"id": 1}]
    finally:
        c.close()
