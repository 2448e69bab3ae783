"""MilvusClient's bulk import methods (:mod:`vecstore.bulk`).

A mixin of :class:`vecstore.client.MilvusClient`, which provides ``self._dep`` and ``self._db``.
``bulk_import`` returns a job id at once and imports in a background thread;
``get_import_progress`` / ``list_import_jobs`` return Milvus's import job state
(:mod:`vecstore.bulk.jobs`), from any thread; ``wait_for_import`` blocks until the job ends.
"""

from __future__ import annotations

from typing import Any

from vecstore.client.common import reject


class BulkMethods:
    _dep: Any
    _db: str
    _imports: Any = None

    def _import_jobs(self) -> Any:
        if self._imports is None:
            from vecstore.bulk.importer import ImportJobs

            self._imports = ImportJobs(self._dep)
        return self._imports

    def bulk_import(self, collection_name: str, files: list, partition_name: str | None = None,
                    timeout: float | None = None, **options: Any) -> str:
        """Starts importing ``files`` (Parquet, JSON, JSONL, or NumPy ``<field>.npy`` groups)
        into the collection; returns the job id. Options: ``skip_invalid_rows`` (bool, default
        False: the first bad row fails the job) and ``batch_size`` (rows read at a time, default
        8192). Rows follow insert's rules and all become visible at once when the job
        completes; a failed job leaves none. Bad arguments, missing files and columns that do
        not fit the schema raise here, before anything starts."""
        return self._import_jobs().submit(self._db, collection_name, files, partition_name or None,
                                          options)

    def get_import_progress(self, job_id: str, timeout: float | None = None, **kwargs: Any
                            ) -> dict[str, Any]:
        """The job's state: ``jobId``, ``collectionName``, ``state`` (Pending, Importing,
        Completed, Failed), ``progress`` (percent), ``importedRows``, ``totalRows``,
        ``skippedRows``, ``reason`` and more (see vecstore.bulk.jobs)."""
        reject(kwargs, "get_import_progress")
        return self._import_jobs().get(job_id).state()

    def list_import_jobs(self, collection_name: str | None = None, timeout: float | None = None,
                         **kwargs: Any) -> list[dict[str, Any]]:
        """The state of every import job this client started (of one collection if named)."""
        reject(kwargs, "list_import_jobs")
        return self._import_jobs().list(collection_name)

    def wait_for_import(self, job_id: str, timeout: float | None = None, progress: bool = False
                        ) -> dict[str, Any]:
        """Waits until the job is Completed or Failed (or ``timeout`` seconds pass) and returns
        its state. ``progress=True`` draws a progress bar on stderr when it is a terminal."""
        job = self._import_jobs().get(job_id)
        if not progress:
            job.wait(timeout)
            return job.state()
        import time

        from vecstore.bulk.progress import ProgressBar

        deadline = None if timeout is None else time.monotonic() + timeout
        done, total, _ = job.counts()
        bar = ProgressBar(total)
        while not job.wait(0.2):
            done, total, _ = job.counts()
            bar.update(done, total)
            if deadline is not None and time.monotonic() >= deadline:
                break
        bar.update(*job.counts()[:2])
        bar.close()
        return job.state()
