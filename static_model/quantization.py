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
        return cast_table(effective_rows(embeddings, weights), dtype, folded=True), None
    return cast_table(embeddings, dtype), weights


def cast_table(table: np.ndarray, dtype: str, *, folded: bool = False) -> np.ndarray:
    """The 2-D ``table`` as the float ``dtype``, or a ``ValueError`` saying what does not fit: a value beyond the
    dtype's range (float16: ±65504) would become infinite, a nonzero row whose values all lie below its smallest
    value would become a zero row (its token silently a zero vector), and a nonzero row whose largest magnitude is
    below 127 times that value (float16: 7.6e-6) would be rounded by more than int8 rounds it (half a step is then
    above 1/254 of the row's peak). ``folded``: the rows hold their weights."""
    target = np.dtype(dtype)
    if table.dtype == target or target.kind != "f":
        return table.astype(target)
    info = np.finfo(target)
    what = "the table times its weights (int8 rows hold their scale there)" if folded else "the table"
    if folded:
        advice = "keep the model int8 or store it as float32"
    else:
        advice = "use 'int8' (which keeps each row's scale in its weight) or keep float32"
    peaks = _row_peaks(table)
    if peaks.size and float(peaks.max()) > float(info.max):  # NaN compares False: reported by the model's own checks
        raise ValueError(
            f"cannot store {what} as dtype={target.name!r}: it holds values out of {target.name}'s range "
            f"(±{float(info.max):.6g}); the largest magnitude found is {float(peaks.max()):.6g}. "
            f"{advice.capitalize()}, or scale the table down and its weights up by the same factor"
        )
    with np.errstate(under="ignore"):
        out = table.astype(target)
    lost = np.flatnonzero((peaks > 0) & (_row_peaks(out) == 0))
    if lost.size:
        i = int(lost[0])
        raise ValueError(
            f"cannot store {what} as dtype={target.name!r}: row {i} is nonzero but its largest magnitude, "
            f"{peaks[i]:.3g}, is below {target.name}'s smallest value ({float(info.smallest_subnormal):.3g}), so it "
            f"would become a zero row ({lost.size} such rows). {advice.capitalize()}, or scale the table up and its "
            "weights down by the same factor"
        )
    # Below 127 steps of the smallest subnormal (float16: 7.6e-6) a row is all subnormal and float16's rounding (half
    # a step, 3e-8) moves it by more than int8's would (1/254 of the row's peak): a row of 1e-6 by up to 2.3% of its
    # peak, of 1e-7 by 23%, silently. Refused like a zero row, with the same advice (int8 keeps each row's scale).
    step = float(info.smallest_subnormal)
    coarse = np.flatnonzero((peaks > 0) & (peaks < 127 * step))
    if coarse.size:
        i = int(coarse[0])
        raise ValueError(
            f"cannot store {what} as dtype={target.name!r}: row {i} is nonzero but its largest magnitude, "
            f"{peaks[i]:.3g}, is below {127 * step:.3g} (127 steps of {target.name}'s smallest value, {step:.3g}), "
            f"so rounding would move it by more than int8 would ({coarse.size} such rows). {advice.capitalize()}, or "
            "scale the table up and its weights down by the same factor"
        )
    return out


def _row_peaks(table: np.ndarray) -> np.ndarray:
    """Each row's largest magnitude as float64, in row blocks (no full float64 copy of the table)."""
    peaks = np.zeros(len(table), dtype=np.float64)
    step = max(1, 2**22 // max(1, table.shape[1]))
    for lo in range(0, len(table), step):
        block = table[lo : lo + step]
        if block.size:
            peaks[lo : lo + step] = np.abs(block.astype(np.float64)).max(axis=1)
    return peaks


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
        return cast_table(embeddings, dtype), token_weights
    rows = embeddings.astype(np.float32)
    scale = np.abs(rows).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    table = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return table, (token_weights * scale[mapping]).astype(np.float32)
