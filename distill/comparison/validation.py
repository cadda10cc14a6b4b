"""Checks on what ``compare`` is given before any model loads (texts, pairs, gold scores, the memory their all-pairs
measures need), and on the vectors the models give back."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence, Sized

import numpy as np

# Peak bytes of the all-pairs measures per squared text count (cosines of both models, pair indices, ranks), measured:
# 8,000 texts peaked at 2.7 GB.
ALL_PAIRS_BYTES_PER_TEXT_SQUARED = 48


def check_all_pairs_fit(n_texts: int) -> None:
    """A ``ValueError`` before any model loads when the all-pairs measures of ``n_texts`` texts would not fit in the
    memory available now (Linux; elsewhere not checked): they grow with the square of the texts (20,000 texts: about
    19 GB), and running out was a raw traceback or the kernel's OOM kill after both models had encoded."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not Linux
        return
    need = ALL_PAIRS_BYTES_PER_TEXT_SQUARED * n_texts**2
    if need > available:
        raise ValueError(f"{n_texts:,} distinct texts make {n_texts * (n_texts - 1) // 2:,} pairs, whose measures "
                          f"need about {need / 1e9:.1f} GB, and {available / 1e9:.1f} GB is available: pass fewer "
                          "texts (--limit), or --pairs with the pairs to compare.")


def check_vectors(emb: np.ndarray, texts: list[str], who: str) -> None:
    """One finite row a text, else a ``ValueError``: a NaN row was normalized to a zero vector and measured as one."""
    emb = np.asarray(emb)
    if emb.ndim != 2 or len(emb) != len(texts):
        raise ValueError(f"the {who} gave vectors of shape {emb.shape} for {len(texts)} texts (one row a text).")
    bad = np.flatnonzero(~np.isfinite(emb.astype(np.float32)).all(axis=1))  # as it is measured
    if bad.size:
        raise ValueError(f"the {who} gave NaN or infinite vectors for {bad.size} of the {len(texts)} texts (the "
                         f"first: {texts[bad[0]]!r}); nothing can be measured from them.")


def check_text(value: object, where: str) -> str:
    """``value`` when it is a non-blank ``str``; else a ``TypeError`` naming ``where`` (no ``None`` compared as
    "None"), or a ``ValueError`` for a blank one (a zero vector under the static model, compared as a text)."""
    if not isinstance(value, str):
        raise TypeError(f"{where} is {type(value).__name__}, not str.")
    if not value.strip():
        raise ValueError(f"{where} is blank ({value!r}); a blank text has no meaning to compare.")
    return value


def _is_pair(value: object) -> bool:
    """Whether ``value`` holds two items by position (a tuple, a list, an array row), not a str, dict or set."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sized) or not hasattr(value, "__getitem__"):
        return False
    return len(value) == 2


def check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` as a list of ``(str, str)``; a ``TypeError`` naming the first bad pair."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise TypeError(f"pairs must be a list of (text, text) pairs, not a {type(pairs).__name__}.")
    out = []
    for i, pair in enumerate(pairs):
        if not _is_pair(pair):
            raise TypeError(f"pairs[{i}] must be a pair of two texts, got {pair!r}.")
        out.append((check_text(pair[0], f"pairs[{i}][0]"), check_text(pair[1], f"pairs[{i}][1]")))
    return out


def check_scores(scores: Sequence[float]) -> list[float]:
    """``scores`` as finite floats; a ``ValueError`` naming the first NaN, infinite or non-number score, a
    ``TypeError`` for one str or number (a str was read as one score a character)."""
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Iterable):
        raise TypeError(f"scores must be a list of numbers, one a pair, not a {type(scores).__name__}.")
    out = []
    for i, score in enumerate(scores):
        number = finite_score(score)
        if number is None:
            raise ValueError(f"scores[{i}] is {score!r}, not a finite number.")
        out.append(number)
    return out


def finite_score(score: object) -> float | None:
    """``score`` as a finite float (a number or a numeric string, never a bool), else ``None``."""
    if isinstance(score, (bool, np.bool_)):
        return None
    try:
        number = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
