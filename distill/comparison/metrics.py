"""The similarity measures ``compare`` reports, on vectors already computed: the cosines of pairs of rows, the
neighbour overlap of two models' vectors (``neighbour_overlaps`` per row, from ``distill.neighbours``)."""

from __future__ import annotations

import numpy as np

from distill.neighbours import neighbour_overlaps
from static_model.pooling import l2_normalize


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean |top-k(a) & top-k(b)| / k over rows; cosine neighbours, self excluded."""
    per_row = neighbour_overlaps(a, b, k)
    return float(per_row.mean()) if per_row.size else float("nan")


def pair_cosines(emb: np.ndarray) -> np.ndarray:
    """The cosine of every pair ``i < j`` of the rows, in ``np.triu_indices(n, 1)`` order."""
    unit = l2_normalize(np.asarray(emb, dtype=np.float32))
    return (unit @ unit.T)[np.triu_indices(len(unit), 1)]


def cosine_range(unit: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The lowest and the highest cosine between two different rows of ``unit`` (L2-normalized, at least 2 rows)."""
    lo, hi = np.inf, -np.inf
    for start in range(0, len(unit), chunk):
        sims = unit[start : start + chunk] @ unit.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = np.nan
        lo, hi = min(lo, float(np.nanmin(sims))), max(hi, float(np.nanmax(sims)))
    return np.asarray([lo, hi])
