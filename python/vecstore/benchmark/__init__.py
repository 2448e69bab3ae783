"""Benchmarks users run (``vecstore bench``, :mod:`vecstore.benchmark.runner`): ingestion
(:mod:`~vecstore.benchmark.ingest`), indexes vs libraries (:mod:`~vecstore.benchmark.indexes`),
HNSW through other databases (:mod:`~vecstore.benchmark.peer_search`,
:mod:`~vecstore.benchmark.peers`), MiniLM embeddings (:mod:`~vecstore.benchmark.embeddings`)."""
