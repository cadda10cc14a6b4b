"""Spearman's rank correlation, the one implementation of the project (``distill compare`` and the benchmarks'
STS / word-similarity scores both use it). numpy only: importing it (or the benchmarks' metrics) loads no torch.

Constant input: when either side has a single distinct value (or fewer than two items) there is no ordering to
correlate, and ``spearman`` returns 0.0, the value of no association, not NaN. A model that maps every text to the
same vector therefore scores 0 on a rank metric, and a suite average or a bootstrap interval stays a number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rankdata(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """Ranks from 1 with ties averaged (as ``scipy.stats.rankdata``)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.concatenate(([True], xs[1:] != xs[:-1], [True]))
    idx = np.flatnonzero(boundaries)
    avg = (idx[:-1] + idx[1:] - 1) / 2.0 + 1.0
    ranks = np.empty_like(x)
    ranks[order] = np.repeat(avg, np.diff(idx))
    return ranks


def spearman(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """Spearman's rho of ``a`` and ``b`` (the Pearson correlation of their tie-averaged ranks, as
    ``scipy.stats.spearmanr``); 0.0 when either is constant or shorter than 2 (see the module docstring)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"spearman needs two sequences of one length, got {a.size} and {b.size}")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("spearman got NaN values: they have no rank")
    if a.size < 2:
        return 0.0
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0
