"""Bulk import and export: moving whole files of rows in and out of a collection.

Import (``MilvusClient.bulk_import``, ``vecstore import``) reads Parquet, JSON, JSONL and NumPy
files in bounded batches, validates every row with insert's rules, writes sealed segments
straight to the object store (not through the WAL) and commits them all at once; a failed
import leaves nothing visible. Export (``vecstore export``) streams a collection's rows into a
Parquet file that import reads back.

Modules: :mod:`.sources` (file formats), :mod:`.validate` (rows through insert's validation),
:mod:`.segments` (cutting rows into segments), :mod:`.jobs` (job state), :mod:`.importer`
(running jobs), :mod:`.export`, :mod:`.progress` (terminal progress bar), :mod:`.cli`.
Like transport/, this package orchestrates roles: it calls the proxy's validation helpers and
the deployment's commit, and owns no data.
"""
