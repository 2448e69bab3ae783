"""A hypothesis state machine that drives random sequences of MilvusClient operations against a
reference model (a dict of live rows plus numpy brute force) and compares every read.

The machine owns one data directory and one collection whose shape is a :class:`Variant` (INT64 or
VARCHAR primary key, L2/IP/COSINE, nullable scalars, dynamic field on or off); each variant is its
own TestCase. Vectors are small integers from a four-value set, so equal distances are common and
the search checks are tie-aware. Primary keys come from a small pool, so deletes, re-inserts and
upserts of the same keys collide often.

Rules: insert (rows or columns, into any partition), upsert, partial upsert (merge mode), delete by
ids, delete by filter (also within a partition), flush, close-and-reopen, compaction, truncation,
create/drop partition, load/release of partitions and of the collection, and bad inputs that must
raise a VecstoreError and change nothing. Checks: ``count(*)``, collection statistics, ``get`` of
every visible key (and some dead ones) and the load state after every step; as rules (so
hypothesis shrinks their arguments too): ``query`` with filters, partitions and paging, the query
and search iterators, ``search`` (plain, range, grouping, by primary keys) and ``hybrid_search``
with RRF and weighted rankers, each at a random consistency level, against a brute-force numpy
reference computed from the model. Reads see only loaded partitions: naming an unloaded one, or
reading a fully released collection, must raise.

Adding a rule: mutate the client, then mirror the change in ``self.model``; the invariants compare
the two after every step. Bugs the machine found are pinned by minimised tests at the end of the
file.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
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
from vecstore.client.load_state import LoadState
from vecstore.client.rankers import AnnSearchRequest, RRFRanker, WeightedRanker
from vecstore.errors import VecstoreError

COLLECTION = "c"
PK_POOL = 20
VALUES = (-1.0, 0.0, 1.0, 2.0)  # vector components: few values, many ties
TAGS = ("a", "b", "c", "")
COLORS = ("red", "blue")
PARTITIONS = ("p1", "p2")
TAG_MAX_LENGTH = 8
CONSISTENCY = (None, "Strong", "Bounded", "Session", "Eventually")
COMPACTION_POLLS = 400  # x 5 ms: a manual compaction of a few rows finishes well within 2 s


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
    loaded: set[str] | None = None  # the loaded partitions; None: the whole collection

    def live(self) -> list[Any]:
        return sorted(self.rows)

    def scope(self, names: list[str] | None) -> set[str] | None:
        """The partitions a read naming ``names`` sees; None when the read must raise (a named
        partition is not loaded, or nothing is)."""
        if self.loaded is not None and not self.loaded:
            return None
        if names:
            if self.loaded is not None and not set(names) <= self.loaded:
                return None
            return set(names)
        return set(self.partitions) if self.loaded is None else set(self.loaded)

    def visible(self, scope: set[str], flt: Filter | None = None) -> list[Any]:
        """Live keys, in pk order, in ``scope`` and passing ``flt``."""
        return [pk for pk in self.live() if self.rows[pk].partition in scope
                and (flt is None or flt.pred(pk, self.rows[pk]))]


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


def maybe_filter(v: Variant) -> st.SearchStrategy[Filter | None]:
    """No filter two times in three: reads over every row page and rank more."""
    return st.one_of(st.none(), st.none(), filters(v))


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


def distances(q: np.ndarray, rows: list[Row], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 reference distances of ``q`` to ``rows`` and their float32 error bounds."""
    if not rows:
        return np.empty(0), np.empty(0)
    vecs = np.stack([r.vec for r in rows])
    return ref_cdist(q[None], vecs, metric)[0], tolerance(q[None], vecs, metric)[0]


