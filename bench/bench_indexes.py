"""Indexes through the whole vecstore stack against hnswlib, usearch and faiss used directly
(the benchmark itself lives in :mod:`vecstore.benchmark.indexes`; this script runs
:mod:`vecstore.benchmark.runner`, as ``vecstore bench`` does, so it takes the same options).

Script mode (``python bench/bench_indexes.py [--n N] [--data clustered|minilm]
[--only ingest,hnsw,peers,ivf,filter] [--quick] [--plot bench/indexes.png] [--json out.json]``)
prints Markdown tables:
per engine the build time, the smallest ef (nprobe) reaching recall@10 >= 0.95 and the QPS there,
one query per call and 1,000 per call; ``--plot`` draws every engine's recall-QPS curve.
``--data minilm`` embeds an offline text corpus with MiniLM (bench/embeddings.py).
"""

from __future__ import annotations

import sys

from vecstore.benchmark.runner import main

if __name__ == "__main__":
    sys.exit(main())
