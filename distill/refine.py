"""Corpus refinement of a distilled static model (Model2Vec's tokenlearn step, inside the toolkit).

>>> from distill import distill
>>> from distill.refine import refine
>>> base = distill("all-MiniLM-L6-v2", pca_dims=256)
>>> model = refine(base, "all-MiniLM-L6-v2", "passages.txt", max_sentences=30_000)
>>> model.save_pretrained("minilm-refined")

Stages:

0. **corpus** (``distill.refine_corpus.read_corpus``): a text, JSONL or Parquet file, ``hf:NAME`` (a Hugging Face
   dataset, streamed) or an iterable, up to ``max_sentences`` passages; there is no default corpus. A text file
   with a source sidecar naming ``DEFAULT_PREFER_SOURCES`` (the benchmark data's ``corpus_general/sentences.txt``)
   has those lines taken first.
1. **featurize** (``distill.refine_featurize``): the teacher encodes every passage (length-sorted
   batches, GPU when present); the targets are cached on disk in chunks with atomic renames, so an
   interrupted run resumes where it stopped.
2. **PCA** of the targets to the static model's dims (float64, ``distill.pca.pca``'s basis), the
   targets' mean kept (``x @ components``), so the student learns the teacher's own uncentred cosines;
   ``center_targets=True`` projects ``x - mean`` instead (``benchmarks/results/refine_variants_center.md``).
3. **initialisation**: the static table lives in its own PCA basis (the vocabulary pass), the targets in
   theirs. ``init="linear-map"`` (default) fits, in closed form on the training split, the affine map
   ``mean-of-rows @ W + b ~ target`` and applies it to every row (the mean is linear, so mapping rows
   maps sentence means): tokens the corpus never shows still land in the target space.
   ``init="table"`` uses the table as it is (only meaningful when the bases already agree).
4. **training** (``distill.refine_train``, torch): the sentence vector is ``sum_t w_t E_t / n`` (the runtime's
   mean of rows with a per-token weight), trained against the PCA'd targets with an MSE (default) or cosine loss, Adam,
   mini-batches; early stopping on a held-out split restores the best epoch. Seeded.
5. **SIF re-weighting** with the real token frequencies of the corpus (``a / (a + p)``), optional and off by
   default: the trained per-token weights already learn how much each token counts, and re-weighting on top
   lowered the MiniLM suite average (see ``benchmarks/results/refine_variants_loss_sif.md``).

The result is an ordinary ``StaticModel`` (float16 table by default) with a ``"refine"`` record in its config.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from distill.refine_corpus import (
    CORPUS_OPTIONS,
    DEFAULT_PREFER_SOURCES,
    DEFAULT_TEXT_FIELD,
    read_corpus,
    resolve_prefer_sources,
)
from distill.refine_featurize import DEFAULT_CHUNK_SIZE, default_cache_dir, featurize, teacher_fingerprint
from distill.refine_train import LOSSES, TrainConfig, TrainResult, train_table

__all__ = ["DEFAULT_PREFER_SOURCES", "TrainConfig", "TrainResult", "extend_vocabulary",
           "frequent_new_words", "read_corpus", "refine", "train_table"]

logger = logging.getLogger(__name__)

# MiniLM on a 2-core CPU: featurize ~140 passages/s (Wikipedia-first lines), train 62 s: a default run within ~20 min
DEFAULT_MAX_SENTENCES = 100_000


# --------------------------------------------------------------------------- vocabulary extension


def frequent_new_words(model, texts: Sequence[str], n: int, *, min_count: int = 5) -> list[str]:
    """The ``n`` most frequent whole words of ``texts`` (as the model's pre-tokenizer splits them) that the
    model's tokenizer splits into several tokens."""
    from collections import Counter

    tok = model.tokenizer
    counts: Counter = Counter()
    norm, pre = tok.normalizer, tok.pre_tokenizer
    for t in texts:
        s = norm.normalize_str(t) if norm is not None else t
        words = [w for w, _ in pre.pre_tokenize_str(s)] if pre is not None else s.split()
        counts.update(words)
    vocab = tok.get_vocab(with_added_tokens=True)
    out = []
    for w, c in counts.most_common():
        if c < min_count or len(out) >= n:
            break
        if w in vocab or not any(ch.isalnum() for ch in w):
            continue
        out.append(w)
    return out


def extend_vocabulary(model, words: Sequence[str]):
    """A copy of ``model`` whose tokenizer also has ``words`` as whole tokens; each new row is the mean of the
    word's old pieces (what the model gave the word before). Returns ``(model, added ids)``."""
    from distill.vocabulary import build_output_tokenizer, output_vocab_size
    from static_model import StaticModel

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
    return StaticModel(rows, new_tok, config=config, normalize=model.normalize, max_length=model.max_length), ids


# --------------------------------------------------------------------------- refine


def _load_model(model):
    from static_model import StaticModel

    if isinstance(model, StaticModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return StaticModel.from_pretrained(model)
    raise TypeError(f"model must be a StaticModel or a folder, not {type(model).__name__}")


def _token_probabilities(model, texts: Sequence[str], size: int) -> np.ndarray:
    """Per-id probabilities of the model's tokens in ``texts`` (unseen ids: half the smallest observed)."""
    from distill.frequencies import probabilities

    counts = np.zeros(size, dtype=np.float64)
    for s in range(0, len(texts), 20_000):
        ids = model.tokenize(texts[s : s + 20_000], max_length=None)
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        counts += np.bincount(flat.astype(np.int64), minlength=size)[:size]
    return probabilities(counts, np.ones(size, dtype=bool))


def _public_name(corpus: str | os.PathLike) -> str:
    """What a shared model records of its corpus: a file's name (never a local path) or the ``hf:`` name."""
    text = os.fspath(corpus)
    return text if text.startswith("hf:") else Path(text).name


def refine(
    model,
    teacher=None,
    corpus: str | os.PathLike | Iterable[str] | None = None,
    *,
    max_sentences: int | None = DEFAULT_MAX_SENTENCES,
    prefer_sources: Sequence[str] | None = None,
    text_field: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    teacher_batch_size: int = 64,
    vocabulary_size: int = 0,
    sif_coefficient: float | None = None,
    frequency_corpus: str | os.PathLike | Iterable[str] | None = None,
    loss: str = "mse",
    init: str = "linear-map",
    epochs: int = 30,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_learning_rate: float | None = None,
    center_targets: bool = False,
    patience: int = 3,
    validation_fraction: float = 0.1,
    seed: int = 0,
    device: str | None = None,
    dtype: str = "float16",
    contrast: float | None = None,
    show_progress_bar: bool = True,
    targets: np.ndarray | None = None,
):
    """Refine a distilled static model on a corpus; returns a new ``static_model.StaticModel``.

    :param model: a ``StaticModel`` or its folder (e.g. the output of ``distill.distill``).
    :param teacher: a name, folder or ``distill.Teacher``; default the teacher recorded in the model's config.
    :param corpus: a text file (one passage a line), a ``.jsonl`` or ``.parquet`` file (the passage in
        ``text_field``), ``hf:NAME[:CONFIG][@SPLIT]`` (a Hugging Face dataset, streamed; needs a network) or an
        iterable of strings. Required: no corpus ships with the package (``None`` raises, naming the options).
    :param max_sentences: use N passages for featurizing and training, the first ones of the corpus or, with
        ``prefer_sources``, those sources' first (default 100,000: about 12 minutes with MiniLM on a 2-core CPU);
        ``None``: all of them.
    :param prefer_sources: source names (from the corpus file's ``<stem>.source.txt`` sidecar) whose passages are
        taken first, the others filling up to ``max_sentences`` (see ``read_corpus``). ``None`` (default):
        ``DEFAULT_PREFER_SOURCES`` when the file's sidecar names them, none otherwise; ``()``: none.
    :param text_field: the JSONL field, Parquet column or dataset field holding the passage (default ``"text"``).
    :param cache_dir: where the featurized chunks go (default ``.cache/refine/<teacher fingerprint>``, shared by all corpora).
    :param vocabulary_size: add the corpus's N most frequent whole words that the tokenizer splits as new
        tokens (their rows start as the mean of their pieces, then are trained). 0: no new words.
    :param sif_coefficient: ``None`` (default): no re-weighting. Else, after training, rows are scaled by
        ``a / (a + p)`` with ``p`` the token's frequency in ``frequency_corpus``.
    :param frequency_corpus: where ``p`` is counted (default: the whole corpus file, or the passages used).
    :param loss: ``"mse"`` (default) or ``"cosine"`` against the PCA'd teacher targets. Measured on the MiniLM
        suite (100k passages, ``benchmarks/results/refine_variants.md``): MSE 69.1, cosine 68.6 on average, MSE
        higher on STS, classification, pair classification, clustering and retrieval.
    :param weight_learning_rate: Adam learning rate of the per-token weights (default ``learning_rate / 10``).
    :param center_targets: project the teacher's targets on their principal components after removing their mean
        (plain PCA). Default ``False``: the mean's projection is kept, so the student learns the teacher's own
        (uncentered) cosine geometry; measured in ``benchmarks/results/refine_variants_center.md``.
    :param init: ``"linear-map"`` (default) or ``"table"`` (see the module docstring).
    :param contrast: the refined model's pooling contrast (``StaticModel.contrast``); default: the input model's.
        Training always fits the plain mean; contrast pooling is applied at encode time (measured on top of the
        refined table in ``benchmarks/results/contrast_dev.md``).
    :param targets: precomputed teacher embeddings of the passages (skips featurizing; experiments).
    """
    from distill.frequencies import sif_weights
    from distill.pca import pca
    from static_model import StaticModel

    t_start = time.perf_counter()
    if dtype not in ("float32", "float16", "int8"):
        raise ValueError(f"dtype must be float32, float16 or int8, got {dtype!r}")
    if sif_coefficient is not None and not 0 < float(sif_coefficient) < 1:
        raise ValueError(f"sif_coefficient must be in (0, 1) or None, got {sif_coefficient!r}")
    if not isinstance(vocabulary_size, int) or vocabulary_size < 0:
        raise ValueError(f"vocabulary_size must be a non-negative int, got {vocabulary_size!r}")
    cfg = TrainConfig(loss=loss, init=init, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      weight_learning_rate=weight_learning_rate, patience=patience,
                      validation_fraction=validation_fraction, seed=seed, device=device)
    cfg.check()
    model = _load_model(model)
    from static_model.model import check_contrast

    contrast = model.contrast if contrast is None else check_contrast(contrast)
    prefer_sources = resolve_prefer_sources(corpus, prefer_sources)
    texts = read_corpus(corpus, max_sentences, prefer_sources, text_field=text_field)

    # ---- featurize
    feat_s = 0.0
    teacher_name = None
    cache_used = None
    fingerprint = None
    if targets is None:
        from distill.teacher import Teacher

        if teacher is None:
            teacher = model.config.get("teacher")
            if not teacher:
                raise ValueError("No teacher given and the model's config records none.")
        t = teacher if isinstance(teacher, Teacher) else Teacher(teacher, device=device)
        teacher_name = t.public_name  # a hub id or base name, never a local path
        fingerprint = teacher_fingerprint(t)
        cache_used = Path(cache_dir) if cache_dir is not None else default_cache_dir(t)
        t_feat = time.perf_counter()
        targets = featurize(t, texts, cache_dir=cache_used, chunk_size=chunk_size, batch_size=teacher_batch_size,
                            show_progress_bar=show_progress_bar)
        feat_s = time.perf_counter() - t_feat
        if not isinstance(teacher, Teacher):
            t.unload()
    else:
        targets = np.asarray(targets, dtype=np.float32)
        teacher_name = getattr(teacher, "name", teacher)
        if targets.ndim != 2 or len(targets) != len(texts):
            raise ValueError(f"targets must be ({len(texts)}, d), got {targets.shape}")
    if len(texts) < model.dim + 1:
        raise ValueError(f"The corpus has {len(texts)} passages; at least dims + 1 = {model.dim + 1} are needed "
                         "to fit the PCA of the targets.")

    # ---- optional new words
    added: list[int] = []
    if vocabulary_size:
        words = frequent_new_words(model, texts, vocabulary_size)
        model, added = extend_vocabulary(model, words)

    # ---- PCA of the targets, tokenize, train
    y, explained = pca(targets, model.dim, keep_mean=not center_targets)
    ids = model.tokenize(texts, max_length=cfg.max_length)
    result = train_table(model.embedding_matrix(), ids, y, cfg, show_progress_bar=show_progress_bar)
    table = result.table

    # ---- SIF with the corpus's real token frequencies
    freq_source = None
    if sif_coefficient is not None:
        if frequency_corpus is None:
            freq_texts = read_corpus(corpus, text_field=text_field) if isinstance(corpus, (str, os.PathLike)) else texts
            freq_source = _public_name(corpus) if isinstance(corpus, (str, os.PathLike)) else "passages"
        else:
            freq_texts = read_corpus(frequency_corpus)
            freq_source = (_public_name(frequency_corpus) if isinstance(frequency_corpus, (str, os.PathLike))
                           else "iterable")
        probs = _token_probabilities(model, freq_texts, table.shape[0])
        table = table * sif_weights(probs, sif_coefficient)[:, None]

    info = {
        "teacher": str(teacher_name) if teacher_name is not None else None,
        "teacher_fingerprint": fingerprint,
        "corpus": _public_name(corpus) if isinstance(corpus, (str, os.PathLike)) else "iterable",
        "passages": len(texts),
        "prefer_sources": list(prefer_sources),
        "text_field": text_field,
        "target_pca_explained_variance": round(float(explained), 6),
        "targets_centered": bool(center_targets),
        "added_words": len(added),
        "sif_coefficient": sif_coefficient,
        "frequency_source": freq_source,
        "train": {k: v for k, v in asdict(cfg).items()},
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
    config = {k: v for k, v in model.config.items() if k not in ("dim", "dtype", "vocab_size")}
    config["refine"] = info
    config["sif_coefficient"] = sif_coefficient
    embeddings = table.astype(np.float16) if dtype == "float16" else table.astype(np.float32)
    out = StaticModel(embeddings, model.tokenizer, config=config, normalize=model.normalize,
                      max_length=model.max_length, contrast=contrast)
    if dtype == "int8":
        out = out.quantize("int8")
    out._refine_result = result  # the full TrainResult, for callers and tests (not saved)
    return out


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distill.refine",
        description="Refine a distilled static model on a corpus: featurize with the teacher, train the table "
        "and per-token weights against the teacher's (PCA'd) sentence embeddings, re-weight with corpus SIF.",
    )
    p.add_argument("model", help="static model folder (e.g. written by python -m distill)")
    p.add_argument("--output", "-o", required=True, help="folder for the refined model (written atomically)")
    p.add_argument("--teacher", default=None, help="teacher name/folder (default: the one in the model's config)")
    p.add_argument("--corpus", default=None, help=f"the corpus (required): {CORPUS_OPTIONS}")
    add_refine_options(p)
    p.add_argument("--contrast", type=float, default=None,
                   help="pooling contrast of the refined model (0: plain mean; default: the input model's)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=("float16", "float32", "int8"), default="float16")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def add_refine_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The refinement options (``prefix="refine-"`` for ``python -m distill ... --refine CORPUS``)."""
    p.add_argument(f"--{prefix}max-sentences", type=lambda v: None if v.lower() in ("all", "none") else int(v),
                   default=DEFAULT_MAX_SENTENCES,
                   help=f"use the first N passages, or 'all' (default {DEFAULT_MAX_SENTENCES:,})")
    p.add_argument(f"--{prefix}prefer-sources", default=None,
                   type=lambda v: () if v.lower() in ("none", "") else tuple(x for x in v.split(",") if x),
                   help="comma list of source names (the corpus's <stem>.source.txt sidecar) taken first, or 'none' "
                   f"(default: {','.join(DEFAULT_PREFER_SOURCES)} when the sidecar names it, else none)")
    p.add_argument(f"--{prefix}text-field", default=None,
                   help=f"JSONL field / Parquet column / dataset field with the passage (default {DEFAULT_TEXT_FIELD!r})")
    p.add_argument(f"--{prefix}cache-dir", default=None, help="featurize cache (default .cache/refine/<teacher fingerprint>)")
    p.add_argument(f"--{prefix}vocabulary-size", type=int, default=0, help="add the N most frequent split words")
    train = TrainConfig()  # one place for the training defaults
    p.add_argument(f"--{prefix}loss", choices=LOSSES, default=train.loss)
    p.add_argument(f"--{prefix}epochs", type=int, default=train.epochs)
    p.add_argument(f"--{prefix}batch-size", type=int, default=train.batch_size)
    p.add_argument(f"--{prefix}learning-rate", type=float, default=train.learning_rate)
    p.add_argument(f"--{prefix}weight-learning-rate", type=float, default=train.weight_learning_rate,
                   help="Adam learning rate of the per-token weights (default: the learning rate / 10)")
    p.add_argument(f"--{prefix}patience", type=int, default=train.patience)
    p.add_argument(f"--{prefix}center-targets", action="store_true",
                   help="remove the targets' mean before their PCA (default: keep it, the teacher's own cosines)")
    p.add_argument(f"--{prefix}sif-coefficient", type=lambda v: None if v.lower() in ("none", "off") else float(v),
                   default=None, help="SIF a for a corpus re-weighting after training (default none: the trained "
                   "per-token weights do that job)")
    p.add_argument(f"--{prefix}seed", type=int, default=train.seed)


def refine_kwargs(args: argparse.Namespace, prefix: str = "") -> dict:
    """``refine`` keyword arguments from parsed ``add_refine_options`` options."""
    pre = prefix.replace("-", "_")
    names = ("max_sentences", "prefer_sources", "text_field", "cache_dir", "vocabulary_size", "loss", "epochs", "batch_size",
             "learning_rate", "weight_learning_rate", "center_targets", "patience", "sif_coefficient", "seed")
    return {n: getattr(args, pre + n) for n in names}


def check_corpus_option(corpus: str | None, option: str) -> None:
    """The corpus of ``option``: a readable file or ``hf:NAME`` (``refine_corpus.corpus_spec_error``)."""
    from distill.cli_checks import UsageError, check_input_file
    from distill.refine_corpus import corpus_kind, corpus_spec_error

    problem = corpus_spec_error(corpus)
    if problem:
        raise UsageError(f"{option}: {problem}")
    if corpus_kind(corpus) != "hf":
        check_input_file(corpus, option)


def check_refine_options(args: argparse.Namespace, prefix: str = "") -> None:
    """Check the ``add_refine_options`` values before any work; ``UsageError`` names the option."""
    from distill.cli_checks import UsageError

    pre = prefix.replace("-", "_")

    def value(name: str):
        return getattr(args, pre + name.replace("-", "_"))

    for name in ("max-sentences", "epochs", "batch-size", "patience"):
        v = value(name)
        if v is not None and v < 1:
            raise UsageError(f"--{prefix}{name} must be at least 1, got {v}")
    if value("vocabulary-size") < 0:
        raise UsageError(f"--{prefix}vocabulary-size must be 0 or more, got {value('vocabulary-size')}")
    for name in ("learning-rate", "weight-learning-rate"):
        v = value(name)
        if v is not None and not v > 0:
            raise UsageError(f"--{prefix}{name} must be positive, got {v}")
    sif = value("sif-coefficient")
    if sif is not None and not 0 < sif < 1:
        raise UsageError(f"--{prefix}sif-coefficient must be in (0, 1) or 'none', got {sif}")


def print_summary(model, out: Path) -> None:
    info = model.config.get("refine", {})
    print(f"Saved {out}")
    print(f"  passages            {info.get('passages')} ({info.get('n_train')} train / {info.get('n_val')} held out)")
    print(f"  held-out cosine     {info['val_cosine']['initial']:.4f} -> {info['val_cosine']['best']:.4f}"
          f" (best epoch {info.get('best_epoch')}, loss {info['train']['loss']})")
    print(f"  added words         {info.get('added_words')}")
    print(f"  time                featurize {info.get('featurize_seconds')} s, train {info.get('train_seconds')} s,"
          f" total {info.get('seconds')} s")


def check_args(args: argparse.Namespace) -> Path:
    """Every check that needs neither the model nor the teacher loaded; returns the output folder."""
    from distill.cli_checks import (
        check_device_option,
        check_model_folder,
        check_output_folder,
    )

    out = check_output_folder(args.output, overwrite=args.overwrite)
    check_model_folder(args.model, "MODEL")
    check_corpus_option(args.corpus, "--corpus")
    check_refine_options(args)
    check_device_option(args.device)
    return out


def main(argv: list[str] | None = None) -> int:
    from distill.cli_checks import run_cli
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    return run_cli(lambda: _main(argv), expected=(TeacherNotFoundError, TeacherError, ValueError))


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if not args.quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    out = check_args(args)
    from distill.cli_checks import save_model

    model = refine(args.model, args.teacher, args.corpus, device=args.device, dtype=args.dtype,
                   contrast=args.contrast, show_progress_bar=not args.quiet, **refine_kwargs(args))
    save_model(model, out, overwrite=args.overwrite)
    print_summary(model, out)
    return 0


if __name__ == "__main__":
    from distill.cli_checks import exit_process

    exit_process(main())
