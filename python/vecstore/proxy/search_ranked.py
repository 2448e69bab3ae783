"""Exact searches that need more than each part's top-k: range search and grouping search.

Both read the *global ranking* of a query: every allowed hit of every read part, deduplicated by
primary key and ordered by (distance, pk), best first, as the plain search's merge orders it
(:mod:`vecstore.proxy.reduce`). They read it in growing prefixes: each round asks every part for
its top ``k`` rows (``Part.search_rows``, the kernels the plain search uses, on the same query
batch, so distances agree with it bit for bit) and multiplies ``k`` by 4 until every query can be
answered or every part is exhausted.

A merged prefix is exact only up to the worst hit of the parts that were cut at ``k``: a row a
part did not return ranks at or after that part's k-th hit. So the *safe* prefix of a query is its
merged hits strictly closer than the closest such cut ("bound"); with no cut part, the whole
ranking is known ("complete").

Range search keeps the hits with ``key_lo <= key < key_hi`` (see ``SearchPlan``); once the bound
passes ``key_hi`` no further hit can be in range. Grouping follows Milvus 2.6 applied to the one
global ranking (segcore's ``GroupByMap`` feeding the proxy's ``reduceSearchResultDataWithGroupBy``):

- hits are read in rank order; a hit's group is its group-field value, a null value being a group
  of its own; the first ``limit + offset`` distinct groups (by best hit) are the result's groups;
- each group keeps its best ``group_size`` hits; without ``strict_group_size`` the reading stops at
  the first hit of the last of those groups (groups may hold fewer than ``group_size`` hits), with
  it the reading goes on until every group is full or the data ends;
- the first ``offset`` groups are dropped; the rest come group after group (by best hit), each
  group's hits best first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore.errors import InternalError
from vecstore.proxy.parts import Part
from vecstore.proxy.reduce import merge_topk_sources
from vecstore.proxy.search_params import SearchPlan


@dataclass
class Ranked:
    """One query's safe ranked prefix: pks, distances, keys (smaller is closer), and for each hit
    its part index and row; ``complete`` when no allowed hit is missing from it."""

    pks: np.ndarray
    dist: np.ndarray
    key: np.ndarray
    part: np.ndarray
    row: np.ndarray
    complete: bool

    def take(self, idx: np.ndarray) -> Ranked:
        return Ranked(self.pks[idx], self.dist[idx], self.key[idx], self.part[idx],
                      self.row[idx], self.complete)


def ranked_prefixes(parts: list[Part], masks: list[np.ndarray], field: str, queries: np.ndarray,
                    plan: SearchPlan, k: int) -> list[Ranked]:
    """The safe ranked prefix of each query when every part gives its top ``k`` rows, cut to the
    plan's range (a query whose bound passed the range's far end is complete)."""
    nq = queries.shape[0]
    bound = np.full(nq, np.inf)
    sources, part_ids = [], []
    for pi, (p, m) in enumerate(zip(parts, masks)):
        allowed = int(np.count_nonzero(m)) if p.rows else 0
        if allowed == 0:
            continue
        kp = min(k, allowed)
        rows, dist = p.search_rows(field, queries, kp, plan.metric, m)
        if kp < allowed:  # cut: the rows it did not return rank at or after its last one
            bound = np.minimum(bound, plan.key(dist[:, -1]).astype(np.float64))
        sources.append((p, rows, dist))
        part_ids.append(pi)
    if not sources:
        empty = np.empty(0, dtype=np.int64)
        return [Ranked(empty, empty.astype(np.float32), empty.astype(np.float32), empty, empty,
                       True) for _ in range(nq)]
    width = sum(r.shape[1] for _, r, _ in sources)
    merged = merge_topk_sources([(p.pks[np.maximum(r, 0)], d) for p, r, d in sources], width,
                                plan.metric)
    part_of_col = np.repeat(np.asarray(part_ids), [r.shape[1] for _, r, _ in sources])
    rows_cat = np.concatenate([r for _, r, _ in sources], axis=1)
    out = []
    for q, (ids, dist, cols) in enumerate(merged):
        key = plan.key(dist)
        # Safe: strictly closer than the bound (an equal unseen hit could still rank first).
        # In range: lo <= key < hi. Complete once nothing unseen can be in range.
        keep = (key < bound[q]) & (key >= plan.key_lo) & (key < plan.key_hi)
        complete = bool(bound[q] == np.inf or bound[q] >= plan.key_hi)
        out.append(Ranked(ids[keep], dist[keep], key[keep], part_of_col[cols[keep]],
                          rows_cat[q, cols[keep]], complete))
    return out


def grow(parts: list[Part], masks: list[np.ndarray], field: str, queries: np.ndarray,
         plan: SearchPlan, k0: int,
         decide: Callable[[int, Ranked], np.ndarray | None]) -> list[Ranked]:
    """Reads growing prefixes until ``decide(query, prefix)`` returns, for every query, the
    positions of its answer in its prefix (None: needs a longer prefix)."""
    most = max((int(np.count_nonzero(m)) for m in masks), default=0)
    k = max(1, min(k0, most))
    while True:
        prefixes = ranked_prefixes(parts, masks, field, queries, plan, k)
        picks = [decide(q, r) for q, r in enumerate(prefixes)]
        if all(p is not None for p in picks):
            return [r.take(p) for r, p in zip(prefixes, picks)]  # type: ignore[arg-type]
        if k >= most:
            raise InternalError("a complete ranking left a search undecided")
        k = min(k * 4, most)


def range_topk(parts: list[Part], masks: list[np.ndarray], field: str, queries: np.ndarray,
               plan: SearchPlan) -> list[Ranked]:
    """The best ``limit`` in-range hits after ``offset`` of each query."""
    need = plan.limit + plan.offset

    def decide(_: int, r: Ranked) -> np.ndarray | None:
        if r.pks.size >= need or r.complete:
            return np.arange(plan.offset, min(need, r.pks.size))
        return None

    return grow(parts, masks, field, queries, plan, need, decide)


def group_codes(parts: list[Part], pk_name: str, field: str, text: bool
                ) -> Callable[[Ranked], np.ndarray]:
    """A function giving, for a prefix's hits, an integer code per group-field value (equal
    values share a code, null has its own code), read column-wise from the parts."""
    values, valid = [], []
    for p in parts:
        if p.rows == 0:
            values.append(np.empty(0, dtype=str if text else np.int64))
            valid.append(np.empty(0, dtype=bool))
            continue
        col = p.table(pk_name).column(field)
        valid.append(col.is_valid().to_numpy(zero_copy_only=False))
        filled = col.fill_null("" if text else (False if pa.types.is_boolean(col.type) else 0))
        raw = np.asarray(filled.to_numpy(zero_copy_only=False))
        values.append(raw.astype(str) if text else raw.astype(np.int64))
    starts = np.concatenate([[0], np.cumsum([v.size for v in values])]).astype(np.int64)
    all_valid = np.concatenate(valid) if valid else np.empty(0, dtype=bool)
    all_values = np.concatenate(values) if values else np.empty(0, dtype=np.int64)

    def codes(r: Ranked) -> np.ndarray:
        at = starts[r.part] + r.row
        _, inv = np.unique(all_values[at], return_inverse=True)
        inv = inv.astype(np.int64).reshape(-1)
        inv[~all_valid[at]] = -1  # null: one group, apart from every value
        return inv

    return codes


def grouped(parts: list[Part], masks: list[np.ndarray], field: str, queries: np.ndarray,
            plan: SearchPlan, codes_of: Callable[[Ranked], np.ndarray]) -> list[Ranked]:
    """Each query's grouped answer (see the module docstring), in output order."""
    n_groups = plan.limit + plan.offset
    size = plan.group_size

    def decide(_: int, r: Ranked) -> np.ndarray | None:
        codes = codes_of(r)
        uniq, first = np.unique(codes, return_index=True)
        if uniq.size < n_groups and not r.complete:
            return None  # fewer groups than asked for so far, and more hits may come
        order = np.argsort(first, kind="stable")[:n_groups]
        top_codes, top_first = uniq[order], first[order]
        # Rank of each hit within its group (hits are in rank order already).
        by_group = np.argsort(codes, kind="stable")
        sorted_codes = codes[by_group]
        run_start = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        run_len = np.diff(np.r_[run_start, codes.size])
        within = np.empty(codes.size, dtype=np.int64)
        within[by_group] = np.arange(codes.size) - np.repeat(run_start, run_len)
        lookup = np.argsort(top_codes)
        slot = np.searchsorted(top_codes[lookup], codes)
        slot_ok = slot < top_codes.size
        is_top = np.zeros(codes.size, dtype=bool)
        is_top[slot_ok] = top_codes[lookup][slot[slot_ok]] == codes[slot_ok]
        group_rank = np.full(codes.size, -1, dtype=np.int64)
        group_rank[is_top] = lookup[slot[is_top]]
        keep = is_top & (within < size)
        if plan.strict_group_size:
            full = np.bincount(group_rank[keep], minlength=top_codes.size) >= size
            if not r.complete and not full.all():
                return None
        elif uniq.size >= n_groups:
            # Milvus stops reading at the first hit of the last group it takes.
            keep &= np.arange(codes.size) <= top_first[-1]
        keep &= group_rank >= plan.offset
        pos = np.flatnonzero(keep)
        return pos[np.lexsort((pos, group_rank[pos]))]

    return grow(parts, masks, field, queries, plan, n_groups * size * 2, decide)


def vectors_by_pk(parts: list[Part], masks: list[np.ndarray], field: str, pks: np.ndarray,
                  name: str) -> np.ndarray:
    """The stored ``field`` vectors of ``pks`` (in that order), from the visible rows that
    ``masks`` allow; a pk with no visible row raises InvalidArgument naming it."""
    from vecstore.errors import InvalidArgument

    found_pk, found_vec = [], []
    for p, m in zip(parts, masks):
        rows = np.flatnonzero(m)
        if rows.size:
            found_pk.append(p.pks[rows])
            found_vec.append(np.asarray(p.vectors(field))[rows])
    if not found_pk:
        missing = pks
    else:
        all_pk = np.concatenate(found_pk)
        uniq, first = np.unique(all_pk, return_index=True)
        slot = np.clip(np.searchsorted(uniq, pks), 0, max(uniq.size - 1, 0))
        hit = uniq[slot] == pks
        missing = pks[~hit]
    if missing.size:
        shown: list[Any] = missing[:10].tolist()
        raise InvalidArgument(
            f"search(ids=...): primary key(s) {shown}{' ...' if missing.size > 10 else ''} not "
            f"found in collection {name}: search by primary key needs entities that exist")
    return np.concatenate(found_vec)[first[slot]]
