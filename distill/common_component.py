"""SIF's common-component removal (Arora, Liang & Ma 2017, step 2), folded into the static table.

Sentence vectors of a static model share one direction: the mean sentence vector (for the MiniLM distill, 30% of
the uncentred second moment of 5,000 normalized corpus sentence vectors lies along it; their mean pairwise cosine is
0.28). SIF removes the projection of every sentence vector on that direction. A projection is linear and the
runtime pools a mean of rows, so removing it from every row removes it from every pooled vector, exactly, at no
cost when encoding and in every loader of the folder (Model2Vec's and sentence-transformers' means too).

The direction is estimated without text: the mean row under the frequency model the SIF weights already use
(``p``: Zipf's law over token ids, or the counts given with ``token_frequencies``), i.e. the expected token row of a
sentence. Measured under the selection protocol (``benchmarks/results/defaults.md``, section 8).

``drop_top_components`` is its word-level companion, "all-but-the-top" (Mu & Viswanath 2018): the few top principal
directions of the token vectors carry what all tokens share (frequency, position in the teacher's space) more than
what tells them apart; the published rule drops ``round(dims / 100)`` of them (``top_components_rule``).
"""

from __future__ import annotations

import numpy as np


def common_direction(rows: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The unit direction of ``probabilities @ rows`` (float64, ``(dim,)``): the mean row when tokens are drawn with
    ``probabilities`` (one per row); all zeros when that mean is zero (nothing to remove)."""
    rows = np.asarray(rows)
    p = np.asarray(probabilities, dtype=np.float64)
    if rows.ndim != 2 or p.shape != (rows.shape[0],):
        raise ValueError(f"probabilities has shape {p.shape}; rows has shape {rows.shape} (one probability a row).")
    mean = p @ rows.astype(np.float64)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else np.zeros_like(mean)


def remove_component(rows: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``rows`` with their projection on the unit ``direction`` removed (``rows @ (I - u u^T)``), in ``rows``' dtype."""
    rows = np.asarray(rows)
    u = np.asarray(direction, dtype=np.float64)
    if u.shape != (rows.shape[1],):
        raise ValueError(f"direction has shape {u.shape}; the rows have {rows.shape[1]} dims.")
    r64 = rows.astype(np.float64)
    return (r64 - np.outer(r64 @ u, u)).astype(rows.dtype)


def top_components_rule(dims: int) -> int:
    """How many top principal directions all-but-the-top drops: ``round(dims / 100)`` (Mu & Viswanath's rule; 4 for
    384 dims, 8 for 768, none below 50)."""
    return int(round(dims / 100))


def drop_top_components(rows: np.ndarray, count: int) -> np.ndarray:
    """``rows`` with their projections on the ``count`` top principal directions of the rows (centred, every row
    counting once) removed, in ``rows``' dtype; ``count=0`` returns them unchanged. On rows already rotated onto their
    principal axes (``distill.pca``) this zeroes the first ``count`` columns."""
    rows = np.asarray(rows)
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or not 0 <= count <= rows.shape[1]:
        raise ValueError(f"count must be an int from 0 to the rows' {rows.shape[1]} dims, got {count!r}.")
    if count == 0:
        return rows
    r64 = rows.astype(np.float64)
    centred = r64 - r64.mean(0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    top = vecs[:, ::-1][:, :count]
    return (r64 - (r64 @ top) @ top.T).astype(rows.dtype)
