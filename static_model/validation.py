"""The rules for a model's settings and its texts, one place for the constructor, ``encode``, the folder reader
and the teacher's ``encode`` (which takes the same texts).

Each check returns the value in its canonical type or raises a ``TypeError`` / ``ValueError`` that names the setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

import numpy as np

MAX_CONTRAST = 50.0  # exp(50) is far from float overflow; larger values weight one token alone anyway
MAX_LENGTH_LIMIT = 2**31 - 1  # token counts are int32 in the tokenizer and the pooling kernel


def is_int(value: Any) -> bool:
    """``value`` is an integer (numpy's too) and not a bool: ``True`` and ``3.0`` are no counts."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: only ``True`` / ``False`` (numpy's too); ``"no"``, ``0`` or ``"false"`` are TypeErrors."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")


def check_positive_int(value: Any, name: str, maximum: int | None = None) -> int:
    """``value`` as an int in ``[1, maximum]``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {value!r}")
    return int(value)


def check_max_length(value: Any, name: str = "max_length") -> int | None:
    """``None`` (every token) or a positive int that fits an int32."""
    return None if value is None else check_positive_int(value, name, MAX_LENGTH_LIMIT)


def check_contrast(value: Any, name: str = "contrast") -> float:
    """``value`` as a float in ``[0, MAX_CONTRAST]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= MAX_CONTRAST:  # also rejects NaN
        raise ValueError(f"{name} must be between 0 and {MAX_CONTRAST:g}; got {value!r}")
    return value


def as_texts(texts: Any) -> tuple[bool, Sequence[str]]:
    """(was a single str, the texts as a list) — or a TypeError naming the first item that is not a str, or a
    dict or set passed as texts (their iteration order is not an order the caller chose).

    A 0-d numpy array holding a str (``np.array("a text")``) is that one str, as numpy's own scalars are.
    """
    if isinstance(texts, np.ndarray) and texts.ndim == 0:
        if not isinstance(texts.item(), str):
            raise TypeError(f"texts is a 0-d array of {texts.dtype}, not a str")
        texts = texts.item()
    if isinstance(texts, str):
        return True, [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or an iterable of str, not {type(texts).__name__}")
    if isinstance(texts, (Mapping, Set)):  # a dict would encode its keys; a set's order changes between processes
        hint = "list(texts.values()) or list(texts)" if isinstance(texts, Mapping) else "sorted(texts)"
        raise TypeError(f"texts is a {type(texts).__name__}, which has no row order to return vectors in; "
                        f"pass a list, e.g. {hint}")
    texts = texts.tolist() if isinstance(texts, np.ndarray) else list(texts)
    if not all(type(t) is str for t in texts):
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, not str")
    return False, texts
