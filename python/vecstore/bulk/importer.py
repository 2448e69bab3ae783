"""Running bulk imports: files -> validated rows -> sealed segments -> one commit.

:meth:`ImportJobs.submit` checks everything it can without reading rows (collection, partition,
options, files, formats and the column names of files that have a header) and raises before any
side effect; then a worker thread runs the job:

1. counts every file's rows (state ``Pending``; see :mod:`.sources`);
2. takes one timestamp from the TSO for all of the import's rows, then streams each file in
   batches of ``batch_size`` rows through insert's validation (:mod:`.validate`), partition
   routing and auto_id key allocation, into segments cut at the data node's seal size
   (:mod:`.segments`), written to the object store outside the WAL (state ``Importing``);
   vector rows go to the segment's files batch by batch, so memory stays at about one batch
   (Arrow's freed memory is handed back to the system after each batch);
3. commits every segment at once (``EmbeddedDeployment.commit_import``): the query node loads
   them in one step and the index builder is poked. Only then is the job ``Completed``.

A failure anywhere before the commit (a bad row without ``skip_invalid_rows``, an I/O error, the
client closing) removes the segments written and marks the job ``Failed``: no row of it is ever
visible. A crash leaves only uncommitted files, which the next open removes.

Semantics worth knowing: keys repeated within one batch are refused (skipped with
``skip_invalid_rows``), as insert refuses them; keys repeated across batches or already stored
are not checked, as separate inserts do not check them. A delete that runs while an import is in
progress applies to its rows (its timestamp is later than theirs). Jobs live in this process:
``list_import_jobs`` does not show jobs of an earlier run.

The deployment this runs against (``dep``) provides ``proxy.collection``, ``coordinator`` (tso,
next_segment_id, next_import_id, segment), ``datadir.objects``, ``config`` (seal sizes) and
``commit_import``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pyarrow as pa

from vecstore.bulk.jobs import ImportJob
from vecstore.bulk.segments import SegmentCutter
from vecstore.bulk.sources import open_sources
from vecstore.bulk.validate import validate_chunk
from vecstore.common import failpoints
from vecstore.errors import Cancelled, InvalidArgument, NotFoundError, NotSupported, StorageError
from vecstore.proxy.convert import split_batch
from vecstore.proxy.partitions import partition_key_field, route

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 8192
MAX_BATCH_ROWS = 1 << 18  # the TSO hands out at most this many auto_id keys at once
_OPTIONS = ("skip_invalid_rows", "batch_size")


class ImportJobs:
    """Every bulk import job of one deployment, by job id."""

    def __init__(self, dep: Any) -> None:
        self._dep = dep
        self._mu = threading.Lock()
        self._jobs: dict[str, ImportJob] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._closed = False

    def submit(self, db: str, name: str, files: Any, partition: str | None,
               options: dict[str, Any]) -> str:
        """Starts an import; returns its job id. Raises (nothing started) for bad arguments."""
        unknown = sorted(k for k in options if k not in _OPTIONS)
        if unknown:
            raise NotSupported(f"bulk_import: option(s) {unknown} are not supported; the "
                               f"options are {list(_OPTIONS)}")
        skip = options.get("skip_invalid_rows", False)
        if not isinstance(skip, bool):
            raise InvalidArgument(f"skip_invalid_rows must be a bool, got {skip!r}")
        batch = options.get("batch_size", DEFAULT_BATCH_ROWS)
        if isinstance(batch, bool) or not isinstance(batch, int) or \
                not 1 <= batch <= MAX_BATCH_ROWS:
            raise InvalidArgument(f"batch_size must be an int in [1, {MAX_BATCH_ROWS}], got "
                                  f"{batch!r}")
        meta, schema, _ = self._dep.proxy.collection(db, name)
        if partition is not None and not isinstance(partition, str):
            raise InvalidArgument(f"partition_name must be a string, got {partition!r}")
        if partition:
            if partition_key_field(meta) is not None:
                raise InvalidArgument("not support manually specifying the partition names if "
                                      "partition key mode is used; rows go to the partition "
                                      "their key hashes to")
            if partition not in meta.partitions:
                raise InvalidArgument(f"partition not found[partition={partition}]")
        sources = open_sources(files)
        for src in sources:
            _check_header(schema, src)
        with self._mu:
            if self._closed:
                raise InvalidArgument("the client is closed")
            job_id = str(self._dep.coordinator.next_import_id())
            job = ImportJob(job_id, meta.name, partition or None, [s.name for s in sources])
            self._jobs[job_id] = job
            t = threading.Thread(target=self._run, args=(job, db, name, sources, partition,
                                                         skip, batch),
                                 name=f"vecstore-import-{job_id}", daemon=True)
            self._threads[job_id] = t
        t.start()
        return job_id

    def get(self, job_id: Any) -> ImportJob:
        with self._mu:
            job = self._jobs.get(str(job_id))
        if job is None:
            raise NotFoundError(f"import job {job_id!r} not found (jobs are kept in memory by "
                                "the client that started them)")
        return job

    def list(self, collection_name: str | None = None) -> list[dict[str, Any]]:
        with self._mu:
            jobs = list(self._jobs.values())
        return [j.state() for j in jobs
                if collection_name is None or j.collection == collection_name]

    def close(self) -> None:
        """Cancels running jobs (they fail, committing nothing) and waits for their threads."""
        with self._mu:
            self._closed = True
            jobs, threads = list(self._jobs.values()), list(self._threads.values())
        for j in jobs:
            j.cancelled.set()
        for t in threads:
            t.join()

    # ---- the worker ---------------------------------------------------------------------

    def _run(self, job: ImportJob, db: str, name: str, sources: list[Any],
             partition: str | None, skip: bool, batch: int) -> None:
        dep = self._dep
        cutter = None
        try:
            meta, schema, layout = dep.proxy.collection(db, name)
            job.start(sum(s.count_rows() for s in sources))
            coord = dep.coordinator
            cutter = SegmentCutter(dep.datadir.objects, meta.id, layout.vectors,
                                   dep.config.seal_rows, dep.config.seal_bytes,
                                   coord.next_segment_id, coord.tso.now())
            for src in sources:
                for chunk in src.chunks(batch):
                    if job.cancelled.is_set():
                        raise Cancelled("the import was cancelled: the client was closed")
                    table, bad = validate_chunk(schema, chunk, src.name, skip)
                    n = table.num_rows
                    if n:
                        pks = dep.proxy.primary_keys(table, layout)
                        vectors, scalars = split_batch(table, layout, pks,
                                                       route(meta, table, partition))
                        cutter.add(pks, vectors, scalars)
                    job.advance(n, [(src.name, row, why) for row, why in bad])
                    del chunk, table
                    vectors = scalars = pks = None
                    # Arrow's allocator (mimalloc or jemalloc) keeps freed pages for reuse;
                    # handing them back keeps RSS at about one batch (measured: 115 -> 54 MiB
                    # anonymous RSS reading 250k rows in batches of 8192).
                    pa.default_memory_pool().release_unused()
            refs = cutter.finish()
            if failpoints.hit("import.before_commit"):
                raise StorageError("failpoint import.before_commit: simulated I/O error")
            if refs:
                dep.commit_import(meta.id, refs)
        except BaseException as e:  # the job reports every failure; nothing may stay visible
            committed = bool(cutter and cutter.written) and \
                dep.coordinator.segment(meta.id, cutter.written[0].id) is not None
            if cutter is not None and not committed:
                cutter.abort()
            reason = str(e) or type(e).__name__
            if committed:
                reason = f"the rows were committed but not all loaded ({reason}); reopen to load"
            log.warning("import job %s failed: %s", job.job_id, reason)
            job.finish(reason)
            if not isinstance(e, Exception):
                raise
        else:
            job.finish()


def _check_header(schema: Any, src: Any) -> None:
    """Column names of a file with a header against the schema: what insert would refuse for
    every row is refused before the import starts."""
    if src.fields is None:
        return
    names = set(src.fields)
    inputs = {f.name: f for f in schema.fields if f.name not in schema.function_output_names}
    for f in inputs.values():
        if f.is_primary and f.auto_id:
            if f.name in names:
                raise InvalidArgument(
                    f"{src.name}: has a column for the auto_id primary key {f.name!r}; Milvus "
                    "allocates the keys: drop the column")
        elif f.name not in names and not (f.nullable or f.default_value is not None):
            raise InvalidArgument(f"{src.name}: no column for field {f.name!r}, which is neither "
                                  "nullable nor has a default value; add the column")
    extra = sorted(names - set(inputs) - {"$meta"})
    if extra and not schema.enable_dynamic_field:
        raise InvalidArgument(f"{src.name}: column(s) {extra} are not fields of the collection "
                              "and its dynamic field is not enabled; drop them")
