"""PCA of the raw token vectors (fit in float64, deterministic signs) and projection on its basis."""

from __future__ import annotations

import numpy as np


def pca_basis(x: np.ndarray, dims: int, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mean, components (d, dims), explained variance ratio)`` of ``x`` (n, d), fit in float64.

    Each component's sign is fixed so that its largest-magnitude score on ``x`` is positive (deterministic
    output). The covariance and the scores are accumulated over row chunks: no float64 copy of ``x`` is held.
    """
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
    extreme = np.zeros(dims)  # per component, the score of largest magnitude (the first one on ties)
    for start in range(0, n, chunk):
        scores = (x[start : start + chunk].astype(np.float64) - mean) @ comps
        top = scores[np.argmax(np.abs(scores), axis=0), np.arange(dims)]
        extreme = np.where(np.abs(top) > np.abs(extreme), top, extreme)
    signs = np.sign(extreme)
    signs[signs == 0] = 1.0
    return mean, comps * signs, ratio


def pca(x: np.ndarray, dims: int | None, *, chunk: int = 4096, keep_mean: bool = False) -> tuple[np.ndarray, float]:
    """Project ``x`` (n, d) on its first ``dims`` principal components (``pca_basis``): ``(x - mean) @
    components``, float32 (n, dims), and the explained variance ratio of the kept components. ``dims=None``
    returns ``x`` unchanged (ratio 1.0). ``keep_mean=True`` adds the projection of the data's mean back
    (``x @ components``): the outputs keep the data's common offset, so cosines between them approximate the
    cosines of the inputs (refinement targets: the teacher's own similarity geometry).
    """
    if dims is None:
        return np.asarray(x, dtype=np.float32), 1.0
    mean, comps, ratio = pca_basis(x, dims, chunk=chunk)
    return project(x, mean, comps, keep_mean=keep_mean, chunk=chunk), ratio


def project(x: np.ndarray, mean: np.ndarray, comps: np.ndarray, *, keep_mean: bool = False,
            chunk: int = 4096) -> np.ndarray:
    """``(x - mean) @ comps`` (plus ``mean @ comps`` when ``keep_mean``), float32, in float64 row chunks: how ``pca``
    projects its data, for new vectors on a basis from ``pca_basis``."""
    offset = mean @ comps if keep_mean else 0.0
    out = np.empty((x.shape[0], comps.shape[1]), dtype=np.float32)
    for start in range(0, x.shape[0], chunk):
        out[start : start + chunk] = (x[start : start + chunk].astype(np.float64) - mean) @ comps + offset
    return out
