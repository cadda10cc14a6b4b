"""``python -m distill.refine``: the command line of ``refine``, and the refine options ``python -m distill
--refine CORPUS`` shares (``add_refine_options`` / ``config_from_args`` with ``prefix="refine-"``)."""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from distill.cli_checks import OptionParser, number_or_none
from distill.refine.config import DEFAULT_REFINED_CONTRAST, RefineConfig
from distill.refine.corpus import CORPUS_OPTIONS, DEFAULT_MAX_SENTENCES, DEFAULT_PREFER_SOURCES, DEFAULT_TEXT_FIELD
from distill.refine.train import LOSSES, TrainConfig
from static_model import StaticModel

# the options add_refine_options adds, as RefineConfig.from_options names (cache-dir is a location, not a setting)
OPTION_NAMES = ("max_sentences", "prefer_sources", "text_field", "vocabulary_size", "loss", "epochs", "batch_size",
                "learning_rate", "weight_learning_rate", "center_targets", "patience", "sif_coefficient", "seed",
                "buffer_passages")


class OptionTarget(Protocol):
    """An ``argparse`` parser or argument group: what ``add_refine_options`` adds its options to."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        """Add one option (``argparse.ArgumentParser.add_argument``)."""


def build_parser(prog: str = "python -m distill.refine") -> argparse.ArgumentParser:
    """The parser of ``python -m distill.refine`` (also run as ``python -m distill refine``: ``prog``)."""
    p = OptionParser(
        prog=prog,
        description="Refine a distilled static model on a corpus: featurize with the teacher, train the table "
        "and per-token weights against the teacher's (PCA'd) sentence embeddings, re-weight with corpus SIF.",
    )
    p.add_argument("model", help="static model folder (e.g. written by python -m distill) or Hugging Face Hub id")
    p.add_argument("--output", "-o", required=True, help="folder for the refined model (written atomically)")
    p.add_argument("--teacher", default=None,
                   help="teacher name/folder (default: the one in the model's config, at the revision it records)")
    p.add_argument("--corpus", default=None, help=f"the corpus (required): {CORPUS_OPTIONS}")
    add_refine_options(p)
    p.add_argument("--contrast", type=float, default=None,
                   help="pooling contrast of the refined model (0: plain mean, what Model2Vec's loader computes; "
                   f"default {DEFAULT_REFINED_CONTRAST:g}: contrast pooling, measured better on refined models)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=("float16", "float32", "int8"), default="float16")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def add_refine_options(p: OptionTarget, prefix: str = "") -> None:
    """The refinement options (``prefix="refine-"`` for ``python -m distill ... --refine CORPUS``)."""
    p.add_argument(f"--{prefix}max-sentences", type=_max_sentences,
                   default=DEFAULT_MAX_SENTENCES,
                   help=f"use the first N passages, or 'all' (default {DEFAULT_MAX_SENTENCES:,})")
    p.add_argument(f"--{prefix}prefer-sources", default=None,
                   type=lambda v: () if v.lower() in ("none", "") else tuple(x for x in v.split(",") if x),
                   help="comma list of source names (the corpus's <stem>.source.txt sidecar) taken first, or 'none' "
                   f"(default: {','.join(DEFAULT_PREFER_SOURCES)} when the sidecar names it, else none)")
    p.add_argument(f"--{prefix}text-field", default=None,
                   help="JSONL field / Parquet column / dataset field with the passage "
                   f"(default {DEFAULT_TEXT_FIELD!r}; refused for a text file, one passage a line)")
    p.add_argument(f"--{prefix}cache-dir", default=None,
                   help="featurize cache (default .cache/refine/<teacher fingerprint>)")
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
    p.add_argument(f"--{prefix}sif-coefficient", type=_sif_coefficient,
                   default=None, help="SIF a for a corpus re-weighting after training (default none: the trained "
                   "per-token weights do that job)")
    p.add_argument(f"--{prefix}seed", type=int, default=train.seed)
    p.add_argument(f"--{prefix}buffer-passages", type=int, default=train.buffer_passages,
                   help="target rows held in memory while training, whatever the corpus size (the training "
                   f"memory bound; default {train.buffer_passages:,})")


_max_sentences = number_or_none(int, ("all", "none"), "a whole number of passages or 'all'")  # --max-sentences
_sif_coefficient = number_or_none(float, ("none", "off"), "a number in (0, 1) or 'none'")  # --sif-coefficient


def config_from_args(args: argparse.Namespace, prefix: str = "", *, device: str | None = None,
                     dtype: str = "float16", contrast: float | None = None) -> RefineConfig:
    """The ``RefineConfig`` of parsed ``add_refine_options`` options (run ``check_refine_options`` first)."""
    pre = prefix.replace("-", "_")
    options = {n: getattr(args, pre + n) for n in OPTION_NAMES}
    return RefineConfig.from_options(device=device, dtype=dtype, contrast=contrast, **options)


def cache_dir_from_args(args: argparse.Namespace, prefix: str = "") -> str | None:
    """The ``--cache-dir`` value of parsed ``add_refine_options`` options."""
    value = getattr(args, prefix.replace("-", "_") + "cache_dir")
    return None if value is None else str(value)


def check_corpus_option(
    corpus: str | None, option: str, text_field: str | None = None, field_option: str = "--text-field"
) -> None:
    """The corpus of ``option``: ``hf:NAME`` (``corpus.corpus_spec_error``) or a readable file, UTF-8 text with a
    non-blank line when it is a text or JSONL file; ``field_option`` given (``text_field`` not ``None``) only for a
    corpus with fields (``corpus.check_text_field``)."""
    from distill.cli_checks import UsageError, check_input_file, check_utf8_text
    from distill.refine.corpus import check_text_field, corpus_kind, corpus_spec_error

    problem = corpus_spec_error(corpus)
    if problem:
        raise UsageError(f"{option}: {problem}")
    assert corpus is not None  # corpus_spec_error names a missing corpus
    try:
        check_text_field(corpus, text_field, field_option)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kind = corpus_kind(corpus)
    if kind in ("text", "jsonl"):  # UTF-8 and not blank, before a teacher loads (a distill runs before --refine)
        check_utf8_text(corpus, option)
    elif kind != "hf":
        check_input_file(corpus, option)
    if kind in ("jsonl", "parquet"):  # the text field of its first passage (a distill runs before --refine reads it)
        from distill.refine.corpus import read_corpus

        try:
            read_corpus(corpus, 1, (), text_field=text_field)
        except ValueError as exc:
            raise UsageError(f"{option} (with {field_option} {text_field or 'text'}): {exc}") from None


def check_refine_options(args: argparse.Namespace, prefix: str = "", corpus: str | None = None) -> None:
    """Check the ``add_refine_options`` values (and, given the ``corpus``, the sources it prefers) before any work;
    ``UsageError`` names the option."""
    from distill.cli_checks import UsageError

    pre = prefix.replace("-", "_")

    def value(name: str) -> Any:
        return getattr(args, pre + name.replace("-", "_"))

    for name in ("max-sentences", "epochs", "batch-size", "patience", "buffer-passages"):
        v = value(name)
        if v is not None and v < 1:
            raise UsageError(f"--{prefix}{name} must be at least 1, got {v}")
    if value("vocabulary-size") < 0:
        raise UsageError(f"--{prefix}vocabulary-size must be 0 or more, got {value('vocabulary-size')}")
    for name in ("learning-rate", "weight-learning-rate"):
        v = value(name)
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise UsageError(f"--{prefix}{name} must be a finite positive number, got {v}")
    if value("seed") < 0:
        raise UsageError(f"--{prefix}seed must be 0 or more, got {value('seed')}")
    sif = value("sif-coefficient")
    if sif is not None and not 0 < sif < 1:
        raise UsageError(f"--{prefix}sif-coefficient must be in (0, 1) or 'none', got {sif}")
    cache = value("cache-dir")
    if cache is not None and Path(cache).expanduser().exists() and not Path(cache).expanduser().is_dir():
        raise UsageError(f"--{prefix}cache-dir {cache}: this is an existing file, not a folder")
    if corpus is not None and value("prefer-sources"):
        _check_prefer_sources(corpus, tuple(value("prefer-sources")), f"--{prefix}prefer-sources")
    if corpus is not None:
        _check_every_record(corpus, value("max-sentences"), value("text-field"), prefix)


def _check_every_record(corpus: str, max_sentences: int | None, text_field: str | None, prefix: str) -> None:
    """Every record refinement will read of a JSONL or Parquet corpus has its text field as text (a missing
    field, a list or a number on line 40,000 is an error now, not after the distill and the teacher load). Text
    files were read whole by ``check_corpus_option``; a streamed dataset is not read here."""
    from distill.cli_checks import UsageError
    from distill.refine.corpus import corpus_kind, corpus_spec_error, read_corpus

    if corpus_spec_error(corpus) is not None or corpus_kind(corpus) not in ("jsonl", "parquet"):
        return
    option = "--refine" if prefix else "--corpus"
    try:
        read_corpus(corpus, max_sentences, (), text_field=text_field)
    except ValueError as exc:
        raise UsageError(f"{option} (with --{prefix}text-field {text_field or 'text'}): {exc}") from None


def check_corpus_size(corpus: str, dims: int, args: argparse.Namespace, prefix: str = "", *, before: str) -> None:
    """A ``UsageError`` naming the corpus file when it clearly has fewer distinct passages than refining a ``dims``
    model needs (dims + 1, to fit the PCA of the targets), among the first ``--max-sentences`` unless preferred
    sources reorder it; ``before`` says what it was checked before. It reads at most dims + 1 distinct passages
    (``count_distinct_passages``); a streamed ``hf:`` corpus is counted by ``refine`` itself."""
    from distill.cli_checks import UsageError
    from distill.refine.corpus import corpus_kind, count_distinct_passages, resolve_prefer_sources

    if corpus_kind(corpus) == "hf":
        return
    pre, option = prefix.replace("-", "_"), "--refine" if prefix else "--corpus"
    needed = dims + 1
    prefer, cap = getattr(args, pre + "prefer_sources"), getattr(args, pre + "max_sentences")
    if resolve_prefer_sources(corpus, prefer):  # they reorder the file: uncapped, an upper bound (a sure refusal)
        cap = None
    try:
        distinct = count_distinct_passages(corpus, needed, cap, text_field=getattr(args, pre + "text_field"))
    except ValueError as exc:
        raise UsageError(f"{option} {corpus}: {exc}") from None
    if distinct < needed:  # the cap is named only when the file holds more beyond it (read again, up to `needed`)
        capped = cap is not None and count_distinct_passages(
            corpus, needed, None, text_field=getattr(args, pre + "text_field")) > distinct
        within = f" in its first {cap} passages (--{prefix}max-sentences)" if capped else ""
        raise UsageError(f"{option} {corpus}: the corpus has only {distinct} distinct passages{within}; a refinement "
                         f"needs at least {needed} (the model's dims + 1) to fit the PCA of the targets (checked "
                         f"{before})")


def _check_prefer_sources(corpus: str, sources: tuple[str, ...], option: str) -> None:
    """The corpus is a text file whose source sidecar names every one of ``sources`` (what ``read_corpus`` needs)."""
    from distill.cli_checks import UsageError
    from distill.refine.corpus import corpus_kind, passage_text, source_sidecar

    kind = corpus_kind(corpus)
    if kind != "text":
        raise UsageError(f"{option}: needs a text corpus file with a source sidecar, not a {kind} corpus")
    side = source_sidecar(Path(corpus).expanduser())
    if not side.is_file():
        raise UsageError(f"{option}: needs {side} (one source name a line, line for line with the corpus); "
                         "it does not exist")
    try:
        with open(side, encoding="utf-8-sig") as f:  # as read_corpus reads it: a BOM is not part of a name
            names = {passage_text(line) for line in f}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option}: {side} cannot be read as UTF-8 text ({exc})") from None
    unknown = sorted(set(sources) - names)
    if unknown:
        raise UsageError(f"{option}: {unknown} never occur in {side}")


def print_summary(model: StaticModel, out: Path) -> None:
    """What the run did, from the model's ``"refine"`` record."""
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
        UsageError,
        check_device_option,
        check_model_folder,
        check_output_folder,
        check_output_is_not_input,
        check_output_is_not_inside_input,
    )

    out = check_output_folder(args.output, overwrite=args.overwrite)
    check_output_is_not_input(out, args.teacher, "teacher's")  # the model itself may be replaced: it is read first
    model_dir = check_model_folder(args.model, "MODEL")  # a hub id: its snapshot in the hub cache
    check_output_is_not_inside_input(out, model_dir, "base model's")
    teacher_dir = _teacher_folder(args, model_dir)
    check_output_is_not_inside_input(out, teacher_dir, "teacher's")
    check_corpus_option(args.corpus, "--corpus", args.text_field)
    check_refine_options(args, corpus=args.corpus)
    check_cache_folder(out, cache_dir_from_args(args), ((model_dir, "base model's"), (teacher_dir, "teacher's")))
    check_device_option(args.device)
    if args.contrast is not None:
        from static_model.validation import check_contrast

        try:
            check_contrast(args.contrast, "--contrast")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return out


