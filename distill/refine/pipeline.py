"""Corpus refinement of a distilled static model (Model2Vec's tokenlearn step, inside the toolkit).

>>> from distill import distill
>>> from distill.refine import RefineConfig, refine
>>> base = distill("all-MiniLM-L6-v2", remove_common_component=False, drop_components=0)  # what --refine uses
>>> model = refine(base, "all-MiniLM-L6-v2", "passages.txt", RefineConfig.from_options(max_sentences=30_000))
>>> model.save_pretrained("minilm-refined")

Stages:

0. **corpus** (``distill.refine.corpus.read_corpus``): a text, JSONL or Parquet file, ``hf:NAME`` (a Hugging Face
   dataset, streamed) or an iterable, up to ``corpus.max_sentences`` passages; there is no default corpus. A text file
   with a source sidecar naming ``DEFAULT_PREFER_SOURCES`` (the benchmark data's ``corpus_general/sentences.txt``)
   has those lines taken first.
1. **featurize** (``distill.refine.featurize``): the teacher encodes every passage (length-sorted
   batches, GPU when present); the targets are cached on disk in chunks with atomic renames, so an
   interrupted run resumes where it stopped.
2. **PCA** of the targets to the static model's dims (float64, ``distill.pca.pca``'s basis, fit in passes over
   the memory-mapped chunks: ``distill.refine.targets.fit_pca``), the
   targets' mean kept (``x @ components``), so the student learns the teacher's own uncentred cosines;
   ``center_targets=True`` projects ``x - mean`` instead (``benchmarks/results/refine_variants_center.md``).
3. **initialisation**: the static table lives in its own PCA basis (the vocabulary pass), the targets in
   theirs. ``init="linear-map"`` (default) fits, in closed form on the training split, the affine map
   ``mean-of-rows @ W + b ~ target`` and applies it to every row (the mean is linear, so mapping rows
   maps sentence means): tokens the corpus never shows still land in the target space.
   ``init="table"`` uses the table as it is (only meaningful when the bases already agree).
4. **training** (``distill.refine.train``, torch): the sentence vector is ``sum_t w_t E_t / n`` (the runtime's
   mean of rows with a per-token weight), trained against the PCA'd targets with an MSE (default) or cosine loss, Adam,
   mini-batches; early stopping on a held-out split restores the best epoch. Seeded. The targets are read from
   the cache a buffer at a time (``train.buffer_passages``, shuffled by chunk piece, then within the buffer).
5. **SIF re-weighting** with the real token frequencies of the corpus (``a / (a + p)``), optional and off by
   default: the trained per-token weights already learn how much each token counts, and re-weighting on top
   lowered the MiniLM suite average (see ``benchmarks/results/refine_variants_loss_sif.md``).

Every setting is a field of ``RefineConfig`` (``distill.refine.config``). The result is an ordinary ``StaticModel``
(float16 table by default) with a ``"refine"`` record in its config.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from distill.refine.config import DEFAULT_REFINED_CONTRAST, RefineConfig
from distill.refine.corpus import (
    DEFAULT_TEXT_FIELD,
    check_text_field,
    corpus_kind,
    corpus_spec_error,
    read_corpus,
    resolve_prefer_sources,
)
from distill.refine.featurize import default_cache_dir, featurize_shards, teacher_fingerprint
from distill.refine.targets import TargetShards, fit_pca
from distill.refine.train import train_table
from distill.refine.vocabulary import extend_vocabulary, frequent_new_words
from distill.resolve import config_teacher_revision, revision_to_record
from static_model import StaticModel

Corpus = str | os.PathLike[str] | Iterable[str]
logger = logging.getLogger(__name__)


def refine(
    model: StaticModel | str | os.PathLike[str],
    teacher: Any = None,
    corpus: Corpus | None = None,
    config: RefineConfig | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    targets: np.ndarray | None = None,
    show_progress_bar: bool = True,
) -> StaticModel:
    """Refine a distilled static model on a corpus; returns a new ``static_model.StaticModel``.

    :param model: a ``StaticModel`` or its folder (e.g. the output of ``distill.distill``). Refinement re-fits every
        row; it starts best from the table as PCA and SIF leave it (``distill(..., remove_common_component=False,
        drop_components=0)``, what ``python -m distill --refine`` does): from a base with the top components dropped
        it lost 5 of 21 datasets and won none (``benchmarks/results/defaults.md``, section 8b).
    :param teacher: a name, folder or ``distill.Teacher``; default the teacher recorded in the model's config, at the
        revision it records (``teacher_revision``, when there is one). Its tokenizer must be the model's
        (``check_vocabulary_matches``: a base distilled from another teacher raises ``VocabularyMismatchError``
        before anything is encoded).
    :param corpus: a text file (one passage a line), a ``.jsonl`` or ``.parquet`` file (the passage in
        ``config.corpus.text_field``), ``hf:NAME[:CONFIG][@SPLIT]`` (a Hugging Face dataset, streamed; needs a
        network) or an iterable of strings. Required: no corpus ships with the package (``None`` raises, naming
        the options). It needs at least dims + 1 distinct passages; repeated ones are kept (and counted in the
        record's ``duplicate_passages``). A training loss that becomes NaN or infinite raises
        ``distill.refine.train.TrainingDivergedError``: no model is returned.
    :param config: every setting (``RefineConfig``; default ``RefineConfig()``: 100,000 passages, MSE, linear-map
        init, no new words, no SIF, a float16 table).
    :param cache_dir: where the featurized chunks go (default ``.cache/refine/<teacher fingerprint>``, shared by
        all corpora).
    :param targets: precomputed teacher embeddings of the passages (skips featurizing; experiments).

    Memory: the targets stay in the featurize cache, memory-mapped; their PCA is fit in passes over the chunks and
    training holds ``config.train.buffer_passages`` target rows at a time (the passages' text and token ids are
    held whole: a small fraction of the targets' size).
    :param show_progress_bar: tqdm bars for featurizing and training.

    The settings, measured: ``train.loss`` ``"mse"`` (default) or ``"cosine"``: on the MiniLM suite (100k passages,
    ``benchmarks/results/refine_variants.md``) MSE 69.1, cosine 68.6 on average, MSE higher on STS,
    classification, pair classification, clustering and retrieval. ``train.weight_learning_rate`` (default
    ``learning_rate / 10``). ``center_targets`` (``benchmarks/results/refine_variants_center.md``).
    ``corpus.prefer_sources`` (``benchmarks/results/refine_sources.md``). ``output.sif_coefficient``: ``None``
    (default) or ``a``: after training, rows are scaled by ``a / (a + p)`` with ``p`` the token's frequency in
    ``output.frequency_corpus`` (default: the whole corpus file, or the passages used), a JSONL, Parquet or ``hf:``
    one read with ``output.frequency_text_field`` (default ``corpus.text_field``). ``output.contrast``: the
    refined model's pooling contrast (default ``DEFAULT_REFINED_CONTRAST``, 1.0: contrast pooling, whatever the input
    model's); training always fits the plain mean.
    """
    from distill.frequencies import sif_weights

    t_start = time.perf_counter()
    cfg = RefineConfig() if config is None else config
    if not isinstance(cfg, RefineConfig):
        raise TypeError(f"config must be a RefineConfig or None, not {type(cfg).__name__}")
    train_cfg = cfg.train
    model = _load_model(model)
    _warn_if_top_components_dropped(model)
    contrast = DEFAULT_REFINED_CONTRAST if cfg.output.contrast is None else cfg.output.contrast
    prefer_sources = resolve_prefer_sources(corpus, cfg.corpus.prefer_sources)
    text_field = cfg.corpus.text_field
    texts = read_corpus(corpus, cfg.corpus.max_sentences, prefer_sources, text_field=text_field)
    _check_frequency_corpus(cfg)

    # ---- featurize
    feat_s = 0.0
    teacher_name = None
    fingerprint = None
    t: Any = None  # the Teacher read here, when the targets are not given
    teacher_window = None  # tokens of a passage the teacher's target depends on
    if len(texts) < model.dim + 1:
        raise ValueError(f"The corpus has {len(texts)} passages; at least dims + 1 = {model.dim + 1} are needed "
                         "to fit the PCA of the targets (checked before the teacher encodes them).")
    distinct = len(set(texts))
    if distinct < model.dim + 1:  # copies of one passage give one target: a PCA of nothing, a table fit to one vector
        raise ValueError(f"The corpus has {len(texts)} passages but only {distinct} distinct ones; at least dims + 1 = "
                         f"{model.dim + 1} distinct passages are needed to fit the PCA of the targets (checked before "
                         "the teacher encodes them).")
    if distinct < len(texts):
        logger.info("refine: %d of the %d passages repeat an earlier one (kept: a repeated passage counts more)",
                    len(texts) - distinct, len(texts))
    if targets is None:
        from distill.teacher import Teacher

        revision = None
        if teacher is None:
            teacher = model.config.get("teacher")
            if not teacher:
                raise ValueError("No teacher given and the model's config records none.")
            revision = config_teacher_revision(model.config)  # the version distilled from, not the hub's latest
        t = teacher if isinstance(teacher, Teacher) else Teacher(teacher, device=train_cfg.device, revision=revision)
        check_vocabulary_matches(model, t.tokenizer, t.public_name)
        teacher_name = t.public_name  # a hub id or base name, never a local path
        fingerprint = teacher_fingerprint(t)
        teacher_window = t.student_max_length
        cache_used = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(t)
        t_feat = time.perf_counter()
        shards = featurize_shards(t, texts, cache_dir=cache_used, chunk_size=cfg.featurize.chunk_size,
                            batch_size=cfg.featurize.batch_size, show_progress_bar=show_progress_bar)
        feat_s = time.perf_counter() - t_feat
        if not isinstance(teacher, Teacher):
            t.unload()
    else:
        targets = np.asarray(targets, dtype=np.float32)
        teacher_name = getattr(teacher, "name", teacher)
        if targets.ndim != 2 or len(targets) != len(texts):
            raise ValueError(f"targets must be ({len(texts)}, d), got {targets.shape}")
        bad_rows = np.flatnonzero(~np.isfinite(targets).all(axis=1))
        if bad_rows.size:  # else the PCA and training run on NaN, and only the finished table is refused
            raise ValueError(f"targets hold NaN or infinite values in {bad_rows.size} row(s), the first row "
                             f"{int(bad_rows[0])}")
        shards = TargetShards.from_array(targets)

    # ---- optional new words
    added: list[int] = []
    if cfg.vocabulary_size:
        words = frequent_new_words(model, texts, cfg.vocabulary_size)
        model, added = extend_vocabulary(model, words)

    # ---- PCA of the targets, tokenize, train
    mean, comps, explained = fit_pca(shards, model.dim)
    y = shards.projected(mean, comps, keep_mean=not cfg.center_targets)
    max_length = training_max_length(model, train_cfg.max_length, teacher_window)
    ids = model.tokenize(texts, max_length=max_length)
    result = train_table(model.embedding_matrix(), ids, y, train_cfg, show_progress_bar=show_progress_bar)
    table = result.table

    # ---- SIF with the corpus's real token frequencies
    sif_coefficient = cfg.output.sif_coefficient
    frequency_corpus = cfg.output.frequency_corpus
    freq_source = None
    if sif_coefficient is not None:
        if frequency_corpus is None:
            freq_texts = read_corpus(corpus, text_field=text_field) if isinstance(corpus, (str, os.PathLike)) else texts
            freq_source = _public_name(corpus) if isinstance(corpus, (str, os.PathLike)) else "passages"
        else:
            freq_texts = read_corpus(frequency_corpus, text_field=frequency_text_field(cfg))
            freq_source = _public_name(frequency_corpus)
        probs = _token_probabilities(model, freq_texts, table.shape[0])
        table = table * sif_weights(probs, sif_coefficient)[:, None]

    info = {
        "teacher": str(teacher_name) if teacher_name is not None else None,
        "teacher_fingerprint": fingerprint,
        "corpus": _public_name(corpus) if isinstance(corpus, (str, os.PathLike)) else "iterable",
        "passages": len(texts),
        "duplicate_passages": len(texts) - distinct,
        "prefer_sources": list(prefer_sources),
        "text_field": text_field,
        "target_pca_explained_variance": round(float(explained), 6),
        "targets_centered": bool(cfg.center_targets),
        "added_words": len(added),
        "sif_coefficient": sif_coefficient,
        "frequency_source": freq_source,
        "train": dict(asdict(train_cfg).items()),
        "train_max_length": max_length,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "best_epoch": result.best_epoch,
        "val_loss": {"initial": round(result.initial_val_loss, 6), "best": round(result.best_val_loss, 6)},
        "val_cosine": {"initial": round(result.initial_val_cosine, 6), "best": round(result.best_val_cosine, 6)},
        "history": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in h.items()} for h in result.history],
        "featurize_seconds": round(feat_s, 2),
        "train_seconds": round(result.train_seconds, 2),
        "seconds": round(time.perf_counter() - t_start, 2),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    config_out = {k: v for k, v in model.config.items() if k not in ("dim", "dtype", "vocab_size")}
    if t is not None:  # the teacher read here is the one the refined model follows: its commit, or none known
        config_out.pop("teacher_revision", None)
        if (revision := revision_to_record(config_out.get("teacher"), t)) is not None:
            config_out["teacher_revision"] = revision
    config_out["refine"] = info
    config_out["sif_coefficient"] = sif_coefficient
    dtype = cfg.output.dtype
    embeddings = table.astype(np.float16) if dtype == "float16" else table.astype(np.float32)
    out = StaticModel(embeddings, model.tokenizer, config=config_out, normalize=model.normalize,
                      max_length=model.max_length, contrast=contrast)
    if dtype == "int8":
        out = out.quantize("int8")
    return out


def training_max_length(model: StaticModel, configured: int | None, teacher_window: int | None) -> int | None:
    """Tokens of each passage the student reads while training: ``configured`` when set, else the model's own
    limit capped at the teacher's window (``Teacher.student_max_length``), because the teacher's target only saw that
    many tokens: matching it from tokens it never read would teach the table noise. At encode time the model still
    reads up to its own ``max_length``."""
    if configured is not None:
        return configured
    own = model.max_length
    if teacher_window is None:
        return own
    return teacher_window if own is None else min(own, teacher_window)


# Share of the teacher's tokens that may be missing from the model's vocabulary (or sit at another id) before a
# refinement is refused: a model distilled from this teacher holds every one of them at the teacher's id.
MAX_VOCABULARY_MISMATCH = 0.01


class VocabularyMismatchError(ValueError):
    """The static model's vocabulary is not its teacher's: its rows were built for another tokenizer."""


def check_vocabulary_matches(model: StaticModel, teacher_tokenizer: Any, teacher_name: object) -> None:
    """A ``VocabularyMismatchError`` when more than ``MAX_VOCABULARY_MISMATCH`` of the teacher's tokens are missing
    from the model's vocabulary or sit at another id. Such a base was distilled from another teacher: its rows are
    another tokenizer's pieces, and refining it against this teacher would fit them to targets they never produced
    (and record the wrong teacher). Words the model added on top (``--vocabulary``, ``vocabulary_size``) are fine."""
    teacher_vocab = teacher_tokenizer.get_vocab(with_added_tokens=True)
    model_vocab = model.tokenizer.get_vocab(with_added_tokens=True)
    differ = [tok for tok, i in teacher_vocab.items() if model_vocab.get(tok) != i]
    if teacher_vocab and len(differ) > MAX_VOCABULARY_MISMATCH * len(teacher_vocab):
        first = min(differ, key=lambda tok: teacher_vocab[tok])
        at = model_vocab.get(first)
        where = "is missing from the model" if at is None else f"is id {at} in the model"
        recorded = model.config.get("teacher")
        raise VocabularyMismatchError(
            f"the model's vocabulary does not match the teacher {teacher_name!s}'s tokenizer: {len(differ)} of its "
            f"{len(teacher_vocab)} tokens are missing or renumbered (e.g. {first!r}, teacher id "
            f"{teacher_vocab[first]}, {where}); the model was distilled from another teacher"
            + (f" ({recorded})" if recorded else "") + ". Refine it with that teacher, or distill a base from this one")


def frequency_text_field(config: RefineConfig) -> str | None:
    """The field ``output.frequency_corpus`` is read with: ``output.frequency_text_field`` when given, else the
    corpus's ``corpus.text_field`` when the frequency corpus has fields (JSONL, Parquet, ``hf:``); ``None`` for a text
    file (one passage a line) or when there is no frequency corpus."""
    out = config.output
    if out.frequency_text_field is not None:
        return out.frequency_text_field
    if out.frequency_corpus is None or corpus_kind(out.frequency_corpus) == "text":
        return None
    return config.corpus.text_field


def _check_frequency_corpus(config: RefineConfig) -> None:
    """A ``ValueError`` naming ``output.frequency_corpus`` when SIF's frequency corpus is missing, is given a field
    as a text file, or has a record without its text field ``frequency_text_field`` as text: checked before the
    teacher encodes, not after training. A file is read whole (and dropped: it is read again for the counts); a
    streamed ``hf:`` one is not read here."""
    frequency_corpus = config.output.frequency_corpus
    if config.output.sif_coefficient is None or frequency_corpus is None:
        return
    field = frequency_text_field(config)
    try:
        check_text_field(frequency_corpus, config.output.frequency_text_field, "output.frequency_text_field")
        problem = corpus_spec_error(frequency_corpus)
        if problem:
            raise ValueError(problem)
        if corpus_kind(frequency_corpus) != "hf":
            read_corpus(frequency_corpus, None, (), text_field=field)
    except ValueError as exc:
        shown = DEFAULT_TEXT_FIELD if field is None else field
        where = ("" if corpus_kind(frequency_corpus) == "text"
                 else f" (text field {shown!r}: output.frequency_text_field, default corpus.text_field)")
        raise ValueError(f"output.frequency_corpus{where}: {exc}") from None


def _load_model(model: StaticModel | str | os.PathLike[str]) -> StaticModel:
    if isinstance(model, StaticModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return StaticModel.from_pretrained(model)
    raise TypeError(f"model must be a StaticModel or a folder, not {type(model).__name__}")


class TopComponentsDroppedWarning(UserWarning):
    """``refine`` was given a base whose top principal directions were dropped (it refines worse from there)."""


def _warn_if_top_components_dropped(model: StaticModel) -> None:
    """A ``TopComponentsDroppedWarning`` when the base had its top principal directions dropped (``distill``'s
    default): refinement from such a base lost 5 of 21 datasets and won none (``defaults.md``, section 8b)."""
    import warnings

    distill_info = model.config.get("distill")
    params = distill_info.get("parameters") if isinstance(distill_info, dict) else None
    dropped = params.get("dropped_components") if isinstance(params, dict) else None
    if isinstance(dropped, int) and dropped > 0:
        warnings.warn(f"refining a model distilled with its top {dropped} principal directions dropped; refinement "
                      "starts better from distill(..., remove_common_component=False, drop_components=0), what "
                      "python -m distill --refine uses (0 wins / 5 losses on 21 datasets otherwise)",
                      TopComponentsDroppedWarning, stacklevel=3)


def _token_probabilities(model: StaticModel, texts: Sequence[str], size: int) -> np.ndarray:
    """Per-id probabilities of the model's tokens in ``texts`` (unseen ids: half the smallest observed)."""
    from distill.frequencies import probabilities

    counts = np.zeros(size, dtype=np.float64)
    for s in range(0, len(texts), 20_000):
        ids = model.tokenize(texts[s : s + 20_000], max_length=None)
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        counts += np.bincount(flat.astype(np.int64), minlength=size)[:size]
    return probabilities(counts, np.ones(size, dtype=bool))


def _public_name(corpus: str | os.PathLike[str]) -> str:
    """What a shared model records of its corpus: a file's name (never a local path) or the ``hf:`` name."""
    text = os.fspath(corpus)
    return text if text.startswith("hf:") else Path(text).name
