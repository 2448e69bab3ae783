"""The coordinator role: catalog and DDL, the timestamp oracle, WAL-to-streaming-node binding, query
views, and scheduling of flush, compaction and index jobs. Exactly one is active per deployment.

Built so far: the timestamp oracle (:mod:`~vecstore.coordinator.tso`) and the catalog of
databases, collections, partitions and aliases (:mod:`~vecstore.coordinator.catalog`, errors with
Milvus's codes in :mod:`~vecstore.coordinator.errors`).
"""
