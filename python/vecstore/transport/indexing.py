"""Vector indexes across the roles of the embedded wiring: which segments need a build, the build
itself (data node), its commit (coordinator) and the swap into searches (query node).

Lifecycle of one index file (segment S, field F, spec P):

1. ``index_jobs`` lists (S, F) when S is loaded, has at least ``config.min_index_rows`` rows, F's
   declared index needs a build, and S has no index for P attached.
2. ``build`` has the data node (``dep.work``: this process, or a data-node process) build P over
   S's mapped vectors and write ``index/F/<build>/image.bin`` under S's prefix (atomic put) —
   without any lock, so flushes, inserts and searches go on.
3. Under the collection's task lock (flush and compaction hold it too), the commit: if F's
   declaration still has P's fingerprint, the coordinator registers the file guarded by S still
   being registered (a compaction may have replaced S meanwhile). Only then is the file mapped,
   its checksum verified, the index opened and attached to S in the query node in one step.
   Anything that does not commit is removed, and a crash before the commit leaves a file the
   next open's garbage collection removes (no committed key names it): a half-built index is
   never loaded.
4. Compaction's output has no index until step 1 picks it up; the inputs' index files go with
   them (the coordinator unregisters them in the compaction's transaction).

Opening a collection attaches every committed file built for the current declaration and
unregisters (and removes) files built for another one. ``drop_index`` unregisters the field's
files, detaches them from the query node and removes them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from vecstore.common import failpoints
from vecstore.errors import CorruptionError, StorageError
from vecstore.index.segment_index import SegmentIndex
from vecstore.index.spec import IndexSpec, declared_specs
from vecstore.proxy.convert import Layout
from vecstore.storage.segment.index_file import IndexFileRef, map_index_file

log = logging.getLogger(__name__)


class Indexing:
    def __init__(self, dep: Any) -> None:
        self._dep = dep
        self._mu = threading.Lock()
        self._specs: dict[int, dict[str, IndexSpec]] = {}  # declared indexes that need builds

    # ---- declarations -----------------------------------------------------------------------

    def declare(self, meta: Any) -> None:
        """Records the collection's current declarations (at open, create_index, drop_index)."""
        vectors = Layout.of(meta.collection_schema()).vectors
        specs = {f: s for f, s in declared_specs(vectors, meta.properties).items()
                 if not s.exact}
        with self._mu:
            self._specs[meta.id] = specs

    def forget(self, collection_id: int) -> None:
        with self._mu:
            self._specs.pop(collection_id, None)

    def spec(self, collection_id: int, field: str) -> IndexSpec | None:
        with self._mu:
            return self._specs.get(collection_id, {}).get(field)

    # ---- load at open -----------------------------------------------------------------------

    def load(self, collection_id: int) -> None:
        """Attaches the committed index files built for the current declarations; unregisters
        and removes the others."""
        coord = self._dep.coordinator
        loaded = dict(self._dep.query.segments(collection_id))
        for ref in coord.index_files(collection_id):
            spec = self.spec(collection_id, ref.field)
            sealed = loaded.get(ref.segment_id)
            if spec is None or spec.fingerprint != ref.fingerprint or sealed is None:
                coord.forget_indexes(collection_id, ref.field,
                                     keep=spec.fingerprint if spec else None)
                if sealed is not None:
                    self._remove(sealed.segment.prefix, ref)
                continue
            try:
                index = self._open(sealed, spec, ref)
            except CorruptionError:
                # Derived data: searches stay exact on this segment until it is rebuilt.
                log.error("index file %s of segment %s is damaged; it is removed and rebuilt",
                          ref.name, sealed.segment.prefix, exc_info=True)
                coord.forget_index(collection_id, ref)
                self._remove(sealed.segment.prefix, ref)
                continue
            self._dep.query.attach_index(collection_id, ref.segment_id, ref.field, index)

    def _open(self, sealed: Any, spec: IndexSpec, ref: IndexFileRef) -> SegmentIndex:
        buffer = map_index_file(self._dep.datadir.objects, sealed.segment.prefix, ref)
        return SegmentIndex(spec, buffer, sealed.segment.vectors(ref.field))

    def _remove(self, prefix: str, ref: IndexFileRef) -> None:
        try:
            self._dep.datadir.objects.delete(f"{prefix.rstrip('/')}/{ref.name}")
        except OSError:  # garbage now; the next open removes it
            log.warning("could not remove index file %s of %s", ref.name, prefix, exc_info=True)

    # ---- building ---------------------------------------------------------------------------

    def jobs(self, collection_id: int) -> list[tuple[int, str]]:
        with self._mu:
            specs = dict(self._specs.get(collection_id, {}))
        out = []
        for sid, sealed in self._dep.query.segments(collection_id):
            if sealed.segment.rows < self._dep.config.min_index_rows:
                continue
            for field, spec in specs.items():
                have = sealed.indexes.get(field)
                if have is None or have.spec != spec:
                    out.append((sid, field))
        return out

    def build(self, collection_id: int, job: tuple[int, str], cancel: Any = None) -> None:
        """Builds one job's index (``cancel``: see IndexTasks.build), writes its file, commits
        it and swaps it into the query node."""
        segment_id, field = job
        spec = self.spec(collection_id, field)
        sealed = dict(self._dep.query.segments(collection_id)).get(segment_id)
        if spec is None or sealed is None:
            return  # dropped or compacted meanwhile
        coord = self._dep.coordinator
        prefix = sealed.segment.prefix
        ref = self._dep.work.build_index(sealed.segment, segment_id, field, spec,
                                         coord.next_index_build(), cancel)
        committed = False
        try:
            if failpoints.hit("index.before_commit"):
                raise StorageError("failpoint index.before_commit: simulated I/O error")
            with self._dep._task(collection_id) as shard:
                current = self.spec(collection_id, field)
                if shard is None or current is None or current.fingerprint != ref.fingerprint:
                    return
                old = [r for r in coord.index_files(collection_id)
                       if r.segment_id == segment_id and r.field == field]
                if not coord.commit_index(collection_id, ref):
                    return
                committed = True
                failpoints.hit("index.after_commit")
                index = self._open(sealed, spec, ref)
                self._dep.query.attach_index(collection_id, segment_id, field, index)
            for r in old:
                if r.name != ref.name:
                    self._remove(prefix, r)
        finally:
            if not committed:
                self._remove(prefix, ref)

    # ---- drop and progress ------------------------------------------------------------------

    def drop(self, meta: Any, field: str) -> None:
        """drop_index: the field's files are unregistered, detached and removed."""
        self.declare(meta)
        with self._dep._task(meta.id):
            gone = self._dep.coordinator.forget_indexes(meta.id, field)
            self._dep.query.detach_indexes(meta.id, field)
        prefixes = {sid: s.segment.prefix for sid, s in self._dep.query.segments(meta.id)}
        for ref in gone:
            if ref.segment_id in prefixes:
                self._remove(prefixes[ref.segment_id], ref)

    def progress(self, collection_id: int, field: str) -> tuple[int, int, int]:
        """(total, indexed, pending) rows of the field's index: sealed rows with a current
        index (or in segments too small to need one) are indexed, other sealed rows pending;
        growing rows count in the total only (they are searched exactly)."""
        spec = self.spec(collection_id, field)
        sealed_rows = indexed = 0
        for _, sealed in self._dep.query.segments(collection_id):
            rows = sealed.segment.rows
            sealed_rows += rows
            have = sealed.indexes.get(field)
            if rows < self._dep.config.min_index_rows or (have is not None and have.spec == spec):
                indexed += rows
        growing = self._dep.growing_rows(collection_id)
        return sealed_rows + growing, indexed, sealed_rows - indexed
