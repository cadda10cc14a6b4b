"""Numba kernels: mean-pool token rows per text, straight from the stored table (float32, float16 or int8)."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import overload

# float16 has no numba CPU type: a float16 table is viewed as uint16 and decoded through this table.
HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
_NO_LUT = np.zeros(1, dtype=np.float32)


def _decode(lut, value):  # pragma: no cover - replaced by the overload below inside compiled code
    raise NotImplementedError


@overload(_decode, inline="always")
def _decode_impl(lut, value):
    """A stored value as float32: uint16 is a float16 bit pattern, anything else converts directly."""
    if isinstance(value, types.Integer) and value.bitwidth == 16 and not value.signed:
        return lambda lut, value: lut[value]
    return lambda lut, value: np.float32(value)


@numba.njit(nogil=True, cache=True)
def _pool_segment(table, lut, weights, ids, start, end, normalize, out, row):  # pragma: no cover - compiled
    dim = table.shape[1]
    for j in range(dim):
        out[row, j] = 0.0
    if end == start:
        return
    for k in range(start, end):
        token = ids[k]
        w = weights[token]
        for j in range(dim):
            out[row, j] += _decode(lut, table[token, j]) * w
    if normalize:
        norm = 0.0
        for j in range(dim):
            norm += out[row, j] * out[row, j]
        scale = 1.0 / np.sqrt(norm) if norm > 0.0 else 0.0
    else:
        scale = 1.0 / (end - start)
    for j in range(dim):
        out[row, j] *= scale


@numba.njit(nogil=True, cache=True)
def _pool_serial(table, lut, weights, ids, offsets, rows, normalize, out):  # pragma: no cover - compiled
    for seg in range(offsets.shape[0] - 1):
        _pool_segment(table, lut, weights, ids, offsets[seg], offsets[seg + 1], normalize, out, rows[seg])


@numba.njit(parallel=True, nogil=True, cache=True)
def _pool_parallel(table, lut, weights, ids, offsets, rows, normalize, out):  # pragma: no cover - compiled
    for seg in numba.prange(offsets.shape[0] - 1):
        _pool_segment(table, lut, weights, ids, offsets[seg], offsets[seg + 1], normalize, out, rows[seg])


# Below this many tokens, waking numba's thread pool costs more than the work.
PARALLEL_MIN_TOKENS = 50_000


def pool_mean(
    table: np.ndarray,
    weights: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    out: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    normalize: bool,
) -> None:
    """Write the (optionally L2-normalized) mean of ``table[t] * weights[t]`` over each segment into ``out``.

    Segment ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` and lands in ``out[rows[i]]`` (``rows`` defaults to
    ``0..n-1``). An empty segment gives a zero vector.
    """
    n_segments = len(offsets) - 1
    if rows is None:
        rows = np.arange(n_segments, dtype=np.int64)
    is_half = table.dtype == np.float16
    data = table.view(np.uint16) if is_half else table
    kernel = _pool_parallel if len(ids) >= PARALLEL_MIN_TOKENS else _pool_serial
    kernel(data, HALF_TO_FLOAT if is_half else _NO_LUT, weights, ids, offsets, rows, normalize, out)


def rows_as_float32(table: np.ndarray, weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The float32 rows ``table[ids] * weights[ids]`` (one per token), for sequence outputs."""
    return table[ids].astype(np.float32) * weights[ids, None]
