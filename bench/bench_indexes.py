"""Indexes through the whole vecstore stack against hnswlib, usearch and faiss used directly
(the benchmark itself lives in :mod:`vecstore.benchmark.indexes`, which ``vecstore bench`` also
runs).

Script mode (``python bench/bench_indexes.py [--n N] [--data clustered|minilm]
[--only hnsw,ivf,filter] [--plot bench/indexes.png] [--json out.json]``) prints Markdown tables:
per engine the build time, the smallest ef (nprobe) reaching recall@10 >= 0.95 and the QPS there,
one query per call and 1,000 per call; ``--plot`` draws every engine's recall-QPS curve.
``--data minilm`` embeds an offline text corpus with MiniLM (bench/embeddings.py).
"""

from __future__ import annotations

import sys

from vecstore.benchmark.indexes import main

if __name__ == "__main__":
    sys.exit(main())
