"""Numba kernels: pool token rows per text (plain or contrast-weighted mean), straight from the stored table
(float32, float16 or int8); and ``l2_normalize``, the project's one L2 normalisation of vectors."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.typing.templates import Signature
from numba.extending import intrinsic, overload

from static_model.jit import njit

# float16 has no numba CPU type: a float16 table is viewed as uint16 and decoded with integer operations (which
# vectorize; a look-up table does not). ``lut`` arguments are kept for callers that pass one; they are unused.
HALF_TO_FLOAT = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
_NO_LUT = np.zeros(1, dtype=np.float32)
_HALF_SCALE = np.float32(2.0**112)  # float16 exponent bias 15 → float32 bias 127


@intrinsic
def _bits_as_float32(typingctx: Any, bits: types.Type) -> tuple[Signature, Callable[..., ir.Value]]:
    """Reinterpret uint32 bits as a float32."""
    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: Sequence[ir.Value]) -> ir.Value:
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


def _decode(lut: np.ndarray, value: np.generic) -> np.float32:  # pragma: no cover - the overload below compiles it
    raise NotImplementedError


# numba compares this signature with the returned lambdas' (annotations included), and lambdas take none
@overload(_decode, inline="always")
def _decode_impl(lut, value):  # noqa: ANN001, ANN202
    """A stored value as float32: uint16 is a float16 bit pattern, anything else converts directly."""
    if isinstance(value, types.Integer) and value.bitwidth == 16 and not value.signed:
        # exact for every finite float16 (subnormals too: the float32 product renormalizes them)
        return lambda lut, value: _bits_as_float32(
            (np.uint32(value & 0x7FFF) << np.uint32(13)) | (np.uint32(value & 0x8000) << np.uint32(16))
        ) * _HALF_SCALE
    return lambda lut, value: np.float32(value)


@njit(nogil=True, fastmath=True)
def _token_weight(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, token: int, centroid: np.ndarray, scale: float, contrast: float,
) -> float:
    """``exp(-contrast * scale * (table[token] . centroid))``, the dot product vectorized (fastmath may reorder the
    sum). The loop only reads, so the compiler has no overlap to check at run time and takes the same code path, hence
    the same rounding, for every call, whatever the arrays' addresses."""
    dot = np.float32(0.0)
    for j in range(table.shape[1]):
        dot += _decode(lut, table[token, j]) * centroid[j]
    return np.exp(-contrast * (dot * scale))


@njit(nogil=True, fastmath=True)
def _norm(vector: np.ndarray) -> float:  # pragma: no cover
    """``|vector|`` in float32, vectorized like ``_token_weight`` (a loop that only reads)."""
    total = np.float32(0.0)
    for j in range(vector.shape[0]):
        total += vector[j] * vector[j]
    return np.sqrt(total)


@njit(nogil=True)
def _contrast_pass(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, weights: np.ndarray, norms: np.ndarray, ids: np.ndarray, start: int, end: int,
    contrast: float, out: np.ndarray, row: int, centroid: np.ndarray,
) -> float:
    """Re-pool ``out[row]`` (the segment's summed rows) with each row weighted by ``exp(-contrast * cos(row,
    sum))``; return the sum of the weights (the plain count when the rows cancel out).

    No fastmath here: a fastmath loop that copied ``out[row]`` while summing it was vectorized behind a run-time
    overlap check, and a scratch buffer allocated next to ``out`` took the scalar path, so a vector's last bit
    depended on where memory was allocated (seen under load, 8 threads on one model). Only ``_norm`` and
    ``_token_weight``, which write nothing, are fastmath."""
    dim = table.shape[1]
    for j in range(dim):
        centroid[j] = out[row, j]
    c_norm = _norm(centroid)
    if c_norm == 0.0:
        return np.float64(end - start)
    for j in range(dim):
        out[row, j] = 0.0
    total = 0.0
    for k in range(start, end):
        token = ids[k]
        w = weights[token]
        e = _token_weight(table, lut, token, centroid, w / (norms[token] * c_norm), contrast) if norms[token] > 0.0 \
            else 1.0
        total += e
        we = np.float32(w * e)
        for j in range(dim):
            out[row, j] += _decode(lut, table[token, j]) * we
    return total


@njit(nogil=True)
def _pool_segment(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, weights: np.ndarray, norms: np.ndarray, ids: np.ndarray, start: int, end: int,
    normalize: bool, contrast: float, out: np.ndarray, row: int, centroid: np.ndarray,
) -> None:
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
    total = np.float64(end - start)
    if contrast > 0.0 and end - start > 1:
        total = _contrast_pass(table, lut, weights, norms, ids, start, end, contrast, out, row, centroid)
    if normalize:
        norm = 0.0
        for j in range(dim):
            norm += out[row, j] * out[row, j]
        scale = 1.0 / np.sqrt(norm) if norm > 0.0 else 0.0
    else:
        scale = 1.0 / total if total > 0.0 else 0.0
    for j in range(dim):
        out[row, j] *= scale


@njit(nogil=True)
def _pool_range(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, weights: np.ndarray, norms: np.ndarray, ids: np.ndarray, offsets: np.ndarray,
    rows: np.ndarray, normalize: bool, contrast: float, out: np.ndarray, lo: int, hi: int,
) -> None:
    centroid = np.empty(table.shape[1], dtype=np.float32)  # scratch, one per range
    for seg in range(lo, hi):
        _pool_segment(table, lut, weights, norms, ids, offsets[seg], offsets[seg + 1], normalize, contrast, out,
                      rows[seg], centroid)


