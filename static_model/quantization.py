"""Storage dtypes of the embedding table: float32, float16, and int8 with a per-row scale."""

from __future__ import annotations

import numpy as np

DTYPES = ("float32", "float16", "int8")


def check_dtype(dtype: str) -> str:
    """``dtype`` as one of :data:`DTYPES`, or a ``ValueError`` naming the choices."""
    try:
        name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:  # not a dtype at all (3, "x"): numpy's message would not name the argument
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return name


def quantize(
    embeddings: np.ndarray, weights: np.ndarray | None, dtype: str, *, mapping: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The table and per-token weights stored as ``dtype``; the effective rows ``embeddings * weights`` stay put.

    int8 keeps magnitudes: each row is scaled to [-127, 127] and its scale becomes that token's weight (the
    tensor Model2Vec and sentence-transformers already multiply in), so nothing but rounding is lost.
    With a token ``mapping`` (token id → row) the weights are per token id: see :func:`quantize_mapped`.
    """
    dtype = check_dtype(dtype)
    if mapping is not None:
        return quantize_mapped(embeddings, weights, dtype, mapping)
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


def quantize_mapped(
    embeddings: np.ndarray, weights: np.ndarray | None, dtype: str, mapping: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quantize` for a vocabulary-quantized table: token ``t``'s row is ``embeddings[mapping[t]] * weights[t]``.

    To int8 each row gets its own scale, multiplied into the weights of the tokens that use it; from int8 the stored
    values are exact in any float dtype, so the table is cast and the weights (which hold the scales) stay.
    """
    dtype = check_dtype(dtype)
    token_weights = np.ones(len(mapping), dtype=np.float32) if weights is None else weights.astype(np.float32)
    if dtype != "int8" or embeddings.dtype == np.int8:
        return embeddings.astype(dtype), token_weights
    rows = embeddings.astype(np.float32)
    scale = np.abs(rows).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    table = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return table, (token_weights * scale[mapping]).astype(np.float32)