def check_cache_folder(out: Path, cache_dir: str | None,
                       inputs: Sequence[tuple[str | os.PathLike[str] | None, str]] = (), prefix: str = "") -> None:
    """A ``UsageError`` when the featurize cache (``--cache-dir``, or the default ``.cache/refine`` under the working
    folder) is the output folder or inside it: the run would featurize and train, and then the save refuses an output
    the cache's chunks have filled (or, replacing an older model there, deletes the cache with it); or when it is one
    of the ``inputs`` folders (folder, what: the base model's, the teacher's) or inside one: its chunks and meta.json
    would be written into a model the run reads, and a later save over that model refuses the folder they fill. And
    when no chunk can be written in a new or empty cache folder (a file in the way, a read-only place)."""
    from distill.cli_checks import UsageError, check_writable_place
    from distill.refine.featurize import DEFAULT_CACHE_ROOT

    cache = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_ROOT).expanduser().resolve()
    named = (f"--{prefix}cache-dir {cache_dir}" if cache_dir is not None
             else f"the default featurize cache {DEFAULT_CACHE_ROOT} (--{prefix}cache-dir)")
    out_real = out.expanduser().resolve()
    if cache.is_relative_to(out_real):
        raise UsageError(f"{named} is the --output folder {out} or inside it: the save writes only the model there, "
                         "so it would refuse that folder after the whole run (or delete the cache with the older "
                         f"model); pass a --{prefix}cache-dir outside the output folder")
    for folder, what in inputs:
        if folder is None or not Path(folder).expanduser().is_dir():
            continue
        if cache.is_relative_to(Path(folder).expanduser().resolve()):
            raise UsageError(f"{named} is the {what} folder {folder} or inside it: the featurized chunks would be "
                             f"written into a model the run reads; pass a --{prefix}cache-dir outside it")
    # a chunk can be written there (probed with a real file in it, or in its nearest existing parent), before the work
    # rather than after a distill's vocabulary pass and the teacher's load; not a cache in use, which a run whose
    # passages are all featurized only reads (a shared read-only cache; a failed write names the folder then)
    if not (cache.is_dir() and any(cache.iterdir())):
        check_writable_place(cache / ".write-check", named)


