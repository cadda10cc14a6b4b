"""The vocabulary pass (``embed_vocabulary``): one teacher forward per token of a ``DistillPlan`` and per added word.

Every token is fed as the tokenizer's own single-sequence template (``[CLS] tok [SEP]`` for BERT,
``<s> tok </s>`` for MPNet/RoBERTa), built from ids, so the teacher tokenizer's padding and
truncation settings never leak in. Sequences are length-sorted, so the single-token batches carry no
padding at all; the model runs under ``torch.inference_mode`` in float16 on a GPU, float32 on CPU.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

from distill.plan import DistillPlan

if TYPE_CHECKING:
    from distill.teacher import Teacher

# How the vocabulary pass turns one teacher forward into a token's vector (Model2Vec's names, plus ``token`` and
# ``max``): ``mean`` over the whole template, ``first`` position 0 ([CLS]), ``last`` the last non-pad position,
# ``pooler`` the transformer's pooler output, ``max`` the per-dimension maximum over the template, ``token`` the
# token's own position (a word's pieces averaged).
VOCAB_POOLING = ("mean", "first", "last", "pooler", "max", "token")
AUTO_POOLING = "auto"  # the teacher's own pooling (``pooling_for_teacher``)
POOLING_CHOICES = (AUTO_POOLING, *VOCAB_POOLING)
POOLING_ALIASES = {"cls": "first"}  # the name this option had before "first" (kept working)
# The vocabulary pooling that gives what a sentence-transformers pooling mode gives on a single-token input.
# ``mean_sqrt_len`` divides the sum by sqrt(length) instead of length: for every single token the same factor of the
# mean, so the plain mean (the direction is what the table keeps).
TEACHER_POOLING = {"mean": "mean", "mean_sqrt_len": "mean", "cls": "first", "lasttoken": "last", "max": "max"}
# sequences per forward: on 2 CPU cores all-mpnet-base-v2 ran 3,072 tokens in 11.4 s at 256, 12.1 s at 1,024 and
# 13.4 s at 4,096 (one process, interleaved; the wide batches' activations fall out of cache)
DEFAULT_BATCH_SIZE = 256


@dataclass
class Sequence:
    """One teacher input: token ids, and the positions of the token (or the word's pieces) inside them."""

    ids: list[int]
    start: int  # first position of the token / word pieces
    end: int  # one past the last


def token_sequences(token_ids: list[int], prefix: list[int], suffix: list[int]) -> list[Sequence]:
    """Each token id alone inside the single-sequence template ``prefix``/``suffix``."""
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
    teacher: Teacher,
    seqs: list[Sequence],
    *,
    pooling: str = "mean",
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress_bar: bool = True,
    desc: str = "Vocabulary pass",
) -> np.ndarray:
    """Teacher vectors (float32, ``(len(seqs), dim)``) for the sequences, pooled per ``pooling`` (one of
    ``VOCAB_POOLING``): ``mean`` over the whole sequence (special tokens included, as sentence-transformers mean
    pooling does), ``first``: position 0, ``last``: the last position (sequences are padded right), ``pooler``: the
    model's pooler output, ``max``: the maximum over the sequence, ``token``: the token's own position (the mean over
    a word's pieces)."""
    import torch

    if pooling not in VOCAB_POOLING:
        raise ValueError(f"pooling must be one of {VOCAB_POOLING}, got {pooling!r}")
    out = np.zeros((len(seqs), teacher.dim), dtype=np.float32)
    if not seqs:
        return out
    if pooling == "pooler":
        teacher.check_pooler()  # loads the weights
    order = np.argsort([len(s.ids) for s in seqs], kind="stable")
    _ = teacher.model  # load outside the timed loop (and before the bar shows)
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seqs), desc=desc, unit=" tokens")
    # the bar as a context: it ends also on Ctrl-C, before the command's "interrupted" line
    with torch.inference_mode(), (bar if bar is not None else contextlib.nullcontext()):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [seqs[i] for i in idx]
            hidden, mask, pooler = teacher.forward([s.ids for s in batch])
            if pooling == "first":
                pooled = hidden[:, 0]
            elif pooling in ("mean", "max"):
                pooled = teacher.pool(hidden, mask, pooling)
            elif pooling == "last":
                pooled = teacher.pool(hidden, mask, "lasttoken")
            elif pooling == "pooler":
                if pooler is None:
                    raise ValueError(f"pooling='pooler': the teacher {teacher.name!r} returns no pooler output.")
                pooled = pooler
            else:
                sel = torch.zeros(mask.shape, dtype=hidden.dtype, device=hidden.device)
                for row, s in enumerate(batch):
                    sel[row, s.start : s.end] = 1.0 / (s.end - s.start)
                pooled = torch.einsum("bl,bld->bd", sel, hidden)
            out[idx] = pooled.float().cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
    check_finite_vectors(out, seqs, teacher.name)
    return out


