"""The rules for a model's settings, one place for the constructor, ``encode`` and the folder reader.

Each check returns the value in its canonical type or raises a ``TypeError`` / ``ValueError`` that names the setting.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_CONTRAST = 50.0  # exp(50) is far from float overflow; larger values weight one token alone anyway
MAX_LENGTH_LIMIT = 2**31 - 1  # token counts are int32 in the tokenizer and the pooling kernel


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: only ``True`` / ``False`` (numpy's too); ``"no"``, ``0`` or ``"false"`` are TypeErrors."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__})")


def check_positive_int(value: Any, name: str, maximum: int | None = None) -> int:
    """``value`` as an int in ``[1, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
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