def _teacher_folder(args: argparse.Namespace, model_dir: Path) -> str | None:
    """The teacher's folder: ``--teacher``, else the teacher the model's config records when it resolves without a
    download (None when it does not: the run reports that)."""
    if args.teacher is not None:
        return str(args.teacher)
    import json

    from distill.resolve import TeacherNotFoundError, config_teacher_revision, resolve_teacher

    try:
        recorded = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        name = recorded.get("teacher") if isinstance(recorded, dict) else None
        revision = config_teacher_revision(recorded)  # as refine reads it
        return str(resolve_teacher(name, allow_download=False, revision=revision)) \
            if isinstance(name, str) and name else None
    except (OSError, ValueError, TeacherNotFoundError):  # an unreadable config or teacher: the run says which
        return None


def main(argv: list[str] | None = None, prog: str = "python -m distill.refine") -> int:
    """Run the command line; 0 on success, 2 for a usage error, 130 on Ctrl-C (``distill.cli_checks.run_cli``)."""
    from distill.cli_checks import run_cli
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    return run_cli(lambda: _main(argv, prog), expected=(TeacherNotFoundError, TeacherError, ValueError))


def _main(argv: list[str] | None, prog: str) -> int:
    from distill.cli_checks import save_model
    from distill.refine.pipeline import refine

    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO if not args.quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    out = check_args(args)
    base = StaticModel.from_pretrained(args.model)  # cheap (a table), and gives the dims the corpus must exceed
    check_corpus_size(args.corpus, base.dim, args, before="before the teacher loads")
    if args.quiet:
        from distill.cli_checks import silence_progress_bars

        silence_progress_bars()
    config = config_from_args(args, device=args.device, dtype=args.dtype, contrast=args.contrast)
    model = refine(base, args.teacher, args.corpus, config, cache_dir=cache_dir_from_args(args),
                   show_progress_bar=not args.quiet)
    save_model(model, out, overwrite=args.overwrite)
    print_summary(model, out)
    return 0
