"""Nearest neighbours by cosine with one fixed order for ties: the top-k ranking behind nDCG (``benchmarks``) and the
neighbour overlap of ``distill compare`` and the fidelity study."""

from __future__ import annotations

import numpy as np

from static_model.pooling import l2_normalize


def top_k_order(sims: np.ndarray, k: int, tie_rank: np.ndarray | None = None) -> np.ndarray:
    """The ``(rows, min(k, columns))`` column indices of each row's ``k`` highest ``sims``, highest first; equal
    scores in the order of ``tie_rank`` (per column, lower first; default: the column index).

    One fixed ranking, ties at the k-th place included: ``np.argpartition`` finds the k-th highest score, every
    column scoring at least that is a candidate, and the candidates are sorted by (score descending, ``tie_rank``).
    """
    sims = np.asarray(sims)
    rows, cols = sims.shape
    k = max(0, min(k, cols))
    tie = np.arange(cols) if tie_rank is None else np.asarray(tie_rank)
    if k == 0:
        return np.empty((rows, 0), dtype=np.intp)
    if k == cols:
        cand = np.broadcast_to(np.arange(cols), (rows, cols))
        return np.take_along_axis(cand, np.lexsort((tie[cand], -sims), axis=1), axis=1)
    cand = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sims, cand, axis=1)
    out = np.take_along_axis(cand, np.lexsort((tie[cand], -top), axis=1), axis=1)
    kth = top.min(axis=1)
    for r in np.flatnonzero(np.count_nonzero(sims >= kth[:, None], axis=1) > k):  # the k-th score tied past k
        tied = np.flatnonzero(sims[r] >= kth[r])
        out[r] = tied[np.lexsort((tie[tied], -sims[r, tied]))[:k]]
    return out


def neighbour_overlaps(a: np.ndarray, b: np.ndarray, k: int = 10, *, chunk: int = 1024) -> np.ndarray:
    """|top-k(a) & top-k(b)| / k for each row (cosine neighbours, self excluded; k capped at rows - 1); empty for
    fewer than 2 rows.

    Equal cosines (duplicate texts have one vector) are taken in row order, the lower row first, under both
    embeddings (``top_k_order``): the same rule for both, and one number whatever order a partial sort leaves."""
    n = len(a)
    if len(b) != n:
        raise ValueError(f"a has {n} rows but b {len(b)}")
    if n < 2:
        return np.zeros(0)
    k = min(k, n - 1)
    out = np.empty(n)
    ua, ub = l2_normalize(np.asarray(a, dtype=np.float32)), l2_normalize(np.asarray(b, dtype=np.float32))
    for start in range(0, n, chunk):
        sa, sb = ua[start : start + chunk] @ ua.T, ub[start : start + chunk] @ ub.T
        rows = np.arange(sa.shape[0])
        sa[rows, rows + start] = -np.inf
        sb[rows, rows + start] = -np.inf
        for i, (x, y) in enumerate(zip(top_k_order(sa, k), top_k_order(sb, k))):
            out[start + i] = len(np.intersect1d(x, y, assume_unique=True)) / k
    return out
