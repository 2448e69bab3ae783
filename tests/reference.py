"""Independent float64 numpy reference for every metric: the oracle of the kernel and search
tests."""

from __future__ import annotations

import numpy as np


def as_f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def ref_cdist(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric in ("HAMMING", "JACCARD"):
        ab = np.unpackbits(a, axis=1, bitorder="little").astype(bool)
        bb = np.unpackbits(b, axis=1, bitorder="little").astype(bool)
        inter = (ab[:, None, :] & bb[None, :, :]).sum(-1)
        uni = (ab[:, None, :] | bb[None, :, :]).sum(-1)
        if metric == "HAMMING":
            return (uni - inter).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(uni == 0, 0.0, 1.0 - inter / np.maximum(uni, 1))
    a64, b64 = as_f64(a), as_f64(b)
    if metric == "L2":
        return ((a64[:, None, :] - b64[None, :, :]) ** 2).sum(-1)
    dots = a64 @ b64.T
    if metric == "IP":
        return dots
    na = np.linalg.norm(a64, axis=1)[:, None]
    nb = np.linalg.norm(b64, axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((na == 0) | (nb == 0), 0.0, dots / (na * nb))


def tolerance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Per-pair error bound for float32 accumulation (and the |a|^2+|b|^2-2ab expansion)."""
    if metric in ("HAMMING", "JACCARD"):
        return np.full((a.shape[0], b.shape[0]), 1e-6)
    a64, b64 = as_f64(a), as_f64(b)
    na = (a64**2).sum(1)[:, None]
    nb = (b64**2).sum(1)[None, :]
    if metric == "L2":
        return 2e-6 * a.shape[1] ** 0.5 * (na + nb) + 1e-6
    if metric == "IP":
        return 2e-6 * a.shape[1] ** 0.5 * np.sqrt(na * nb) + 1e-6
    return np.full(na.shape[0:1] + nb.shape[1:], 2e-5)


def ranking_key(values: np.ndarray, metric: str) -> np.ndarray:
    """Smaller is better, for every metric."""
    return -values if metric in ("IP", "COSINE") else values


def random_vectors(rng: np.random.Generator, kind: str, n: int, dim: int) -> np.ndarray:
    """n vectors of `dim` dimensions (bits for binary) of the given kind."""
    if kind == "binary":
        return rng.integers(0, 256, size=(n, dim // 8), dtype=np.uint8)
    if kind == "int8":
        return rng.integers(-128, 128, size=(n, dim), dtype=np.int8)
    x = rng.standard_normal((n, dim))
    if kind == "bfloat16":
        import ml_dtypes

        return x.astype(ml_dtypes.bfloat16)
    return x.astype(np.float16 if kind == "float16" else np.float32)
