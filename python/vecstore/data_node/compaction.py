"""Compaction: plan which sealed segments to merge, and merge them into one new segment.

Planning (:func:`plan`) works on :class:`SegmentStats`: a collection's sealed segments with their
row count, stored bytes and how many rows the collection's committed deletes hide. Candidates are
small segments (see :meth:`DataNodeConfig.small`) and segments whose deleted fraction reached
``compact_delete_ratio`` (manual compaction: any deleted row). They are packed, oldest first, into
groups of at most the seal limits; a group of one segment is kept only when it drops deletes.
Every group keeps at least one live row (a group of deleted rows only takes the smallest live
segment along), so a merge never produces an empty segment: a segment that vanished without an
heir would leave readers nothing that covers its rows.

Merging (:func:`merge`) keeps the rows visible at the compaction timestamp under every committed
delete of the collection (the same MVCC rule as reads, :mod:`vecstore.common.mvcc`): deleted rows
and versions superseded by an upsert are dropped, every other row keeps its timestamp, so reads at
any later snapshot see the same rows before and after. :func:`surviving_deletes` decides which of
the inputs' delete-log entries must be carried to the output: those whose key may still occur in
a segment outside the group (the output holds no row they hide any more).

Pure functions over opened segments and arrays; writing goes through SegmentWriter (manifest
last), so a crash mid-merge leaves files that no manifest commit names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from vecstore.common.mvcc import visible
from vecstore.common.pks import pks_to_numpy
from vecstore.data_node.seal_policy import DataNodeConfig
from vecstore.errors import InvalidArgument
from vecstore.storage.object import ObjectStore
from vecstore.storage.segment import TS_COLUMN, Manifest, Segment, SegmentWriter


@dataclass(frozen=True)
class SegmentStats:
    id: int
    rows: int
    nbytes: int
    deleted: int  # rows hidden by the collection's committed deletes

    @property
    def live(self) -> int:
        return self.rows - self.deleted


def segment_bytes(manifest: Manifest) -> int:
    return sum(f.size for f in manifest.files)


def deleted_rows(pks: np.ndarray, timestamps: np.ndarray, del_pk: np.ndarray,
                 del_ts: np.ndarray, snapshot: int) -> int:
    if del_pk.size == 0:
        return 0
    return int(pks.size - np.count_nonzero(visible(pks, timestamps, del_pk, del_ts, snapshot)))


def plan(segments: list[SegmentStats], config: DataNodeConfig, *, manual: bool
         ) -> list[list[int]]:
    """Groups of segment ids to merge, each into one segment (see the module docstring).
    Automatic plans need ``compact_min_segments`` small segments before merging them."""
    def dirty(s: SegmentStats) -> bool:
        if s.deleted == 0:
            return False
        return manual or s.deleted >= config.compact_delete_ratio * s.rows

    small = [s for s in segments if config.small(s.rows, s.nbytes)]
    if not manual and len(small) < config.compact_min_segments:
        small = []
    picked = {s.id for s in small} | {s.id for s in segments if dirty(s)}
    candidates = [s for s in sorted(segments, key=lambda s: s.id) if s.id in picked]
    groups: list[list[SegmentStats]] = []
    cur: list[SegmentStats] = []
    for s in candidates:
        rows = sum(c.live for c in cur) + s.live
        size = sum(c.nbytes for c in cur) + s.nbytes
        if cur and (rows > config.seal_rows or size > config.seal_bytes):
            groups.append(cur)
            cur = []
        cur.append(s)
    if cur:
        groups.append(cur)
    # A group with no live row joins a neighbour; if every candidate is dead, nothing is done.
    merged: list[list[SegmentStats]] = []
    for g in groups:
        if merged and (sum(s.live for s in g) == 0 or sum(s.live for s in merged[-1]) == 0):
            merged[-1].extend(g)
        else:
            merged.append(g)
    out = []
    used = {s.id for g in merged for s in g}
    spare = sorted((s for s in segments if s.id not in used and s.live), key=lambda s: s.rows)
    for g in merged:
        if sum(s.live for s in g) == 0:
            if not spare:
                continue  # nothing live to merge it with: it waits
            g.append(spare.pop(0))  # the smallest live segment carries the dead one away
        if len(g) == 1 and not g[0].deleted:
            continue
        out.append([s.id for s in g])
    return out


@dataclass(frozen=True)
class Merged:
    """The rows a merge keeps, in input order, ready for SegmentWriter."""

    pks: np.ndarray
    timestamps: np.ndarray
    vectors: dict[str, tuple[np.ndarray, str]]
    scalars: pa.Table | None
    pk_field: str
    schema_version: int

    @property
    def rows(self) -> int:
        return int(self.pks.size)


def merge(inputs: list[Segment], del_pk: np.ndarray, del_ts: np.ndarray, snapshot: int
          ) -> Merged:
    """The rows of ``inputs`` visible at ``snapshot`` under the deletes (del_pk, del_ts)."""
    if not inputs:
        raise InvalidArgument("merge needs at least one segment")
    first = inputs[0].manifest
    names = [(f.name, f.kind) for f in first.vector_fields]
    pks, stamps, tables = [], [], []
    vectors: dict[str, list[np.ndarray]] = {n: [] for n, _ in names}
    for seg in inputs:
        m = seg.manifest
        if [(f.name, f.kind) for f in m.vector_fields] != names or m.pk_field != first.pk_field:
            raise InvalidArgument(
                f"segment {seg.prefix!r} has other vector fields or primary key than "
                f"{inputs[0].prefix!r}; only segments of one collection can be merged")
        pk = pks_to_numpy(seg.pks())
        ts = np.asarray(seg.timestamps(), dtype=np.uint64)
        keep = visible(pk, ts, del_pk, del_ts, snapshot)
        pks.append(pk[keep])
        stamps.append(ts[keep])
        for name, _ in names:
            vectors[name].append(seg.vectors(name, raw=True)[keep])
        table = seg.scalars()
        rest = [c for c in table.column_names if c not in (m.pk_field, TS_COLUMN)]
        tables.append(table.select(rest).filter(pa.array(keep)))
    scalars = pa.concat_tables(tables, promote_options="default")
    return Merged(
        pks=np.concatenate(pks),
        timestamps=np.concatenate(stamps),
        vectors={n: (np.concatenate(vectors[n]), kind) for n, kind in names},
        scalars=scalars.combine_chunks() if scalars.num_columns else None,
        pk_field=first.pk_field,
        schema_version=max(s.manifest.schema_version for s in inputs),
    )


def write(merged: Merged, store: ObjectStore, prefix: str) -> Manifest:
    """Writes the merged rows as a new segment under ``prefix`` (manifest last)."""
    if merged.rows == 0:
        raise InvalidArgument("a merge that keeps no row writes no segment; plan() avoids it")
    return SegmentWriter(store, prefix).write(
        merged.pks, merged.timestamps, merged.vectors, merged.scalars,
        schema_version=merged.schema_version, pk_field=merged.pk_field)


def surviving_deletes(own: list[tuple[np.ndarray, np.ndarray]], others: list[Segment]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The delete-log entries of the inputs (``own``: one (pk, ts) pair per input) that may
    still hide a row of a segment outside the group: every entry whose key ``others`` might
    hold (bloom filter, so a false positive only keeps an entry longer). Rows of growing data
    are newer than every logged delete, so they never need one."""
    own = [o for o in own if len(o[0])]
    if not own:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    pk = np.concatenate([p for p, _ in own])
    ts = np.concatenate([t for _, t in own])
    keep = np.zeros(pk.size, dtype=bool)
    for seg in others:
        keep |= seg.might_contain(pk)
        if keep.all():
            break
    return pk[keep], ts[keep]
