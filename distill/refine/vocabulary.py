"""New whole-word tokens for refinement: the corpus's frequent words that the tokenizer splits, added to a copy of
the model with each new row the mean of the word's old pieces (the ``vocabulary_size`` setting of ``refine``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from static_model import StaticModel


def frequent_new_words(model: StaticModel, texts: Sequence[str], n: int, *, min_count: int = 5) -> list[str]:
    """The ``n`` most frequent whole words of ``texts`` (as the model's pre-tokenizer splits them) that the
    model's tokenizer splits into several tokens."""
    tok = model.tokenizer
    counts: Counter[str] = Counter()
    norm, pre = tok.normalizer, tok.pre_tokenizer
    for t in texts:
        s = norm.normalize_str(t) if norm is not None else t
        words = [w for w, _ in pre.pre_tokenize_str(s)] if pre is not None else s.split()
        counts.update(words)
    vocab = tok.get_vocab(with_added_tokens=True)
    out: list[str] = []
    for w, c in counts.most_common():
        if c < min_count or len(out) >= n:
            break
        if w in vocab or not any(ch.isalnum() for ch in w):
            continue
        out.append(w)
    return out


def extend_vocabulary(model: StaticModel, words: Sequence[str]) -> tuple[StaticModel, list[int]]:
    """A copy of ``model`` whose tokenizer also has ``words`` as whole tokens; each new row is the mean of the
    word's old pieces (what the model gave the word before). Returns ``(model, added ids)``."""
    from distill.vocabulary import build_output_tokenizer, output_vocab_size

    if not words:
        return model, []
    new_tok, fed, ids, _ = build_output_tokenizer(model.tokenizer, list(words))
    if not ids:
        return model, []
    old = model.embedding_matrix()
    rows = np.zeros((output_vocab_size(new_tok), old.shape[1]), dtype=np.float32)
    rows[: old.shape[0]] = old
    pieces = model.tokenize(fed, max_length=None)
    for i, p in zip(ids, pieces):
        if len(p):
            rows[i] = old[p].mean(axis=0)
    config = {k: v for k, v in model.config.items() if k not in ("dim", "dtype", "vocab_size")}
    return StaticModel(rows, new_tok, config=config, normalize=model.normalize, max_length=model.max_length), list(ids)