def thresholds(d: np.ndarray, tol: np.ndarray) -> list[float]:
    """Range-search bounds at least a margin away from every distance in ``d``, so float32
    rounding cannot move a row across one: below and above all, and between well-separated
    neighbours."""
    if d.size == 0:
        return [-0.5, 0.5, 1.5]
    margin = 4 * float(tol.max()) + 1e-3
    vals = np.unique(d)
    cuts = [float(vals[0]) - 0.5, float(vals[-1]) + 0.5]
    cuts += [float(a + b) / 2 for a, b in zip(vals, vals[1:]) if b - a > 2 * margin]
    return sorted(cuts)


def group_value(r: Row, group_field: str) -> Any:
    return r.x if group_field == "x" else r.tag


def check_groups(hits: list[dict[str, Any]], q: np.ndarray, cand_pks: list[Any],
                 cand_rows: list[Row], metric: str, limit: int, group_field: str,
                 group_size: int, strict: bool) -> None:
    """Grouping search as search_ranked's docstring has it (Milvus 2.6), tie-aware: the ``limit``
    groups with the best best-hits (null is one group), group after group by best hit, each
    group's best hits first; with ``strict`` every group holds min(group_size, its rows); without,
    the reading stops at the first hit of the last group when there are ``limit`` groups or more,
    so that group holds one hit and the others the hits ranked before it."""
    d, tol = distances(q, cand_rows, metric)
    key = ranking_key(d, metric)
    slack = float(tol.max()) if tol.size else 0.0
    index = {pk: i for i, pk in enumerate(cand_pks)}
    members: dict[Any, list[int]] = {}
    for i, r in enumerate(cand_rows):
        members.setdefault(group_value(r, group_field), []).append(i)
    group_keys = {g: np.sort(key[ix]) for g, ix in members.items()}
    n_groups = min(limit, len(members))
    ids = [h["id"] for h in hits]
    assert len(set(ids)) == len(ids), f"duplicate ids in {ids}"
    runs: list[tuple[Any, list[int]]] = []
    for h in hits:
        assert set(h) == {"id", "distance", "entity"}, h
        assert h["id"] in index, f"{h['id']!r} is not a candidate"
        i = index[h["id"]]
        assert h["distance"] == pytest.approx(d[i], abs=tol[i]), (h, d[i])
        g = group_value(cand_rows[i], group_field)
        assert h["entity"] == {group_field: g}, h
        if runs and runs[-1][0] == g:
            runs[-1][1].append(i)
        else:
            assert g not in [r[0] for r in runs], f"group {g!r} is split: {ids}"
            runs.append((g, [i]))
    assert len(runs) == n_groups, (len(runs), n_groups, ids)
    if not runs:
        return
    bests = np.sort([k[0] for k in group_keys.values()])
    run_bests = [key[ix[0]] for _, ix in runs]
    assert all(a <= b + slack for a, b in zip(run_bests, run_bests[1:])), run_bests
    np.testing.assert_allclose(np.sort(run_bests), bests[:n_groups], rtol=0, atol=slack)
    last = run_bests[-1]
    for n, (g, ix) in enumerate(runs):
        got = key[ix]
        assert all(a <= b + slack for a, b in zip(got, got[1:])), (g, got)
        np.testing.assert_allclose(got, group_keys[g][:len(ix)], rtol=0, atol=slack)
        full = min(group_size, len(members[g]))
        if strict or len(members) < limit:
            assert len(ix) == full, (g, len(ix), full)
        elif n == len(runs) - 1:
            assert len(ix) == 1, (g, len(ix))
        else:
            before = int(np.count_nonzero(group_keys[g] < last - slack))
            upto = int(np.count_nonzero(group_keys[g] <= last + slack))
            assert min(group_size, before) <= len(ix) <= min(group_size, upto), (g, len(ix))


def normalised(d: float, metric: str, norm: bool) -> float:
    """Milvus's per-request score for the weighted ranker (see proxy.hybrid's docstring)."""
    if not norm:
        return d
    if metric == "COSINE":
        return (1 + d) / 2
    if metric == "IP":
        return 0.5 + math.atan(d) / math.pi
    return 1 - 2 * math.atan(d) / math.pi