def check_finite_vectors(vectors: np.ndarray, seqs: list[Sequence], teacher_name: str) -> None:
    """A ``ValueError`` naming the teacher, how many sequences and the first one's token ids when the vocabulary
    pass gave NaN or infinity (float16 overflow on a GPU, broken weights): such rows would reach the PCA as numbers
    (``nan_to_num`` made infinity 3.4e38) and spoil every dimension."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise ValueError(f"teacher {teacher_name!r} gave NaN or infinite vectors for {bad.size} of the vocabulary "
                         f"pass's {len(seqs)} sequences (the first: token ids {seqs[int(bad[0])].ids}); on a GPU "
                         "in float16, try float32 or device='cpu'")


@dataclass(frozen=True, eq=False)
class VocabularyVectors:
    """The raw teacher vector of every kept token of a plan, in ``DistillPlan.kept_ids`` order, and how they were made
    (``assemble`` records it in the model's config)."""

    vectors: np.ndarray  # float32, (len(plan.kept_ids), teacher dim)
    pooling: str  # one of VOCAB_POOLING, or another source's name (e.g. a benchmark's "input_embeddings")
    batch_size: int | None = None
    seconds: float | None = None  # the pass's wall time


def pooling_for_teacher(teacher_pooling: str) -> str:
    """The vocabulary pooling (``VOCAB_POOLING``) for a teacher whose sentence-transformers pooling mode is
    ``teacher_pooling`` (``Teacher.pooling``): ``cls`` -> ``first``, ``lasttoken`` -> ``last``, ``mean`` and
    ``mean_sqrt_len`` -> ``mean``, ``max`` -> ``max`` (``TEACHER_POOLING``)."""
    try:
        return TEACHER_POOLING[teacher_pooling]
    except KeyError:
        raise ValueError(f"No vocabulary pooling for the teacher pooling {teacher_pooling!r}; "
                         f"known: {sorted(TEACHER_POOLING)}.") from None


def check_pooling(pooling: str) -> str:
    """``pooling`` as ``embed_vocabulary`` reads it: one of ``POOLING_CHOICES`` (an alias such as ``cls`` gives its
    name); a ``ValueError`` naming the argument otherwise."""
    if not isinstance(pooling, str) or POOLING_ALIASES.get(pooling, pooling) not in POOLING_CHOICES:
        raise ValueError(f"pooling must be one of {POOLING_CHOICES}, got {pooling!r}.")
    return POOLING_ALIASES.get(pooling, pooling)


def resolve_pooling(pooling: str, teacher: Teacher) -> str:
    """The vocabulary pooling (one of ``VOCAB_POOLING``) that ``pooling`` names for ``teacher``: ``auto`` is the
    teacher's own (``pooling_for_teacher``), any other is checked (``check_pooling``)."""
    pooling = check_pooling(pooling)
    return pooling_for_teacher(teacher.pooling) if pooling == AUTO_POOLING else pooling


def check_embedding(*, pooling: str, batch_size: int) -> None:
    """A ``ValueError`` naming the argument unless ``pooling`` is one of ``POOLING_CHOICES`` (or an alias) and
    ``batch_size`` a positive int."""
    check_pooling(pooling)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def embed_vocabulary(
    plan: DistillPlan,
    *,
    pooling: str = AUTO_POOLING,
    batch_size: int = DEFAULT_BATCH_SIZE,
    unload: bool = False,
    show_progress_bar: bool = True,
) -> VocabularyVectors:
    """The teacher's vector of every kept token (each alone in the single-sequence template) and of every added word
    (its pieces), pooled per ``pooling`` (see ``embed_sequences``): the whole cost of a distill.

    :param pooling: ``"auto"`` (default): the pooling the teacher's own config names (``pooling_for_teacher``: a
        mean-pooled teacher such as all-MiniLM-L6-v2 gets ``mean``, a CLS-pooled one ``first``, a last-token one
        ``last``), or one of ``VOCAB_POOLING`` (``cls`` is read as ``first``). The vectors record the one used.

    :param unload: free the teacher's weights afterwards (``distill`` does when it built the teacher itself).
    """
    check_embedding(pooling=pooling, batch_size=batch_size)
    t = plan.teacher
    pooling = resolve_pooling(pooling, t)
    prefix, suffix = t.template
    seqs = token_sequences(list(plan.base_ids), prefix, suffix) + word_sequences(t.tokenizer, list(plan.added_words))
    t.check_token_ids(i for s in seqs for i in s.ids)  # every id fed, before the pass (and the weights) start
    t_pass = time.perf_counter()
    raw = embed_sequences(t, seqs, pooling=pooling, batch_size=batch_size, show_progress_bar=show_progress_bar)
    seconds = time.perf_counter() - t_pass
    if unload:
        t.unload()
    return VocabularyVectors(raw, pooling, batch_size, seconds)
