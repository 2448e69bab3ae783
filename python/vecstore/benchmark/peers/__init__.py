"""Database peers for ``vecstore bench``: Milvus Lite (pymilvus), LanceDB and Chroma.

Each module offers the same two things, used only if its packages import (``MODULES``):

- ``Sink(root, dim)``: a fresh collection/table under the directory ``root`` for the ingestion
  benchmark (:mod:`vecstore.benchmark.ingest`): ``prepare(ids, vectors)`` turns one batch into the
  form the system takes (not timed), ``insert(prepared)`` writes it, ``flush()`` makes everything
  durable as far as the system's API offers, ``close()``. ``name``, ``form`` and
  ``durability`` (what was seen under strace: when the system fsyncs) describe it.
- ``Search(params)``: an engine for :func:`vecstore.benchmark.indexes.ladder_run` with ``name``,
  ``knob`` (the search parameter the ladder varies), ``build(base) -> seconds``,
  ``run(queries, value)``, ``ids(queries, value) -> (len(queries), K) int64`` and ``close()``.

Every peer runs with its own defaults for durability; each module's docstring says what they are.
"""

from __future__ import annotations

import importlib

PEERS = ("milvus_lite", "lance", "chroma")


def load(name: str):
    """The peer module ``name`` (one of ``PEERS``) if its packages import, else None."""
    module = importlib.import_module(f"vecstore.benchmark.peers.{name}")
    from vecstore.benchmark import indexes

    return module if all(indexes.installed(m) for m in module.MODULES) else None