@njit(nogil=True)
def _pool_serial(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, weights: np.ndarray, norms: np.ndarray, ids: np.ndarray, offsets: np.ndarray,
    rows: np.ndarray, normalize: bool, contrast: float, out: np.ndarray,
) -> None:
    _pool_range(table, lut, weights, norms, ids, offsets, rows, normalize, contrast, out, 0, offsets.shape[0] - 1)


@njit(parallel=True, nogil=True)
def _pool_parallel(  # pragma: no cover
    table: np.ndarray, lut: np.ndarray, weights: np.ndarray, norms: np.ndarray, ids: np.ndarray, offsets: np.ndarray,
    rows: np.ndarray, normalize: bool, contrast: float, out: np.ndarray,
) -> None:
    n = offsets.shape[0] - 1
    blocks = min(n, 256)
    for b in numba.prange(blocks):
        _pool_range(table, lut, weights, norms, ids, offsets, rows, normalize, contrast, out, b * n // blocks,
                    (b + 1) * n // blocks)


# Below this many tokens, waking numba's thread pool costs more than the work.
PARALLEL_MIN_TOKENS = 50_000
# One call at a time uses numba's thread pool; a concurrent call pools serially instead of waiting (the callers'
# own threads already use the cores, and numba's "workqueue" layer must not be entered twice at once).
# ``_parallel_busy`` says a call uses it; it is set (under ``_GATE``, held for a moment) and cleared in ``pool`` by
# statements that no signal can split from the ``try`` that clears it, so a Ctrl-C at any point cannot leave it set
# (a lock taken with ``acquire(blocking=False)`` before a ``try`` could be left held by one landing in between, and
# every later call would then pool serially).
_GATE = threading.Lock()
_parallel_busy = False
_forked = False  # in a forked child the parent's OpenMP pool is not usable: pool serially


def _after_fork_in_child() -> None:
    global _GATE, _forked
    _GATE = threading.Lock()
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def pool(
    table: np.ndarray,
    weights: np.ndarray,
    ids: np.ndarray,
    offsets: np.ndarray,
    out: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    normalize: bool,
    contrast: float = 0.0,
    norms: np.ndarray | None = None,
) -> None:
    """Pool the rows ``r_t = table[t] * weights[t]`` of each segment into ``out`` (optionally L2-normalized).

    Segment ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` and lands in ``out[rows[i]]`` (``rows`` defaults to
    ``0..n-1``). An empty segment gives a zero vector. ``contrast=0``: the plain mean. ``contrast=c > 0``: the mean
    of the rows weighted by ``exp(-c * cos(r_t, m))``, ``m`` the segment's plain mean, so that rows pointing away
    from what the text's tokens share count more; ``norms`` (``|r_t|`` per token id) is then required.
    """
    n_segments = len(offsets) - 1
    if rows is None:
        rows = np.arange(n_segments, dtype=np.int64)
    if contrast > 0.0 and norms is None:
        raise ValueError("contrast pooling needs the rows' norms")
    is_half = table.dtype == np.float16
    data = table.view(np.uint16) if is_half else table
    args = (data, HALF_TO_FLOAT if is_half else _NO_LUT, weights, _NO_LUT if norms is None else norms, ids, offsets,
            rows, normalize, float(contrast), out)
    global _parallel_busy
    parallel = False
    try:
        if len(ids) >= PARALLEL_MIN_TOKENS and not _forked and not _parallel_busy:
            with _GATE:
                if not _parallel_busy:
                    _parallel_busy = parallel = True  # one statement: nothing can land between the two
        if parallel:
            _pool_parallel(*args)
        else:
            _pool_serial(*args)
    finally:
        if parallel:
            _parallel_busy = False


def rows_as_float32(table: np.ndarray, weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The float32 rows ``table[ids] * weights[ids]`` (one per token), for sequence outputs."""
    return table[ids].astype(np.float32) * weights[ids, None]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` divided by their L2 norm along the last axis, a zero vector left zero (never NaN), in the input's
    dtype; a new array. The one normalisation of the project (similarity, distill compare, the benchmarks' cosines)."""
    vectors = np.asarray(vectors)
    if not np.issubdtype(vectors.dtype, np.floating):
        vectors = vectors.astype(np.float64)
    if vectors.shape[-1] == 0:
        return vectors.copy()
    # each row divided by its largest |value| first: the squares of the norm then stay in range, where float32
    # rows of 1e20 (or 1e-25) overflowed (underflowed) to an infinite (zero) norm and came back as zero vectors,
    # and float16 rows past 256 did (a cosine of 0, silently); a row holding NaN stays zero, as before
    peak = np.maximum(vectors.max(axis=-1, keepdims=True), -vectors.min(axis=-1, keepdims=True))  # no |x| copy
    scaled = np.divide(vectors, peak, out=np.zeros_like(vectors), where=peak > 0)
    norms = np.linalg.norm(scaled, axis=-1, keepdims=True)
    return np.divide(scaled, norms, out=scaled, where=norms > 0)  # a row of zero norm is already zeros
