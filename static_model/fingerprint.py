"""``model_fingerprint``: one hash of everything that decides a model's output vectors, for caches and resumed runs
that must never mix vectors of two different models."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from static_model.model import StaticModel

FINGERPRINT_VERSION = 1  # bump when what is hashed changes: old fingerprints then no longer match


def _array_parts(name: str, array: np.ndarray | None) -> list[bytes | memoryview]:
    """What ``model_fingerprint`` hashes of one array: its name, dtype, shape and bytes (``None`` as its own marker)."""
    if array is None:
        return [f"{name}:none;".encode()]
    a = np.ascontiguousarray(array)
    return [f"{name}:{a.dtype.str}:{a.shape};".encode(), a.reshape(-1).view(np.uint8).data]  # no copy


def model_fingerprint(model: StaticModel) -> str:
    """A SHA-256 hex digest of what ``model.encode`` depends on: the stored table (its dtype, shape and bytes; the
    cluster rows of a vocabulary-quantized model), the ``token_mapping``, the ``weights``, the tokenizer, and the
    ``normalize``, ``max_length`` and ``contrast`` settings. Equal models (also after a save and a load) give equal
    fingerprints; a change to any of these gives another."""
    h = hashlib.sha256(f"static_model-fingerprint-v{FINGERPRINT_VERSION};".encode())
    for name, array in (("embeddings", model.embeddings), ("token_mapping", model.token_mapping),
                        ("weights", model.weights)):
        for part in _array_parts(name, array):
            h.update(part)
    h.update(model._encoder.tokenizer.to_str().encode("utf-8"))  # the one it encodes with (not a changed copy)
    settings = {"normalize": model.normalize, "max_length": model.max_length, "contrast": float(model.contrast)}
    h.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return h.hexdigest()