def fused(subs: list[list[dict[str, Any]]], ranker: tuple, metric: str) -> dict[Any, float]:
    """The reference fused score of every key the sub-searches returned, in float64."""
    score: dict[Any, float] = {}
    for r, hits in enumerate(subs):
        for rank, h in enumerate(hits, 1):
            if ranker[0] == "rrf":
                part = 1 / (ranker[1] + rank)
            else:
                part = ranker[1][r] * normalised(h["distance"], metric, ranker[2])
            score[h["id"]] = score.get(h["id"], 0.0) + part
    return score


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

    @initialize(partitions=st.lists(st.sampled_from(PARTITIONS), unique=True), data=st.data())
    def create(self, partitions: list[str], data: st.DataObject) -> None:
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
        # A first batch, so that reads (and their paging) have rows to rank from the start.
        pks = data.draw(st.lists(st.sampled_from(v.pool()), min_size=6, max_size=PK_POOL - 4,
                                 unique=True), label="initial pks")
        rows = data.draw(rows_for(v, pks), label="initial rows")
        for r in rows:
            r.partition = data.draw(st.sampled_from(sorted(self.model.partitions)),
                                    label="initial partition")
        for name in sorted(self.model.partitions):
            batch = [(pk, r) for pk, r in zip(pks, rows) if r.partition == name]
            if batch:
                self.client.insert(COLLECTION, as_row_dicts(*map(list, zip(*batch))),
                                   partition_name=name)
                self.model.rows.update(batch)

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

    def _draw_consistency(self, data: st.DataObject) -> dict[str, Any]:
        level = data.draw(st.sampled_from(CONSISTENCY), label="consistency_level")
        return {} if level is None else {"consistency_level": level}

    def _draw_query(self, data: st.DataObject) -> np.ndarray:
        return data.draw(st.lists(st.sampled_from(VALUES), min_size=self.v.dim,
                                  max_size=self.v.dim).map(lambda xs: np.asarray(xs, np.float32)),
                         label="query")

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
        scope = self.model.scope(None if partition is None else [partition])
        if scope is None:
            # The filter is evaluated by a query: over nothing loaded it raises (or, with no
            # partition named, may match nothing); nothing changes either way.
            try:
                res = self.c.delete(COLLECTION, filter=flt.text, partition_name=partition)
            except VecstoreError:
                return
            assert partition is None and res == {"delete_count": 0}, res
            return
        # A delete by filter sees what a query sees: the loaded partitions only.
        victims = self.model.visible(scope, flt)
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
        self.model.partitions.add(name)  # loaded if the whole collection is, else not

    @precondition(lambda self: len(self.model.partitions) > 1)
    @rule(data=st.data())
    def drop_partition(self, data: st.DataObject) -> None:
        """Milvus drops only released partitions; the dropped partition's rows go with it."""
        name = data.draw(st.sampled_from(sorted(self.model.partitions - {"_default"})),
                         label="name")
        loaded = self.model.loaded
        if loaded is None:
            with pytest.raises(VecstoreError):  # loaded: refused, nothing changes
                self.c.drop_partition(COLLECTION, name)
            self.c.release_collection(COLLECTION)
            self.c.drop_partition(COLLECTION, name)
            self.c.load_collection(COLLECTION)
        else:
            if name in loaded:
                with pytest.raises(VecstoreError):
                    self.c.drop_partition(COLLECTION, name)
                self.c.release_partitions(COLLECTION, [name])
            self.c.drop_partition(COLLECTION, name)
            loaded.discard(name)
        self.model.partitions.discard(name)
        for pk in [pk for pk, r in self.model.rows.items() if r.partition == name]:
            del self.model.rows[pk]

    # ---- partial upsert, maintenance, load state ----------------------------------------------

    DYN_KEYS = ("color", "n")  # dynamic keys a partial upsert may carry: merged key by key

    @rule(data=st.data(), form=st.sampled_from(["rows", "columns"]))
    def partial_upsert(self, data: st.DataObject, form: str) -> None:
        """Merge mode: the fields given overwrite, the others keep their stored values; a key not
        stored yet must carry every non-nullable field, or the whole batch fails."""
        v = self.v
        pks = data.draw(st.lists(st.sampled_from(v.pool()), min_size=1, max_size=5, unique=True),
                        label="pks")
        given = data.draw(st.lists(st.sampled_from(["vec", "x", "tag"]), unique=True),
                          label="fields")
        dyn_keys = data.draw(st.lists(st.sampled_from(self.DYN_KEYS), unique=True),
                             label="dynamic keys") if v.dynamic else []
        x = st.integers(-2, 6)
        tag = st.sampled_from(TAGS)
        if v.nullable:
            x, tag = st.none() | x, st.none() | tag
        value = {
            "vec": st.lists(st.sampled_from(VALUES), min_size=v.dim, max_size=v.dim),
            "x": x, "tag": tag, "color": st.sampled_from(COLORS), "n": st.integers(0, 3)}
        rows = [{"pk": pk, **{f: data.draw(value[f], label=f) for f in given + dyn_keys}}
                for pk in pks]
        partition = self._draw_partition(data)
        payload: Any = rows
        if form == "columns":
            payload = {f: [r[f] for r in rows] for f in rows[0]}
        required = {"vec"} if v.nullable else {"vec", "x", "tag"}
        if any(pk not in self.model.rows for pk in pks) and not required <= set(given):
            with pytest.raises(VecstoreError):
                self.c.upsert(COLLECTION, payload, partition_name=partition, partial_update=True)
            return
        res = self.c.upsert(COLLECTION, payload, partition_name=partition, partial_update=True)
        assert res == {"upsert_count": len(pks), "ids": pks}
        for r in rows:
            old = self.model.rows.get(r["pk"])
            base = old if old is not None else Row(np.zeros(v.dim, np.float32), None, None)
            self.model.rows[r["pk"]] = Row(
                np.asarray(r["vec"], np.float32) if "vec" in r else base.vec,
                r["x"] if "x" in r else base.x,
                r["tag"] if "tag" in r else base.tag,
                {**base.dyn, **{k: r[k] for k in dyn_keys}},
                partition)

    @rule(flush_first=st.booleans())
    def compact(self, flush_first: bool) -> None:
        if flush_first:
            self.c.flush(COLLECTION)
        job = self.c.compact(COLLECTION)
        assert isinstance(job, int)
        for _ in range(COMPACTION_POLLS):
            state = self.c.get_compaction_state(job)
            assert state in ("Executing", "Completed"), state
            if state == "Completed":
                break
            time.sleep(0.005)
        assert state == "Completed", f"compaction {job} still {state}"

    @precondition(lambda self: len(self.model.rows) >= 6)
    @rule()
    def truncate(self) -> None:
        """Every row goes; partitions, schema, index and load state stay."""
        self.c.truncate_collection(COLLECTION)
        self.model.rows.clear()

    @precondition(lambda self: self.model.loaded is None or bool(self.model.loaded))
    @rule(data=st.data(), whole=st.booleans())
    def release(self, data: st.DataObject, whole: bool) -> None:
        if whole:
            self.c.release_collection(COLLECTION)
            self.model.loaded = set()
            return
        names = data.draw(st.lists(st.sampled_from(sorted(self.model.partitions)), min_size=1,
                                   unique=True), label="partition_names")
        self.c.release_partitions(COLLECTION, names)
        loaded = self.model.partitions if self.model.loaded is None else self.model.loaded
        self.model.loaded = set(loaded) - set(names)
        if self.model.loaded:  # a read naming a released partition raises
            with pytest.raises(VecstoreError):
                self.c.query(COLLECTION, filter="", output_fields=["count(*)"],
                             partition_names=names[:1])

    @precondition(lambda self: self.model.loaded is not None)
    @rule(data=st.data(), whole=st.booleans())
    def load(self, data: st.DataObject, whole: bool) -> None:
        if whole:
            self.c.load_collection(COLLECTION)
            self.model.loaded = None
            return
        names = data.draw(st.lists(st.sampled_from(sorted(self.model.partitions)), min_size=1,
                                   unique=True), label="partition_names")
        self.c.load_partitions(COLLECTION, names)
        assert self.model.loaded is not None
        self.model.loaded |= set(names)

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
        level = self._draw_consistency(data)
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.query(COLLECTION, filter=flt.text, output_fields=fields,
                             partition_names=names, **level)
            return
        want_pks = self.model.visible(scope, flt)
        got = self.c.query(COLLECTION, filter=flt.text, output_fields=fields,
                           partition_names=names, **level,
                           **({} if page is None else {"limit": page[0], "offset": page[1]}))
        want_page = want_pks if page is None else want_pks[page[1]:page[1] + page[0]]
        assert [r["pk"] for r in got] == want_page, flt.text
        shown = None if fields == ["*"] else ["pk"] + (fields or [])
        for r in got:
            assert r == self.model.rows[r["pk"]].entity(r["pk"], shown)
        count = self.c.query(COLLECTION, filter=flt.text, output_fields=["count(*)"],
                             partition_names=names, **level)
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
        kwargs: dict[str, Any] = {"limit": k, "partition_names": names,
                                  **self._draw_consistency(data)}
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.search(COLLECTION, queries, **kwargs)
            return
        cand = self.model.visible(scope, flt)
        if flt is not None:
            kwargs["filter"] = flt.text
        if fields is not None:
            kwargs["output_fields"] = fields
        res = self.c.search(COLLECTION, queries, **kwargs)
        assert isinstance(res, list) and len(res) == nq
        for q, hits in zip(queries, res):
            check_hits(list(hits), np.asarray(q, np.float32), cand,
                       [self.model.rows[pk] for pk in cand], v.metric, k, fields, v.dynamic)

    @rule(data=st.data(), batch=st.integers(1, 4), fields=st.sampled_from([None, ["x"], ["*"]]))
    def check_query_iterator(self, data: st.DataObject, batch: int,
                             fields: list[str] | None) -> None:
        flt = data.draw(maybe_filter(self.v), label="filter")
        names = self._draw_partition_names(data)
        limit = data.draw(st.sampled_from([-1, -1, 0, 1, 3, 7]), label="limit")
        offset = data.draw(st.sampled_from([0, 0, 2]), label="offset")
        kwargs: dict[str, Any] = {"batch_size": batch, "limit": limit,
                                  "filter": "" if flt is None else flt.text,
                                  "output_fields": fields, "partition_names": names,
                                  **self._draw_consistency(data)}
        if offset:
            kwargs["offset"] = offset
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.query_iterator(COLLECTION, **kwargs)
            return
        want = self.model.visible(scope, flt)[offset:]
        want = want if limit < 0 else want[:limit]
        it = self.c.query_iterator(COLLECTION, **kwargs)
        got: list[dict[str, Any]] = []
        for _ in range(len(want) + 2):
            page = it.next()
            assert len(page) <= batch, (len(page), batch)
            if not page:
                break
            got += page
        else:
            raise AssertionError("query_iterator did not end")
        assert it.next() == []
        it.close()
        assert [r["pk"] for r in got] == want, flt
        shown = None if fields == ["*"] else ["pk"] + (fields or [])
        for r in got:
            assert r == self.model.rows[r["pk"]].entity(r["pk"], shown)

    @rule(data=st.data(), batch=st.integers(1, 4), fields=st.sampled_from([None, ["x"]]))
    def check_search_iterator(self, data: st.DataObject, batch: int,
                              fields: list[str] | None) -> None:
        v = self.v
        q = self._draw_query(data)
        flt = data.draw(maybe_filter(v), label="filter")
        names = self._draw_partition_names(data)
        limit = data.draw(st.sampled_from([-1, 1, 4, 9]), label="limit")
        kwargs: dict[str, Any] = {"batch_size": batch, "limit": limit, "output_fields": fields,
                                  "partition_names": names, **self._draw_consistency(data)}
        if flt is not None:
            kwargs["filter"] = flt.text
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.search_iterator(COLLECTION, [q.tolist()], **kwargs)
            return
        cand = self.model.visible(scope, flt)
        n = len(cand) if limit < 0 else min(limit, len(cand))
        it = self.c.search_iterator(COLLECTION, [q.tolist()], **kwargs)
        hits: list[dict[str, Any]] = []
        for _ in range(n + 2):
            page = list(it.next())
            assert len(page) <= batch, (len(page), batch)
            if not page:
                break
            hits += page
        else:
            raise AssertionError("search_iterator did not end")
        it.close()
        # Distinct hits, best first across pages, the brute-force ranking's prefix up to ties.
        check_hits(hits, q, cand, [self.model.rows[pk] for pk in cand], v.metric, n, fields,
                   v.dynamic)

    @rule(data=st.data(), k=st.integers(1, 8))
    def check_range_search(self, data: st.DataObject, k: int) -> None:
        v = self.v
        q = self._draw_query(data)
        flt = data.draw(maybe_filter(v), label="filter")
        names = self._draw_partition_names(data)
        level = self._draw_consistency(data)
        scope = self.model.scope(names)
        cand = [] if scope is None else self.model.visible(scope, flt)
        rows = [self.model.rows[pk] for pk in cand]
        d, tol = distances(q, rows, v.metric)
        cuts = thresholds(d, tol)
        i, j = sorted(data.draw(st.lists(st.integers(0, len(cuts) - 1), min_size=2, max_size=2,
                                         unique=True), label="bounds"))
        with_rf = data.draw(st.booleans(), label="range_filter")
        higher = v.metric in ("IP", "COSINE")
        # L2: range_filter <= d < radius; IP/COSINE: radius < d <= range_filter.
        radius = cuts[i] if higher else cuts[j]
        rf = (cuts[j] if higher else cuts[i]) if with_rf else None
        params: dict[str, Any] = {"radius": radius}
        if rf is not None:
            params["range_filter"] = rf
        kwargs: dict[str, Any] = {"limit": k, "partition_names": names,
                                  "search_params": {"params": params}, **level}
        if flt is not None:
            kwargs["filter"] = flt.text
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.search(COLLECTION, [q.tolist()], **kwargs)
            return
        if higher:
            inside = (d > radius) & (d <= (np.inf if rf is None else rf))
        else:
            inside = (d < radius) & (d >= (-np.inf if rf is None else rf))
        keep = [n for n in range(len(cand)) if inside[n]]
        res = self.c.search(COLLECTION, [q.tolist()], **kwargs)
        assert len(res) == 1
        check_hits(list(res[0]), q, [cand[n] for n in keep], [rows[n] for n in keep], v.metric,
                   k, None, v.dynamic)

    @rule(data=st.data(), limit=st.integers(1, 5), group_size=st.integers(1, 3),
          strict=st.booleans(), group_field=st.sampled_from(["x", "tag"]))
    def check_grouping_search(self, data: st.DataObject, limit: int, group_size: int,
                              strict: bool, group_field: str) -> None:
        v = self.v
        q = self._draw_query(data)
        flt = data.draw(maybe_filter(v), label="filter")
        names = self._draw_partition_names(data)
        kwargs: dict[str, Any] = {"limit": limit, "partition_names": names,
                                  "group_by_field": group_field, "group_size": group_size,
                                  "strict_group_size": strict, "output_fields": [group_field],
                                  **self._draw_consistency(data)}
        if flt is not None:
            kwargs["filter"] = flt.text
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.search(COLLECTION, [q.tolist()], **kwargs)
            return
        cand = self.model.visible(scope, flt)
        res = self.c.search(COLLECTION, [q.tolist()], **kwargs)
        assert len(res) == 1
        check_groups(list(res[0]), q, cand, [self.model.rows[pk] for pk in cand], v.metric,
                     limit, group_field, group_size, strict)

    @rule(data=st.data(), limit=st.integers(1, 8), fields=st.sampled_from([None, ["x", "tag"]]))
    def check_hybrid_search(self, data: st.DataObject, limit: int,
                            fields: list[str] | None) -> None:
        v = self.v
        names = self._draw_partition_names(data)
        level = self._draw_consistency(data)
        ranker_spec = data.draw(st.one_of(
            st.tuples(st.just("rrf"), st.sampled_from([1, 60])),
            st.tuples(st.just("weighted"),
                      st.tuples(st.sampled_from([0.0, 0.3, 1.0]), st.sampled_from([0.5, 1.0])),
                      st.booleans())), label="ranker")
        ranker = (RRFRanker(ranker_spec[1]) if ranker_spec[0] == "rrf" else
                  WeightedRanker(*ranker_spec[1], norm_score=ranker_spec[2]))
        subs = []
        for n in range(2):
            q = self._draw_query(data)
            flt = data.draw(maybe_filter(v), label=f"filter {n}")
            k = data.draw(st.integers(1, 8), label=f"limit {n}")
            subs.append((q, flt, k))
        param = {"metric_type": v.metric, "params": {}}
        reqs = [AnnSearchRequest([q.tolist()], "vec", param, k,
                                 expr=None if flt is None else flt.text) for q, flt, k in subs]
        kwargs: dict[str, Any] = {"limit": limit, "partition_names": names, **level}
        if fields is not None:
            kwargs["output_fields"] = fields
        scope = self.model.scope(names)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.hybrid_search(COLLECTION, reqs, ranker, **kwargs)
            return
        # Each sub-search alone, checked against the model; the fusion of their answers is the
        # reference (the sub-searches are exact and deterministic, ties included).
        answers = []
        for q, flt, k in subs:
            cand = self.model.visible(scope, flt)
            sub_kwargs = {key: val for key, val in kwargs.items() if key != "limit"}
            if flt is not None:
                sub_kwargs["filter"] = flt.text
            hits = list(self.c.search(COLLECTION, [q.tolist()], limit=k, search_params=param,
                                      **sub_kwargs)[0])
            check_hits(hits, q, cand, [self.model.rows[pk] for pk in cand], v.metric, k,
                       fields, v.dynamic)
            answers.append(hits)
        ref = fused(answers, ranker_spec, v.metric)
        res = self.c.hybrid_search(COLLECTION, reqs, ranker, **kwargs)
        assert len(res) == 1
        hits = list(res[0])
        n = min(limit, len(ref))
        assert len(hits) == n, (len(hits), n)
        ids = [h["id"] for h in hits]
        assert len(set(ids)) == n, ids
        ascending = ranker_spec[0] == "weighted" and not ranker_spec[2] and v.metric == "L2"
        sign = 1.0 if ascending else -1.0  # ranking key: smaller is better
        eps = 1e-5 * (1 + max((abs(s) for s in ref.values()), default=0.0))
        keys = sorted(sign * s for s in ref.values())
        got = []
        for h in hits:
            assert h["id"] in ref, f"{h['id']!r} came from no sub-search"
            assert h["distance"] == pytest.approx(ref[h["id"]], abs=eps), (h, ref[h["id"]])
            got.append(sign * ref[h["id"]])
            want_entity = {} if not fields else self.model.rows[h["id"]].entity(h["id"], fields)
            assert h["entity"] == want_entity, (h, want_entity)
        assert all(a <= b + eps for a, b in zip(got, got[1:])), got
        if n:
            assert max(got) <= keys[n - 1] + eps, (got, keys)
            np.testing.assert_allclose(sorted(got), keys[:n], rtol=0, atol=eps)

    @rule(data=st.data(), k=st.integers(1, 8), use_filter=st.booleans())
    def check_search_by_ids(self, data: st.DataObject, k: int, use_filter: bool) -> None:
        """search(ids=...) finds the stored vectors of those keys (in any loaded partition) and
        searches with them: the same answer as searching those vectors."""
        v = self.v
        loaded = self.model.scope(None)
        names = self._draw_partition_names(data)
        scope = self.model.scope(names)
        flt = data.draw(filters(v), label="filter") if use_filter else None
        kwargs: dict[str, Any] = {"limit": k, "partition_names": names,
                                  **self._draw_consistency(data)}
        if flt is not None:
            kwargs["filter"] = flt.text
        pool = [] if loaded is None else self.model.visible(loaded)
        hidden = [pk for pk in v.pool() if pk not in pool]
        if scope is None or not pool:
            ids = data.draw(st.lists(st.sampled_from(v.pool()), min_size=1, max_size=2,
                                     unique=True), label="ids")
            if scope is None or any(pk in hidden for pk in ids):
                with pytest.raises(VecstoreError):
                    self.c.search(COLLECTION, ids=ids, **kwargs)
            return
        ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
                        label="ids")
        if hidden and data.draw(st.booleans(), label="with a missing key"):
            with pytest.raises(VecstoreError):  # a key not stored (or not loaded): refused
                self.c.search(COLLECTION, ids=ids + [data.draw(st.sampled_from(hidden))],
                              **kwargs)
            return
        res = self.c.search(COLLECTION, ids=ids, **kwargs)
        vecs = [self.model.rows[pk].vec for pk in ids]
        assert res == self.c.search(COLLECTION, [x.tolist() for x in vecs], **kwargs)
        cand = self.model.visible(scope, flt)
        assert len(res) == len(ids)
        for q, hits in zip(vecs, res):
            check_hits(list(hits), q, cand, [self.model.rows[pk] for pk in cand], v.metric, k,
                       None, v.dynamic)

    # ---- invariants: after every step ---------------------------------------------------------

    @invariant()
    def count_matches(self) -> None:
        if self.client is None:
            return
        # Statistics count every partition, loaded or not.
        assert self.c.get_collection_stats(COLLECTION) == {"row_count": len(self.model.rows)}
        for p in sorted(self.model.partitions):
            want = sum(r.partition == p for r in self.model.rows.values())
            assert self.c.get_partition_stats(COLLECTION, p) == {"row_count": want}, p
        scope = self.model.scope(None)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.query(COLLECTION, filter="", output_fields=["count(*)"])
            return
        assert self.c.query(COLLECTION, filter="", output_fields=["count(*)"]) == [
            {"count(*)": len(self.model.visible(scope))}]

    @invariant()
    def get_matches(self) -> None:
        if self.client is None:
            return
        live = self.model.live()
        dead = [pk for pk in self.v.pool() if pk not in self.model.rows][:3]
        scope = self.model.scope(None)
        if scope is None:
            with pytest.raises(VecstoreError):
                self.c.get(COLLECTION, live + dead)
            return
        got = self.c.get(COLLECTION, live + dead)
        visible = self.model.visible(scope)
        assert sorted(r["pk"] for r in got) == visible, "get returned the wrong keys"
        for r in got:
            want = self.model.rows[r["pk"]].entity(r["pk"], None)
            assert r == want, (r, want)

    @invariant()
    def partitions_match(self) -> None:
        if self.client is None:
            return
        assert sorted(self.c.list_partitions(COLLECTION)) == sorted(self.model.partitions)
        loaded = self.model.loaded
        whole = LoadState.Loaded if loaded is None or loaded else LoadState.NotLoad
        assert self.c.get_load_state(COLLECTION) == {"state": whole}
        for p in self.model.partitions:
            on = loaded is None or p in loaded
            assert self.c.get_load_state(COLLECTION, p) == {
                "state": LoadState.Loaded if on else LoadState.NotLoad}, p


# ---- one run per variant ----------------------------------------------------------------------

FAST = settings(max_examples=10, stateful_step_count=30, deadline=None, derandomize=True,
                database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=50, stateful_step_count=50)
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
