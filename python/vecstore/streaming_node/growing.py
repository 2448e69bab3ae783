"""GrowingSegment: the newest rows of one shard, append-only, searchable the moment they land.

Layout: one growable, C-contiguous buffer per vector field (capacity doubles; appends copy the
batch in once), a primary-key array and an insert-timestamp array (uint64) grown the same way, and
the scalar columns as a list of Arrow record batches. Row ``i`` of every column is the same row.

Concurrency: appends are serialised by a lock; readers take a :class:`GrowingView`, an immutable
snapshot of the first ``rows`` rows. A view stays valid while later appends go on: appends within
capacity write only past the view's rows, and a reallocation copies into a new buffer while the
view keeps the old one alive. So a search never sees half an append.

Visibility (MVCC) is not decided here: callers pass an allow-mask built from the view's pks and
timestamps (:func:`vecstore.common.mvcc.visible`) and, later, a filter bitset.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

import vecstore
from vecstore import _core
from vecstore.common.pools import pool
from vecstore.errors import InvalidArgument

_KIND_DTYPES = {
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": None,  # ml_dtypes.bfloat16: compared by name, the package is optional
    "int8": np.dtype(np.int8),
    "binary": np.dtype(np.uint8),
}


@dataclass(frozen=True)
class VectorSpec:
    """A vector field: kind (float32, float16, bfloat16, int8, binary) and dimension (bits for
    binary, so the array has dim // 8 uint8 columns)."""

    kind: str
    dim: int

    @property
    def columns(self) -> int:
        return self.dim // 8 if self.kind == "binary" else self.dim


def _empty(spec: VectorSpec) -> np.ndarray:
    """The zero-row array of a field no batch has reached yet (bfloat16 as its raw uint16)."""
    dtype = _KIND_DTYPES[spec.kind] or np.dtype(np.uint16)
    return np.empty((0, spec.columns), dtype=dtype)


def _prefault_later(buf: np.ndarray) -> None:
    """Populates a fresh buffer's pages in a background thread (see ``_core.prefault``): the
    first write to each page otherwise costs a fault on the insert path."""
    pool("mem", 1).submit(_core.prefault, buf.reshape(-1).view(np.uint8))


_PREFAULT_BYTES = 4 << 20  # less than this ahead faults in less time than a hand-off takes
_LOOKAHEAD = 4  # batches ahead of the writer whose pages are populated in the background


class Growable:
    """A 1-D or 2-D array with amortised O(1) appends along axis 0. Rows are first staged (copied
    past the published ones, in order; several batches may be staged at once) and then published
    by setting ``n``."""

    # The first growth reserves this much address space (a whole default segment, see
    # data_node.seal_policy): untouched pages cost nothing, while every doubling would copy the
    # rows so far into freshly faulted memory (page faults dominate appends on some VMs).
    RESERVE_BYTES = 64 << 20

    def __init__(self, dtype: np.dtype, width: int | None) -> None:
        shape = (16,) if width is None else (16, width)
        self.buf = np.empty(shape, dtype=dtype)
        self.n = 0  # rows published (readers see buf[:n])
        self.end = 0  # rows staged: buf[n:end] is copied but not yet published
        self._faulted = 0  # rows whose pages are populated or queued to be (see stage)
        row_bytes = np.dtype(dtype).itemsize * (width or 1)
        self._reserve_rows = max(16, self.RESERVE_BYTES // row_bytes)

    def append(self, rows: np.ndarray) -> None:
        self.n = self.stage(rows)

    def stage(self, rows: np.ndarray) -> int:
        """Copies ``rows`` after the staged ones without publishing them (readers slice the
        first ``n`` rows only); returns the ``n`` that publishes them, once every batch staged
        before is published. One stager at a time."""
        need = self.end + rows.shape[0]
        if need > self.buf.shape[0]:
            cap = max(need, 2 * self.buf.shape[0], self._reserve_rows)
            grown = np.empty((cap,) + self.buf.shape[1:], dtype=self.buf.dtype)
            grown[: self.end] = self.buf[: self.end]
            self.buf = grown  # views of the old buffer keep it alive
            self._faulted = self.end
        if rows.nbytes * _LOOKAHEAD >= _PREFAULT_BYTES and self._faulted < self.buf.shape[0]:
            # Populate the pages the next few batches of this size will fill, ahead of them
            # (only ahead: memory is committed as rows arrive, not a whole reserve at once).
            upto = min(self.buf.shape[0], need + _LOOKAHEAD * rows.shape[0])
            if upto > self._faulted:
                _prefault_later(self.buf[max(self._faulted, need):upto])
                self._faulted = upto
        self.buf[self.end : need] = rows
        self.end = need
        return need

    def unstage(self) -> None:
        """Drops every staged, unpublished row."""
        self.end = self.n

    def view(self, rows: int) -> np.ndarray:
        v = self.buf[:rows]
        v.flags.writeable = False
        return v


@dataclass(frozen=True)
class GrowingView:
    """An immutable snapshot of a growing segment's first ``rows`` rows."""

    rows: int
    pks: np.ndarray
    timestamps: np.ndarray
    vectors: dict[str, np.ndarray]
    scalars: pa.Table | None

    def search_rows(self, field: str, queries: np.ndarray, k: int, metric: str,
                    allow: np.ndarray | None = None, threads: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of ``queries`` over this view's ``field`` among allowed rows. Returns
        (row numbers, distances), each (queries, min(k, rows)); slots without an allowed row hold
        row -1 and distance +/-inf (see vecstore.knn). An empty view returns width 0."""
        if field not in self.vectors:
            raise InvalidArgument(
                f"growing segment has no vector field {field!r}; fields: {sorted(self.vectors)}"
            )
        if allow is not None and allow.shape != (self.rows,):
            raise InvalidArgument(f"allow must have one flag per row ({self.rows})")
        kk = min(k, self.rows)
        if kk == 0:
            shape = (queries.shape[0], 0)
            return np.empty(shape, dtype=np.int64), np.empty(shape, dtype=np.float32)
        return vecstore.knn(queries, self.vectors[field], kk, metric, allow=allow, threads=threads)

    def search(self, field: str, queries: np.ndarray, k: int, metric: str,
               allow: np.ndarray | None = None, threads: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`search_rows`, with primary keys instead of row numbers (a slot without a hit
        holds an arbitrary key and an infinite distance)."""
        rows, dist = self.search_rows(field, queries, k, metric, allow, threads)
        if rows.size == 0:
            return self.pks[:0].reshape(rows.shape), dist
        return self.pks[np.maximum(rows, 0)], dist


class GrowingSegment:
    """Append-only rows of one shard's segment. ``pk_kind``: "int64" or "string"."""

    def __init__(self, segment_id: int, vectors: dict[str, VectorSpec], pk_kind: str = "int64"
                 ) -> None:
        if pk_kind not in ("int64", "string"):
            raise InvalidArgument(f"pk_kind must be 'int64' or 'string', got {pk_kind!r}")
        if not vectors:
            raise InvalidArgument("a segment needs at least one vector field")
        for name, spec in vectors.items():
            if spec.kind not in _KIND_DTYPES or spec.dim < 1 or (
                spec.kind == "binary" and spec.dim % 8
            ):
                raise InvalidArgument(f"bad vector field {name!r}: {spec}")
        self.segment_id = segment_id
        self.specs = dict(vectors)
        self._mu = threading.Lock()
        self._pk_kind = pk_kind
        self._pks = Growable(np.dtype(np.int64), None) if pk_kind == "int64" else None
        self._str_pks: list[np.ndarray] = []
        self._ts = Growable(np.dtype(np.uint64), None)
        self._vec: dict[str, Growable] = {}
        self._scalars: list[pa.RecordBatch] = []
        self._scalar_cache: pa.Table | None = None
        self._str_cache: np.ndarray | None = None
        # The last view(), reused until publish() makes more rows visible: views are immutable,
        # and every read snapshot takes one.
        self._view: GrowingView | None = None
        self.rows = 0
        # What the seal policy reads (data_node.seal_policy): an estimate of the row data held
        # (vectors, keys, timestamps, scalar buffers) and when the first row arrived
        # (time.monotonic(), None while empty).
        self.nbytes = 0
        self.first_row_at: float | None = None

    @property
    def staged_rows(self) -> int:
        """Rows published or staged: the row number the next staged batch starts at."""
        return self._ts.end

    def check_batch(self, pks: np.ndarray, timestamps: np.ndarray,
                    vectors: dict[str, np.ndarray],
                    scalars: pa.RecordBatch | pa.Table | None = None) -> list[pa.RecordBatch]:
        """Raises InvalidArgument unless append() would accept the batch; returns its scalar
        record batches. Changes nothing, so a caller can check before logging the batch."""
        n = int(pks.shape[0])
        if pks.ndim != 1 or timestamps.shape != (n,):
            raise InvalidArgument("pks and timestamps must be 1-D arrays of the same length")
        if self._pk_kind == "int64" and pks.dtype != np.int64:
            raise InvalidArgument(f"int64 primary keys expected, got {pks.dtype}")
        if self._pk_kind == "string" and pks.dtype.kind != "U":
            raise InvalidArgument(f"string primary keys expected (numpy str), got {pks.dtype}")
        if set(vectors) != set(self.specs):
            raise InvalidArgument(
                f"vector fields {sorted(vectors)} do not match the segment's {sorted(self.specs)}"
            )
        for name, arr in vectors.items():
            spec = self.specs[name]
            want = _KIND_DTYPES[spec.kind]
            ok = arr.dtype.name == "bfloat16" if want is None else arr.dtype == want
            if not ok or arr.shape != (n, spec.columns):
                raise InvalidArgument(
                    f"vector field {name!r} needs a ({n}, {spec.columns}) {spec.kind} array, got "
                    f"{arr.dtype} {arr.shape}"
                )
        if scalars is not None and scalars.num_rows != n:
            raise InvalidArgument(f"scalars have {scalars.num_rows} rows, the batch has {n}")
        batches = [] if scalars is None else (
            scalars.to_batches() if isinstance(scalars, pa.Table) else [scalars]
        )
        with self._mu:
            first = self._scalars[0].schema if self._scalars else None
            if self.rows and (first is None) != (not batches):
                raise InvalidArgument("scalar columns differ from the segment's earlier batches")
        if first is not None and batches and not batches[0].schema.equals(first):
            raise InvalidArgument("scalar columns differ from the segment's earlier batches")
        return batches

    def append(self, pks: np.ndarray, timestamps: np.ndarray, vectors: dict[str, np.ndarray],
               scalars: pa.RecordBatch | pa.Table | None = None) -> None:
        """Appends a validated batch (see check_batch, which runs first: every column keeps the
        same number of rows). Nothing is changed on error."""
        self.append_checked(pks, timestamps, vectors, self.check_batch(pks, timestamps, vectors,
                                                                        scalars))

    def append_checked(self, pks: np.ndarray, timestamps: np.ndarray,
                       vectors: dict[str, np.ndarray], batches: list[pa.RecordBatch]) -> None:
        """Appends a batch that :meth:`check_batch` accepted (``batches`` is what it returned),
        for callers that must check before logging and apply after."""
        self.publish(self.stage(pks, timestamps, vectors), pks, timestamps, vectors, batches)

    def stage(self, pks: np.ndarray, timestamps: np.ndarray, vectors: dict[str, np.ndarray]
              ) -> dict[str, int]:
        """The heavy half of an append: copies a checked batch's keys, timestamps and vectors
        into place without making any row visible (a shard overlaps this with the WAL's fsync).
        Several batches may be staged before they are published; they must be published in the
        order they were staged (or dropped with :meth:`unstage`)."""
        staged = {"$ts": self._ts.stage(timestamps.astype(np.uint64, copy=False))}
        if self._pks is not None:
            staged["$pk"] = self._pks.stage(pks)
        for name, arr in vectors.items():
            col = self._vec.get(name)
            if col is None:
                col = self._vec[name] = Growable(arr.dtype, self.specs[name].columns)
            staged[name] = col.stage(arr)
        return staged

    def unstage(self, staged: dict[str, int] | None = None, rows: int = 0) -> None:
        """Drops staged rows that will never be published (their WAL write failed): with
        ``staged`` (what :meth:`stage` returned for ``rows`` rows), that batch, which must be the
        newest staged; without, every staged batch not yet published."""
        cols = {"$ts": self._ts, **self._vec}
        if self._pks is not None:
            cols["$pk"] = self._pks
        for name, col in cols.items():
            if staged is None:
                col.unstage()
            elif name in staged:
                col.end = staged[name] - rows

    def publish(self, staged: dict[str, int], pks: np.ndarray, timestamps: np.ndarray,
                vectors: dict[str, np.ndarray], batches: list[pa.RecordBatch]) -> None:
        """Makes a staged batch visible to readers, all columns at once."""
        n = int(pks.shape[0])
        with self._mu:
            self._ts.n = staged["$ts"]
            if self._pks is not None:
                self._pks.n = staged["$pk"]
            else:
                self._str_pks.append(pks.copy())  # the caller keeps its array
                self._str_cache = None
            for name in vectors:
                self._vec[name].n = staged[name]
            self._scalars.extend(batches)
            self._scalar_cache = None
            self._view = None
            if self.rows == 0 and n:
                self.first_row_at = time.monotonic()
            self.rows += n
            self.nbytes += (pks.nbytes + 8 * n + sum(a.nbytes for a in vectors.values())
                            + sum(b.nbytes for b in batches))

    def view(self) -> GrowingView:
        """A consistent snapshot of every row appended so far."""
        with self._mu:
            n = self.rows
            if self._view is not None and self._view.rows == n:
                return self._view
            if self._pks is not None:
                pks = self._pks.view(n)
            else:
                if self._str_cache is None or self._str_cache.shape[0] != n:
                    self._str_cache = (np.concatenate(self._str_pks) if self._str_pks
                                       else np.empty(0, dtype=str))
                pks = self._str_cache
            if self._scalar_cache is None and self._scalars:
                self._scalar_cache = pa.Table.from_batches(self._scalars)
            vectors = {
                name: self._vec[name].view(n) if name in self._vec else _empty(spec)
                for name, spec in self.specs.items()
            }
            self._view = GrowingView(n, pks, self._ts.view(n), vectors, self._scalar_cache)
            return self._view
