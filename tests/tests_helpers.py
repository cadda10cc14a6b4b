"""Small builders shared by the reliability tests."""

from __future__ import annotations

from tokenizers import Tokenizer

from conftest import make_wordpiece_tokenizer


def smaller_tokenizer() -> Tokenizer:
    """Another model's tokenizer: the same kind, 11 ids instead of 49."""
    return make_wordpiece_tokenizer(["the", "a", "cat", "dog", "sat", "mat"], pad_to=None)
