"""The vocabulary pass: one teacher forward per token (and per added whole word).

Every token is fed as the tokenizer's own single-sequence template (``[CLS] tok [SEP]`` for BERT,
``<s> tok </s>`` for MPNet/RoBERTa), built from ids, so the teacher tokenizer's padding and
truncation settings never leak in. Sequences are length-sorted, so the single-token batches carry no
padding at all; the model runs under ``torch.inference_mode`` in float16 on a GPU, float32 on CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

VOCAB_POOLING = ("mean", "token", "cls")
DEFAULT_DROP_PATTERN = r"\[unused\d+\]|<unused\d+>|\[UNUSED_?\d+\]"
# sequences per forward: on 2 CPU cores all-mpnet-base-v2 ran 3,072 tokens in 11.4 s at 256, 12.1 s at 1,024 and
# 13.4 s at 4,096 (one process, interleaved; the wide batches' activations fall out of cache)
DEFAULT_BATCH_SIZE = 256


@dataclass
class Sequence:
    ids: list[int]
    start: int  # first position of the token / word pieces
    end: int  # one past the last


def single_template(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer's post-processor puts before and after a single sequence."""
    for probe in ("a", "the", "hello", "x", "1", "."):
        bare = tokenizer.encode(probe, add_special_tokens=False).ids
        full = tokenizer.encode(probe, add_special_tokens=True).ids
        if not bare:
            continue
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return full[:i], full[i + len(bare) :]
    return [], []


def student_max_length(teacher) -> int:
    """Tokens a static model should read so that it sees what ``teacher`` sees: the teacher's ``max_seq_length``
    less the special tokens of its single-sequence template (``static_model``'s default when it states none).

    Reading 512 instead costs SciFact nDCG@10 1.7 points (refined MiniLM) and 2.1 (plain distill), because the
    teacher's targets and its own scores only ever saw the first 256 tokens (``benchmarks/results/refine.md``)."""
    limit = teacher.spec.max_seq_length
    if not limit:
        from static_model.model import DEFAULT_MAX_LENGTH

        return DEFAULT_MAX_LENGTH
    prefix, suffix = single_template(teacher.tokenizer)
    return max(1, int(limit) - len(prefix) - len(suffix))


def special_token_ids(tokenizer: Tokenizer) -> set[int]:
    return {tid for tid, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}


def dropped_token_ids(tokenizer: Tokenizer, pattern: str | None = DEFAULT_DROP_PATTERN) -> set[int]:
    """Special tokens and ``[unusedN]``-style placeholders: they get a zero row, no forward pass."""
    drop = set(special_token_ids(tokenizer))
    if pattern:
        regex = re.compile(pattern)
        drop.update(tid for tok, tid in tokenizer.get_vocab(with_added_tokens=True).items() if regex.fullmatch(tok))
    return drop


def token_sequences(token_ids: list[int], prefix: list[int], suffix: list[int]) -> list[Sequence]:
    p = len(prefix)
    return [Sequence([*prefix, t, *suffix], p, p + 1) for t in token_ids]


def word_sequences(tokenizer: Tokenizer, words: list[str]) -> list[Sequence]:
    """Each word as the teacher tokenizes it (its word pieces inside the special-token template)."""
    out = []
    for enc in tokenizer.encode_batch(words, add_special_tokens=True):
        content = [i for i, s in enumerate(enc.special_tokens_mask) if not s]
        if not content:
            raise ValueError(f"A vocabulary word tokenizes to nothing: {enc.tokens!r}")
        out.append(Sequence(list(enc.ids), content[0], content[-1] + 1))
    return out


def embed_sequences(
    teacher,
    seqs: list[Sequence],
    *,
    pooling: str = "mean",
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress_bar: bool = True,
    desc: str = "Vocabulary pass",
) -> np.ndarray:
    """Teacher vectors (float32, ``(len(seqs), dim)``) for the sequences, pooled per ``pooling``:
    ``mean`` over the whole sequence (special tokens included, as sentence-transformers mean pooling
    does), ``token``: the token's own position (the mean over a word's pieces), ``cls``: position 0."""
    import torch

    if pooling not in VOCAB_POOLING:
        raise ValueError(f"pooling must be one of {VOCAB_POOLING}, got {pooling!r}")
    out = np.zeros((len(seqs), teacher.dim), dtype=np.float32)
    if not seqs:
        return out
    order = np.argsort([len(s.ids) for s in seqs], kind="stable")
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seqs), desc=desc, unit=" tokens")
    teacher.model  # load outside the timed loop
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [seqs[i] for i in idx]
            hidden, mask = teacher.forward_ids([s.ids for s in batch])
            if pooling == "cls":
                pooled = hidden[:, 0]
            elif pooling == "mean":
                pooled = teacher.pool(hidden, mask, "mean")
            else:
                sel = torch.zeros(mask.shape, dtype=hidden.dtype, device=hidden.device)
                for row, s in enumerate(batch):
                    sel[row, s.start : s.end] = 1.0 / (s.end - s.start)
                pooled = torch.einsum("bl,bld->bd", sel, hidden)
            out[idx] = pooled.float().cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
    if bar is not None:
        bar.close()
    np.nan_to_num(out, copy=False)
    return out
