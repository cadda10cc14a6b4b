"""Post-processing of the raw token vectors: PCA (fit in float64) and SIF weights."""

from __future__ import annotations

import numpy as np


def pca(x: np.ndarray, dims: int | None, *, chunk: int = 4096, keep_mean: bool = False) -> tuple[np.ndarray, float]:
    """Project ``x`` (n, d) on its first ``dims`` principal components, fit in float64.

    The data are centred; each component's sign is fixed so that its largest-magnitude score is
    positive (deterministic output). The covariance and the projection are accumulated in float64
    over row chunks, so no float64 copy of ``x`` is ever held. Returns ``(projected float32
    (n, dims), explained variance ratio of the kept components)``. ``dims=None`` returns ``x``
    unchanged (ratio 1.0). ``keep_mean=True`` adds the projection of the data's mean back (``x @ components``
    instead of ``(x - mean) @ components``): the outputs keep the data's common offset, so cosines between them
    approximate the cosines of the inputs (refinement targets: the teacher's own similarity geometry).
    """
    if dims is None:
        return np.asarray(x, dtype=np.float32), 1.0
    n, d = x.shape
    if not 1 <= dims <= d:
        raise ValueError(f"pca_dims={dims} must be between 1 and the teacher's hidden size {d}.")
    if dims > n:
        raise ValueError(f"pca_dims={dims} is larger than the number of vectors ({n}).")
    mean = x.mean(axis=0, dtype=np.float64)
    cov = np.zeros((d, d), dtype=np.float64)
    for start in range(0, n, chunk):
        xc = x[start : start + chunk].astype(np.float64) - mean
        cov += xc.T @ xc
    cov /= max(n - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
    eigvals = np.clip(eigvals[::-1], 0.0, None)
    comps = np.ascontiguousarray(eigvecs[:, ::-1][:, :dims])
    total = float(eigvals.sum())
    ratio = float(eigvals[:dims].sum() / total) if total > 0 else 1.0
    out = np.empty((n, dims), dtype=np.float32)
    for start in range(0, n, chunk):
        out[start : start + chunk] = (x[start : start + chunk].astype(np.float64) - mean) @ comps
    signs = np.sign(out[np.argmax(np.abs(out), axis=0), np.arange(dims)])
    signs[signs == 0] = 1.0
    out *= signs
    if keep_mean:
        out += (mean @ comps * signs).astype(np.float32)
    return out, ratio


def zipf_probabilities(n: int) -> np.ndarray:
    """Zipf's law over rank (rank 0 = most frequent): p_r proportional to 1 / (r + 2), as Model2Vec."""
    inv = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    return inv / inv.sum()


def sif_weights(probabilities: np.ndarray, a: float | None) -> np.ndarray:
    """SIF weights ``a / (a + p)``; ``a=None`` gives all ones."""
    p = np.asarray(probabilities, dtype=np.float64)
    if a is None:
        return np.ones_like(p, dtype=np.float32)
    return (a / (a + p)).astype(np.float32)
