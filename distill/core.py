"""``distill``: teacher -> static token-embedding model.

Order of work: every argument, the teacher folder, its tokenizer, the added vocabulary and the
frequency source are checked first (cheap); then the teacher weights load and the vocabulary pass
runs (the whole cost); then PCA, SIF weights and the ``StaticModel``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import AddedToken, Tokenizer

from distill import frequencies as freq
from distill.postprocess import pca, sif_weights
from distill.resolve import DEFAULT_TEACHER, check_public_name
from distill.teacher import Teacher
from distill.vocab_pass import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DROP_PATTERN,
    VOCAB_POOLING,
    dropped_token_ids,
    embed_sequences,
    single_template,
    student_max_length,
    token_sequences,
    word_sequences,
)

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "int8")
# The pooling contrast written into distilled models (0 = plain mean), chosen on the development splits
# (benchmarks/results/contrast_dev.md: plain and refined all-MiniLM-L6-v2, plain all-mpnet-base-v2): 1.0 and 1.5 are
# within 0.3 of each other on all three, 1.0 is the smaller change from the plain mean (it costs STS and
# classification less on mpnet).
DEFAULT_CONTRAST = 1.0


def toolkit_version() -> str:
    try:
        import importlib.metadata as md

        return md.version("static-embeddings")
    except Exception:
        return "0.1.0"


# --------------------------------------------------------------------------- vocabulary


def read_vocabulary_file(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Words from a file: one per line, or the first column of a TSV (a header row is skipped)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Vocabulary file {path} is a folder; pass a word list (one word a line, or a TSV).")
    if not path.is_file():
        raise ValueError(f"Vocabulary file {path} does not exist.")
    words: list[str] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"Vocabulary file {path} is not UTF-8 text (line {lineno}: {exc.reason}); "
                                 "save it as UTF-8.") from None
            cols = line.rstrip("\r\n").split("\t")
            if lineno == 1 and len(cols) >= 2 and not freq._is_number(cols[1]):
                continue  # header, e.g. word<TAB>frequency<TAB>zipf
            if cols[0].strip():
                words.append(cols[0].strip())
            if limit is not None and len(words) >= limit:
                break
    return words


def _byte_level_no_prefix(tok_json: dict) -> bool:
    def walk(pt):
        if not isinstance(pt, dict):
            return False
        if pt.get("type") == "ByteLevel":
            return not pt.get("add_prefix_space", False)
        return any(walk(p) for p in pt.get("pretokenizers", []) or [])

    return walk(tok_json.get("pre_tokenizer"))


def build_output_tokenizer(
    teacher_tokenizer: Tokenizer, words: Sequence[str] | None
) -> tuple[Tokenizer, list[str], list[int], dict]:
    """The static model's tokenizer: the teacher's (padding and truncation off) plus ``words``.

    WordPiece: each new word is appended to the vocabulary with a new id (greedy longest match then
    emits it whole). BPE / Unigram / other models: each word becomes an added token
    (``single_word=True, normalized=True, lstrip=True``). Words the pre-tokenizer would split
    (spaces, punctuation) or that already are one token are skipped.
    Returns ``(tokenizer, added words as fed to the teacher, their ids, stats)``.
    """
    tok_json = json.loads(teacher_tokenizer.to_str())
    tok_json["padding"] = None
    tok_json["truncation"] = None
    model_type = tok_json.get("model", {}).get("type")
    probe = Tokenizer.from_str(json.dumps(tok_json))
    stats = {"requested": 0, "added": 0, "already_single_token": 0, "split_by_pretokenizer": 0, "duplicate": 0}
    if not words:
        return probe, [], [], stats
    prefix_space = _byte_level_no_prefix(tok_json)
    seen: set[str] = set()
    new_words: list[str] = []
    for raw in words:
        stats["requested"] += 1
        w = raw.strip()
        if probe.normalizer is not None:
            w = probe.normalizer.normalize_str(w).strip()
        if not w:
            stats["split_by_pretokenizer"] += 1
            continue
        if w in seen:
            stats["duplicate"] += 1
            continue
        seen.add(w)
        text = (" " + w) if prefix_space else w
        if probe.pre_tokenizer is not None and len(probe.pre_tokenizer.pre_tokenize_str(text)) != 1:
            stats["split_by_pretokenizer"] += 1
            continue
        if len(probe.encode(text, add_special_tokens=False).ids) <= 1:
            stats["already_single_token"] += 1
            continue
        new_words.append(w)
    if model_type == "WordPiece":
        vocab = tok_json["model"]["vocab"]
        next_id = max([*vocab.values(), *(t["id"] for t in tok_json.get("added_tokens", []))]) + 1
        for w in new_words:
            vocab[w] = next_id
            next_id += 1
        out = Tokenizer.from_str(json.dumps(tok_json))
    else:
        out = probe
        out.add_tokens([AddedToken(w, single_word=True, normalized=True, lstrip=True) for w in new_words])
    ids = [out.token_to_id(w) for w in new_words]
    if any(i is None for i in ids):
        raise RuntimeError("Internal error: an added vocabulary word has no id.")
    stats["added"] = len(new_words)
    fed = [(" " + w) if prefix_space else w for w in new_words]
    return out, fed, ids, stats


# --------------------------------------------------------------------------- distill


def output_vocab_size(tokenizer: Tokenizer) -> int:
    """Rows of the embedding table: max id + 1 (ids may have holes; a hole gets a zero row)."""
    return max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1


def _check_args(pca_dims, sif_coefficient, pooling, dtype, batch_size, contrast) -> None:
    from static_model.model import check_contrast

    check_contrast(contrast)
    if pca_dims is not None and (isinstance(pca_dims, bool) or not isinstance(pca_dims, (int, np.integer)) or pca_dims < 1):
        raise ValueError(f"pca_dims must be a positive int or None, got {pca_dims!r}.")
    if sif_coefficient is not None and not (0 < float(sif_coefficient) < 1):
        raise ValueError(f"sif_coefficient must be in (0, 1) or None, got {sif_coefficient!r}.")
    if pooling not in VOCAB_POOLING:
        raise ValueError(f"pooling must be one of {VOCAB_POOLING}, got {pooling!r}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


@dataclass
class _Plan:
    """Everything checked and prepared before the heavy work (see ``_prepare``)."""

    teacher: Teacher
    own_teacher: bool
    tokenizer: Tokenizer  # the output tokenizer (teacher's + added words, padding/truncation off)
    base_ids: list[int]  # teacher token ids that get a forward pass (in id order)
    added_words: list[str]
    added_ids: list[int]
    vocab_stats: dict
    counts: np.ndarray | None  # per-id token counts from token_frequencies, or None (Zipf)
    params: dict
    t_start: float

    @property
    def kept_ids(self) -> np.ndarray:
        return np.asarray(self.base_ids + self.added_ids, dtype=np.int64)


def distill(
    teacher: str | os.PathLike | Teacher = DEFAULT_TEACHER,
    *,
    pca_dims: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    vocabulary: Sequence[str] | str | os.PathLike | None = None,
    token_frequencies: str | os.PathLike | Mapping[str, float] | None = None,
    frequency_weight: float | None = None,
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pooling: str = "mean",
    dtype: str = "float16",
    contrast: float = DEFAULT_CONTRAST,
    teacher_name: str | None = None,
    show_progress_bar: bool = True,
):
    """Distill ``teacher`` into a ``static_model.StaticModel``.

    The model reads at most as many tokens as the teacher (its ``max_seq_length`` less the special tokens);
    set ``model.max_length`` to change that.

    :param teacher: a local folder, a teacher with an offline package, a hub id, or a ``Teacher``.
    :param pca_dims: output dimensions (PCA fit in float64); ``None`` keeps the teacher's dims, no PCA.
    :param sif_coefficient: ``a`` in the SIF weight ``a / (a + p)``; ``None``: no weighting.
    :param vocabulary: whole words to add as tokens (a list, or a file: one word a line or the first
        column of a TSV); each word's vector is the teacher run over its word pieces.
    :param token_frequencies: where ``p`` comes from: a word-frequency TSV (``word<TAB>frequency``),
        a folder holding one, a plain-text corpus, or a ``{word: count}`` mapping. ``None``: Zipf's
        law over the token id order (what Model2Vec does).
    :param frequency_weight: with ``token_frequencies``, how far the counts move ``p`` from Zipf over ids:
        ``p ∝ zipf ** (1 - w) * counts ** w`` (``distill.frequencies.sif_probabilities``); ``None`` is
        ``DEFAULT_FREQUENCY_WEIGHT`` (0.25, chosen on the development splits), ``1.0`` takes the counts alone.
        Measured best with ``sif_coefficient=3e-4`` (``benchmarks/results/frequency_weight_dev.md``).
    :param device: torch device; default CUDA when available (float16), else CPU (float32).
    :param batch_size: sequences per forward in the vocabulary pass.
    :param pooling: ``"mean"`` over the template (default), ``"token"``: the token's own position(s),
        ``"cls"``: position 0.
    :param dtype: storage dtype of the returned model: ``"float16"`` (default), ``"float32"``, ``"int8"``.
    :param contrast: the model's pooling at encode time (``StaticModel.contrast``): ``0`` is Model2Vec's plain
        mean; the default ``DEFAULT_CONTRAST`` weights each token row by ``exp(-contrast * cos(row, the text's
        mean row))``, chosen on the benchmark's development splits (``benchmarks/results/contrast_dev.md``).
    :param teacher_name: the teacher's public name to record in the model's config (a hub id such as
        ``org/name``; a path is refused). Default: ``Teacher.public_name`` (a known teacher's hub id, the hub id of
        a hub snapshot, else the folder's base name): a shared model never records a local path.
    :param show_progress_bar: progress bar over the vocabulary pass.
    :raises TeacherNotFoundError, TeacherError, FrequencyFileError, ValueError: on bad input, before
        the teacher weights load.
    """
    plan = _prepare(
        teacher, pca_dims=pca_dims, sif_coefficient=sif_coefficient, vocabulary=vocabulary,
        token_frequencies=token_frequencies, frequency_weight=frequency_weight, device=device, batch_size=batch_size,
        pooling=pooling, dtype=dtype, contrast=contrast, teacher_name=teacher_name,
    )
    return _run(plan, show_progress_bar=show_progress_bar)


def _prepare(teacher, *, pca_dims, sif_coefficient, vocabulary, token_frequencies, frequency_weight, device,
             batch_size, pooling, dtype, contrast, teacher_name=None) -> _Plan:
    """All checks and the cheap preparation: nothing here loads the teacher weights."""
    t_start = time.perf_counter()
    _check_args(pca_dims, sif_coefficient, pooling, dtype, batch_size, contrast)
    if teacher_name is not None:
        teacher_name = check_public_name(teacher_name)
    frequency_weight = freq.resolve_frequency_weight(frequency_weight, token_frequencies is not None)
    own = not isinstance(teacher, Teacher)
    t = Teacher(teacher, device=device) if own else teacher
    tokenizer = t.tokenizer
    n_vocab_words = None
    if vocabulary is not None:
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary_file(vocabulary)
        if isinstance(vocabulary, (bytes, bytearray)):
            raise TypeError("vocabulary must be a list of words or a file path, not bytes.")
        words = list(vocabulary)
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise TypeError(f"vocabulary item {i} is {type(w).__name__}, not str.")
        vocabulary = [w for w in words if w.strip()]
        if not vocabulary:
            raise ValueError("The vocabulary is empty: pass None to use the teacher's tokens only, or some words.")
        n_vocab_words = len(vocabulary)
    if token_frequencies is not None:
        freq.check_source(token_frequencies)

    out_tok, added_words, added_ids, vocab_stats = build_output_tokenizer(tokenizer, vocabulary)
    if vocabulary and not added_words:
        logger.warning("None of the %d vocabulary words was added (all are single tokens already or split).",
                       len(vocabulary))
    drop = dropped_token_ids(tokenizer, DEFAULT_DROP_PATTERN)
    base_ids = sorted(set(tokenizer.get_vocab(with_added_tokens=True).values()) - drop)
    if t.spec.vocab_size and base_ids and max(base_ids) >= t.spec.vocab_size:
        raise ValueError(
            f"The teacher tokenizer has ids up to {max(base_ids)} but the model only {t.spec.vocab_size} embeddings."
        )
    n_kept = len(base_ids) + len(added_ids)
    if n_kept == 0:
        raise ValueError("The vocabulary is empty after dropping special and [unusedN] tokens.")
    if pca_dims is not None:
        if pca_dims > t.dim:
            raise ValueError(f"pca_dims={pca_dims} is larger than the teacher's hidden size ({t.dim}).")
        if pca_dims > n_kept:
            raise ValueError(f"pca_dims={pca_dims} is larger than the vocabulary ({n_kept} tokens).")
    counts = None
    if token_frequencies is not None:
        counts = freq.token_counts(token_frequencies, out_tok)
        # the file's name, not its path: a shared model records no private directory layout
        freq_source = "mapping" if isinstance(token_frequencies, Mapping) else Path(token_frequencies).name
    else:
        freq_source = "zipf-id-rank"
    params = {
        "teacher": teacher_name or t.public_name,
        "pca_dims": pca_dims,
        "sif_coefficient": sif_coefficient,
        "vocabulary": n_vocab_words,
        "token_frequencies": freq_source,
        "frequency_weight": frequency_weight,
        "device": t.device,
        "batch_size": batch_size,
        "pooling": pooling,
        "dtype": dtype,
        "contrast": float(contrast),
    }
    return _Plan(t, own, out_tok, base_ids, added_words, added_ids, vocab_stats, counts, params, t_start)


def _run(plan: _Plan, *, show_progress_bar: bool = True):
    """The vocabulary pass, PCA, SIF weights and the StaticModel."""
    t = plan.teacher
    p = plan.params
    kept_ids = plan.kept_ids
    n_out = output_vocab_size(plan.tokenizer)
    probs = freq.sif_probabilities(plan.counts, kept_ids, weight=p["frequency_weight"])

    # ---- heavy work: the vocabulary pass
    prefix, suffix = single_template(t.tokenizer)
    seqs = token_sequences(plan.base_ids, prefix, suffix) + word_sequences(t.tokenizer, plan.added_words)
    t_pass = time.perf_counter()
    raw = embed_sequences(t, seqs, pooling=p["pooling"], batch_size=p["batch_size"],
                          show_progress_bar=show_progress_bar)
    pass_s = time.perf_counter() - t_pass
    teacher_dtype = str(t.torch_dtype).replace("torch.", "")
    if plan.own_teacher:
        t._model = None  # free the teacher weights before post-processing

    # ---- post-processing
    vectors, explained = pca(raw, p["pca_dims"])
    del raw
    vectors *= sif_weights(probs, p["sif_coefficient"])[:, None]
    dim = vectors.shape[1]
    table = np.zeros((n_out, dim), dtype=np.float32)
    table[kept_ids] = vectors

    import tokenizers
    import torch
    import transformers

    distill_info = {
        "parameters": p,
        "toolkit_version": toolkit_version(),
        "teacher": p["teacher"],
        "teacher_pooling": t.pooling,
        "teacher_normalize": t.normalize,
        "teacher_max_seq_length": t.spec.max_seq_length,
        "teacher_hidden_size": t.dim,
        "teacher_dtype": teacher_dtype,
        "drop_pattern": DEFAULT_DROP_PATTERN,
        "vocab_size": int(n_out),
        "embedded_tokens": int(kept_ids.size),
        "zero_rows": int(n_out - kept_ids.size),
        "added_words": plan.vocab_stats,
        "explained_variance": round(float(explained), 6),
        "vocab_pass_seconds": round(pass_s, 2),
        "seconds": round(time.perf_counter() - plan.t_start, 2),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
    }
    # StaticModel adds model_type, dim, vocab_size, dtype, normalize, max_length and the producer.
    config = {
        "teacher": p["teacher"],
        "tokenizer_name": p["teacher"],
        "apply_pca": p["pca_dims"],
        "sif_coefficient": p["sif_coefficient"],
        "pooling": p["pooling"],
        "normalize": bool(t.normalize),
        "distill": distill_info,
    }
    from static_model import StaticModel

    dtype = p["dtype"]
    embeddings = table.astype(np.float16) if dtype == "float16" else table
    model = StaticModel(embeddings, plan.tokenizer, config=config, normalize=bool(t.normalize),
                        max_length=student_max_length(t), contrast=p["contrast"])
    if dtype == "int8":
        model = model.quantize("int8")
    return model
