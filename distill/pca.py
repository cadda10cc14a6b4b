"""PCA of the raw token vectors (fit in float64, deterministic signs) and projection on its basis.

``pca_dims`` (``PCADims``), as Model2Vec reads it: an int keeps that many components, a float in (0, 1) the fewest
components that explain at least that fraction of the variance, ``"auto"`` all of them (a rotation onto the
principal axes, no reduction), ``None`` no PCA at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias

import numpy as np

AUTO_DIMS = "auto"
PCADims: TypeAlias = int | float | str | None  # str: only AUTO_DIMS
# every dimension, rotated: dropping components lost on 2 and 4 of 20 development datasets and gained on 11 for
# MiniLM and mpnet (benchmarks/results/defaults.md, section 3); a smaller model is an explicit choice
DEFAULT_PCA_DIMS: PCADims = AUTO_DIMS


def check_pca_dims(pca_dims: PCADims) -> None:
    """A ``ValueError`` naming ``pca_dims`` unless it is a positive int, a float in (0, 1), ``"auto"`` or ``None``."""
    if pca_dims is None or pca_dims == AUTO_DIMS:
        return
    if isinstance(pca_dims, (int, np.integer)) and not isinstance(pca_dims, bool):
        if pca_dims >= 1:
            return
    elif isinstance(pca_dims, (float, np.floating)):
        if 0.0 < pca_dims < 1.0:
            return
        raise ValueError(f"pca_dims={pca_dims!r}: a float is the fraction of variance to keep and must be in (0, 1); "
                         "pass an int for a number of dimensions.")
    raise ValueError(f"pca_dims must be a positive int, a float in (0, 1), 'auto' or None, got {pca_dims!r}.")


def pca_basis(x: np.ndarray, dims: int | float, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mean, components (d, k), explained variance ratio)`` of ``x`` (n, d), fit in float64: ``k = dims`` for an
    int, for a float in (0, 1) the fewest components whose explained variance ratio is at least ``dims``.

    Each component's sign is fixed so that its largest-magnitude score on ``x`` is positive (deterministic
    output). The covariance and the scores are accumulated over row chunks: no float64 copy of ``x`` is held.
    """
    n, d = x.shape
    if isinstance(dims, (float, np.floating)):
        if not 0.0 < dims < 1.0:
            raise ValueError(f"pca_dims={dims} must be in (0, 1) as a float (a fraction of the variance).")
    elif not 1 <= dims <= d:
        raise ValueError(f"pca_dims={dims} must be between 1 and the teacher's hidden size {d}.")
    elif dims > n:
        raise ValueError(f"pca_dims={dims} is larger than the number of vectors ({n}).")
    mean = x.mean(axis=0, dtype=np.float64)
    comps, ratio = pca_basis_from_blocks(lambda: (x[s : s + chunk] for s in range(0, n, chunk)), n, mean, dims)
    return mean, comps, ratio


def pca_basis_from_blocks(
    blocks: Callable[[], Iterable[np.ndarray]], n: int, mean: np.ndarray, dims: int | float
) -> tuple[np.ndarray, float]:
    """``(components (d, k), explained variance ratio)`` of ``n`` rows given as row blocks around their float64
    ``mean``: the one PCA of the project (``pca_basis`` on an array, ``distill.refine.targets.fit_pca`` on
    memory-mapped chunks). ``blocks()`` yields the rows in order, a fresh pass each call (two passes: the
    centred covariance, then the signs); ``dims`` is already checked: an int ``k``, or a float in (0, 1) for the
    fewest components whose explained variance ratio is at least ``dims``.

    Each component's sign is fixed so that its largest-magnitude score (the first one on ties) is positive:
    deterministic output.
    """
    d = mean.shape[0]
    cov = np.zeros((d, d), dtype=np.float64)
    for block in blocks():
        xc = block.astype(np.float64) - mean
        cov += xc.T @ xc
    cov /= max(n - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
    eigvals = np.clip(eigvals[::-1], 0.0, None)
    total = float(eigvals.sum())
    k = int(dims) if not isinstance(dims, (float, np.floating)) else components_for_variance(eigvals, float(dims), n)
    comps = np.ascontiguousarray(eigvecs[:, ::-1][:, :k])
    ratio = float(eigvals[:k].sum() / total) if total > 0 else 1.0
    extreme = np.zeros(k)  # per component, the score of largest magnitude (the first one on ties)
    for block in blocks():
        scores = (block.astype(np.float64) - mean) @ comps
        top = scores[np.argmax(np.abs(scores), axis=0), np.arange(k)]
        extreme = np.where(np.abs(top) > np.abs(extreme), top, extreme)
    signs = np.sign(extreme)
    signs[signs == 0] = 1.0
    return comps * signs, ratio


def components_for_variance(eigvals: np.ndarray, fraction: float, n: int) -> int:
    """The fewest leading components (``eigvals`` descending) whose share of the total is at least ``fraction``
    (what Model2Vec keeps for a float ``pca_dims``), at most ``min(len(eigvals), n)``."""
    limit = max(1, min(eigvals.size, n))
    total = float(eigvals.sum())
    if total <= 0:
        return 1
    cumulative = np.cumsum(eigvals) / total
    return min(int(np.searchsorted(cumulative, fraction)) + 1, limit)


def pca(x: np.ndarray, dims: PCADims, *, chunk: int = 4096, keep_mean: bool = False) -> tuple[np.ndarray, float]:
    """Project ``x`` (n, d) on its leading principal components (``pca_basis``; ``dims`` as ``check_pca_dims``
    takes it, ``"auto"`` all ``d``): ``(x - mean) @ components``, float32 (n, k), and the explained variance ratio of
    the kept components. ``dims=None`` returns ``x`` unchanged (ratio 1.0). ``keep_mean=True`` adds the projection
    of the data's mean back (``x @ components``): the outputs keep the data's common offset, so cosines between them
    approximate the cosines of the inputs (refinement targets: the teacher's own similarity geometry).
    """
    check_pca_dims(dims)
    if dims is None:
        return np.asarray(x, dtype=np.float32), 1.0
    if isinstance(dims, str):  # "auto" (check_pca_dims): every component
        dims = int(x.shape[1])
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
