"""The top-k reduce against a straightforward per-query reference."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.errors import InvalidArgument
from vecstore.proxy.reduce import merge_topk


def reference(parts, k, metric):
    hi = metric in ("IP", "COSINE")
    nq = parts[0][0].shape[0]
    out = []
    for q in range(nq):
        best: dict[int, float] = {}
        for ids, dist in parts:
            for i, d in zip(ids[q].tolist(), dist[q].tolist()):
                if not np.isfinite(d):
                    continue
                if i not in best or (d > best[i] if hi else d < best[i]):
                    best[i] = d
        ranked = sorted(best.items(), key=lambda t: ((-t[1] if hi else t[1]), t[0]))[:k]
        out.append(([i for i, _ in ranked], [d for _, d in ranked]))
    return out


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE", "HAMMING"])
def test_matches_reference_with_ties_duplicates_and_padding(rng, metric):
    hi = metric in ("IP", "COSINE")
    for _ in range(20):
        nq, k = int(rng.integers(1, 6)), int(rng.integers(1, 8))
        parts = []
        for _ in range(int(rng.integers(1, 5))):
            ki = int(rng.integers(1, 9))
            ids = rng.integers(0, 30, (nq, ki)).astype(np.int64)
            dist = rng.integers(0, 6, (nq, ki)).astype(np.float32)  # many ties
            pad = rng.random((nq, ki)) < 0.2
            ids[pad] = -1
            dist[pad] = -np.inf if hi else np.inf
            parts.append((ids, dist))
        got = merge_topk(parts, k, metric)
        want = reference(parts, k, metric)
        for (gi, gd), (wi, wd) in zip(got, want):
            assert gi.tolist() == wi and gd.tolist() == wd


def test_bad_parts():
    with pytest.raises(InvalidArgument):
        merge_topk([], 3, "L2")
    with pytest.raises(InvalidArgument):
        merge_topk([(np.zeros((2, 3)), np.zeros((2, 2)))], 3, "L2")


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_single_query_path_equals_the_batched_one(rng, metric):
    from vecstore.proxy.reduce import merge_topk_sources

    for _ in range(200):
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            ki = int(rng.integers(1, 9))
            ids = rng.integers(0, 12, (1, ki)).astype(np.int64)
            dist = rng.integers(0, 4, (1, ki)).astype(np.float32)  # ties and duplicate pks
            dist[rng.random((1, ki)) < 0.2] = np.inf if metric == "L2" else -np.inf
            parts.append((ids, dist))
        k = int(rng.integers(1, 10))
        one = merge_topk_sources(parts, k, metric)[0]
        two = merge_topk_sources([(np.vstack([i, i]), np.vstack([d, d])) for i, d in parts],
                                 k, metric)[1]
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)
