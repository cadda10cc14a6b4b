"""Storage dtypes of the embedding table: float32, float16, and int8 with a per-row scale."""

from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float16", "int8")


def check_dtype(dtype: str) -> str:
    """``dtype`` as one of :data:`DTYPES`, or a ``ValueError`` naming the choices."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return name


def quantize(
    embeddings: np.ndarray, weights: np.ndarray | None, dtype: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The table and per-token weights stored as ``dtype``; the effective rows ``embeddings * weights`` stay put.

    int8 keeps magnitudes: each row is scaled to [-127, 127] and its scale becomes that token's weight (the
    tensor Model2Vec and sentence-transformers already multiply in), so nothing but rounding is lost.
    """
    dtype = check_dtype(dtype)
    if dtype == "int8":
        rows = effective_rows(embeddings, weights)
        scale = np.abs(rows).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        table = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
        return table, scale.astype(np.float32)
    if embeddings.dtype == np.int8:  # int8 rows only mean something with their scale: fold it in
        return effective_rows(embeddings, weights).astype(dtype), None
    return embeddings.astype(dtype), weights


def effective_rows(embeddings: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """The float32 table ``embeddings * weights[:, None]``."""
    rows = embeddings.astype(np.float32)
    return rows if weights is None else rows * weights[:, None].astype(np.float32)
