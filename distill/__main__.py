"""Command line: ``python -m distill TEACHER --output DIR [options]``, ``python -m distill compare ...`` and
``python -m distill refine MODEL ...`` (the same as ``python -m distill.refine``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

USAGE_HINT = "python -m distill compare STATIC_MODEL [TEACHER] [--texts FILE | --pairs FILE]"


def _float_or_none(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "off") else float(value)


def parse_pca_dims(value: str) -> int | float | str | None:
    """``--pca-dims``: ``none``/``off``, ``auto``, an int, or a float (checked by ``check_args``; the benchmarks'
    ablation takes the same option)."""
    word = value.strip().lower()
    if word in ("none", "null", "off"):
        return None
    if word == "auto":
        return "auto"
    try:
        return int(word)
    except ValueError:
        pass
    try:
        return float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int (dims), a float in (0, 1) (variance to keep), auto or none; got {value!r}") from None


def parse_drop_components(value: str) -> int | str:
    """``--drop-components``: ``auto`` or an int >= 0."""
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or an int >= 0, got {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected auto or an int >= 0, got {value!r}")
    return count


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m distill``."""
    from distill.assemble import DEFAULT_CONTRAST
    from distill.cli_checks import OptionParser
    from distill.embed import AUTO_POOLING, DEFAULT_BATCH_SIZE, POOLING_ALIASES, POOLING_CHOICES
    from distill.frequencies import DEFAULT_FREQUENCY_WEIGHT
    from distill.pca import DEFAULT_PCA_DIMS
    from distill.refine.cli import add_refine_options
    from distill.refine.config import DEFAULT_REFINED_CONTRAST
    from static_model.quantization import DTYPES

    p = OptionParser(
        prog="python -m distill",
        description="Distill a sentence-transformer into a static token-embedding model. "
        f"Compare a result with its teacher: {USAGE_HINT}",
    )
    p.add_argument("teacher", help="local folder, all-MiniLM-L6-v2 / all-mpnet-base-v2 (offline packages), or hub id")
    p.add_argument("--output", "-o", required=True, help="folder to write the static model to (written atomically)")
    p.add_argument("--pca-dims", type=parse_pca_dims, default=DEFAULT_PCA_DIMS, metavar="{N,F,auto,none}",
                   help="PCA output dims: an int N (256 = Model2Vec's default size); a float F in (0, 1): the fewest "
                   "dims explaining that fraction of the variance; auto: all the teacher's dims, rotated (no "
                   "reduction); none: no PCA (default auto: benchmarks/results/defaults.md, section 3)")
    p.add_argument("--sif-coefficient", type=_float_or_none, default=1e-4, help="SIF a, or 'none' (default 1e-4)")
    p.add_argument("--vocabulary", help="words to add as whole tokens: one a line, or a word<TAB>frequency TSV")
    p.add_argument("--vocabulary-size", type=int, default=None, help="use only the first N words of --vocabulary")
    p.add_argument("--token-frequencies",
                   help="word<TAB>frequency list, a folder with one, or a text corpus (default: Zipf over token ids)")
    p.add_argument("--frequency-weight", type=float, default=None,
                   help="with --token-frequencies: how far the counts move p from Zipf over ids, in (0, 1] "
                   f"(p ~ zipf^(1-w) * counts^w; default {DEFAULT_FREQUENCY_WEIGHT}, 1 = the counts alone); "
                   "best measured with --sif-coefficient 3e-4")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"sequences per forward in the vocabulary pass (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--pooling", choices=(*POOLING_CHOICES, *POOLING_ALIASES), default=AUTO_POOLING,
                   help="how the vocabulary pass pools a token's teacher forward: auto = the teacher's own pooling "
                   "(mean -> mean, cls -> first, lasttoken -> last, max -> max); mean over the template; first: "
                   "position 0 (CLS; 'cls' is an alias); last: the last position; pooler: the transformer's pooler "
                   "output; max; token: the token's own position (default auto)")
    p.add_argument("--dtype", choices=DTYPES, default="float16")
    p.add_argument("--vocabulary-clusters", type=int, default=None, metavar="N",
                   help="vocabulary quantization after PCA/SIF: k-means the token rows into N rows and store a token "
                   "→ row mapping and per-token weights (a smaller folder; see distill.quantize_vocabulary)")
    p.add_argument("--contrast", type=float, default=None,
                   help="pooling contrast written into the model: 0 for Model2Vec's plain mean; c > 0 weights each "
                   f"token row by exp(-c * cos(row, the text's mean row)) (default {DEFAULT_CONTRAST:g} for a "
                   f"distilled model, {DEFAULT_REFINED_CONTRAST:g} for a refined one, --refine)")
    p.add_argument("--keep-common-component", action="store_true",
                   help="keep the rows as PCA and SIF leave them (Model2Vec's recipe); by default SIF's common "
                   "component (the mean sentence direction under the SIF frequency model) is projected out")
    p.add_argument("--drop-components", type=parse_drop_components, default="auto", metavar="{N,auto}",
                   help="all-but-the-top: drop the N top principal directions of the token vectors before the SIF "
                   "weights; auto (default) = round(dims / 100), 4 for 384 dims; 0 = none (Model2Vec's recipe). "
                   "With --refine, auto means 0 and the common component is kept: the refinement starts from the "
                   "table as PCA and SIF leave it")
    p.add_argument("--revision", default=None,
                   help="a branch, tag or commit of a hub id teacher (as sentence-transformers' revision=; a private "
                   "repository reads HF_TOKEN); a local folder ignores it, and a known teacher is then taken from the "
                   "hub, not its offline package. config.json records the commit read as teacher_revision (also "
                   "for a hub id read from the hub cache without --revision)")
    p.add_argument("--teacher-name", default=None,
                   help="the teacher's public name recorded in the model's config.json, e.g. a hub id 'org/name' "
                   "(default: a known teacher's hub id, else the teacher folder's base name; never a local path)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the model in an existing output folder (a folder holding other files is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    refine = p.add_argument_group("corpus refinement (python -m distill TEACHER --output DIR --refine CORPUS)")
    refine.add_argument("--refine", metavar="CORPUS", default=None,
                        help="after the vocabulary pass, refine on CORPUS: a text file (one passage a line), "
                        ".jsonl/.parquet (--refine-text-field) or hf:NAME (online): "
                        "see python -m distill.refine --help")
    add_refine_options(refine, prefix="refine-")
    return p


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def check_args(args: argparse.Namespace) -> Path:
    """Every check that needs no teacher (usage errors name the option); returns the output folder."""
    from distill.cli_checks import (
        UsageError,
        check_device_option,
        check_input_file,
        check_output_folder,
        check_output_is_not_input,
        check_output_is_not_inside_input,
        check_positive_int,
        check_utf8_text,
    )
    from distill.pca import check_pca_dims
    from distill.refine.cli import cache_dir_from_args, check_cache_folder, check_corpus_option, check_refine_options

    out = check_output_folder(args.output, overwrite=args.overwrite)
    check_output_is_not_input(out, args.teacher, "teacher's")
    check_output_is_not_inside_input(out, args.teacher, "teacher's")
    try:
        check_pca_dims(args.pca_dims)
    except ValueError as exc:
        raise UsageError(f"--pca-dims: {exc}") from None
    if args.contrast is not None:
        from static_model.validation import check_contrast

        try:
            check_contrast(args.contrast, "--contrast")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    check_positive_int(args.batch_size, "--batch-size")
    check_positive_int(args.vocabulary_size, "--vocabulary-size")
    check_positive_int(args.vocabulary_clusters, "--vocabulary-clusters")
    if args.vocabulary_size is not None and not args.vocabulary:
        raise UsageError("--vocabulary-size needs --vocabulary")
    if args.frequency_weight is not None and not args.token_frequencies:
        raise UsageError("--frequency-weight: frequency_weight applies to token_frequencies: pass "
                         "--token-frequencies FILE too, or leave --frequency-weight out")
    if args.vocabulary:
        check_utf8_text(args.vocabulary, "--vocabulary")
    if args.token_frequencies:
        from distill.frequencies import FrequencyFileError, check_source, sniff

        check_input_file(args.token_frequencies, "--token-frequencies", folder_ok=True)
        try:
            check_source(args.token_frequencies)
            kind, source_file = sniff(args.token_frequencies)
        except FrequencyFileError as exc:
            raise UsageError(f"--token-frequencies {args.token_frequencies}: {exc}") from None
        if kind == "corpus":  # a word list is read whole by check_source; a corpus past its first lines only here
            check_utf8_text(source_file, "--token-frequencies")
    if args.refine is not None:
        check_corpus_option(args.refine, "--refine", args.refine_text_field, "--refine-text-field")
        check_refine_options(args, prefix="refine-", corpus=args.refine)
        check_cache_folder(out, cache_dir_from_args(args, prefix="refine-"), ((args.teacher, "teacher's"),),
                           prefix="refine-")
    if args.teacher_name is not None:
        from distill.resolve import check_public_name

        try:
            check_public_name(args.teacher_name)
        except ValueError as exc:
            raise UsageError(f"--teacher-name: {exc}") from None
    check_device_option(args.device)
    return out


def check_refine_corpus_size(args: argparse.Namespace) -> None:
    """``--refine CORPUS``: a ``UsageError`` before the vocabulary pass when the corpus file clearly has fewer distinct
    passages than a refinement needs (the model's dims + 1; dims from ``--pca-dims`` and the teacher's config, which
    loads no weights). It reads at most that many distinct passages; ``refine`` checks the exact count again."""
    from distill.refine.cli import check_corpus_size
    from distill.refine.corpus import corpus_kind
    from distill.resolve import resolve_teacher
    from distill.teacher import read_teacher_spec

    if corpus_kind(args.refine) == "hf":  # streamed online: counted by refine itself
        return
    hidden = read_teacher_spec(resolve_teacher(args.teacher)).hidden_size
    pca_dims = args.pca_dims
    if isinstance(pca_dims, float):  # a variance fraction: the dims are known only after the PCA
        dims = 1
    elif isinstance(pca_dims, int):
        dims = min(pca_dims, hidden)  # a larger --pca-dims is refused on its own
    else:  # auto or none: the teacher's dims
        dims = hidden
    check_corpus_size(args.refine, dims, args, "refine-", before="before the vocabulary pass")


def check_clusters_fit(teacher: str, clusters: int, vocabulary: list[str] | None) -> None:
    """``--vocabulary-clusters N``: a ``UsageError`` before the vocabulary pass when N is more than the rows the model
    can have (the teacher's kept tokens plus the added words; read from its tokenizer, no weights load), which
    ``quantize_vocabulary`` would refuse only after the whole pass."""
    from distill.cli_checks import UsageError
    from distill.resolve import resolve_teacher
    from distill.teacher import load_fast_tokenizer, read_teacher_spec
    from distill.vocabulary import kept_token_ids

    tokenizer = load_fast_tokenizer(read_teacher_spec(resolve_teacher(teacher)).transformer_path)
    rows = len(kept_token_ids(tokenizer)) + len(vocabulary or ())
    if clusters > rows:
        raise UsageError(f"--vocabulary-clusters {clusters}: n_clusters={clusters} is more than the model's {rows} "
                         "token rows at most (the teacher's tokens less its special ones, plus the added words); pass "
                         "at most that")


# The options of the settings whose range the API checks once the teacher's dims are known (``SettingError``).
SETTING_OPTIONS = {"pca_dims": "--pca-dims", "drop_components": "--drop-components",
                   "sif_coefficient": "--sif-coefficient", "frequency_weight": "--frequency-weight"}


def distill_main(argv: list[str]) -> int:
    """Distill (and optionally refine and cluster) as ``argv`` asks, save the model and print a summary; returns 0."""
    args = build_parser().parse_args(argv)
    out = check_args(args)

    from distill import distill, read_vocabulary_file
    from distill.assemble import DEFAULT_CONTRAST
    from distill.cli_checks import UsageError, save_model
    from distill.errors import SettingError

    if args.quiet:  # transformers draws its own bar while it loads the weights
        from distill.cli_checks import silence_progress_bars

        silence_progress_bars()
    start = time.perf_counter()
    given_teacher = args.teacher
    if args.revision is not None:  # the snapshot folder at that revision, for every step that follows
        from distill.resolve import resolve_teacher
        from static_model.hub import check_revision

        try:
            check_revision(args.revision)
        except ValueError as exc:
            raise UsageError(f"--revision: {exc}") from None
        args.teacher = os.fspath(resolve_teacher(args.teacher, revision=args.revision))
        if args.teacher_name is None:  # the name given (a hub id), not the snapshot folder's
            from distill.resolve import public_teacher_name

            args.teacher_name = public_teacher_name(given_teacher, args.teacher)
    if args.refine is not None:
        check_refine_corpus_size(args)
    vocabulary = None
    if args.vocabulary:
        try:
            vocabulary = read_vocabulary_file(args.vocabulary, args.vocabulary_size)
        except ValueError as exc:
            raise UsageError(f"--vocabulary: {exc}") from None
        if not vocabulary:
            raise UsageError(f"--vocabulary {args.vocabulary}: the file holds no words")
    if args.vocabulary_clusters is not None:
        check_clusters_fit(args.teacher, args.vocabulary_clusters, vocabulary)
    try:
        model = distill(
            # with --revision the name as given, resolved again at that revision (from the hub cache now), so the
            # config records the teacher's revision (teacher_revision) even where the snapshot's commit is unknown
            args.teacher if args.revision is None else given_teacher,
            revision=args.revision,
            pca_dims=args.pca_dims,
            sif_coefficient=args.sif_coefficient,
            vocabulary=vocabulary,
            token_frequencies=args.token_frequencies,
            frequency_weight=args.frequency_weight,
            device=args.device,
            batch_size=args.batch_size,
            pooling=args.pooling,
            dtype=args.dtype,
            contrast=DEFAULT_CONTRAST if args.contrast is None else args.contrast,
            # a refinement re-fits every row and starts best from the table as PCA and SIF leave it: from a base
            # with the top components dropped it lost 5 of 21 datasets and won none (benchmarks/results/defaults.md,
            # section 8b); an explicit --drop-components N is still honoured, and the summary prints what was done
            remove_common_component=not args.keep_common_component and args.refine is None,
            drop_components=0 if args.refine is not None and args.drop_components == "auto" else args.drop_components,
            teacher_name=args.teacher_name,
            show_progress_bar=not args.quiet,
        )
    except SettingError as exc:  # name the option, not the Python parameter
        raise UsageError(f"{SETTING_OPTIONS.get(exc.setting, exc.setting)}: {exc}") from None
    if args.refine is not None:
        import warnings

        from distill.refine import refine
        from distill.refine.cli import cache_dir_from_args, config_from_args
        from distill.refine.pipeline import TopComponentsDroppedWarning

        config = config_from_args(args, prefix="refine-", device=args.device, dtype=args.dtype,
                                  contrast=args.contrast)
        with warnings.catch_warnings():  # only an explicit --drop-components N gets here: the user's choice
            warnings.simplefilter("ignore", TopComponentsDroppedWarning)
            model = refine(model, args.teacher, args.refine, config,
                           cache_dir=cache_dir_from_args(args, prefix="refine-"), show_progress_bar=not args.quiet)
    if args.vocabulary_clusters is not None:
        from distill.vocabulary_quantization import quantize_vocabulary

        try:
            model = quantize_vocabulary(model, args.vocabulary_clusters)
        except ValueError as exc:
            raise UsageError(f"--vocabulary-clusters {args.vocabulary_clusters}: {exc}") from None
    # save_pretrained is atomic: an interrupted run leaves no half-written folder.
    save_model(model, out, overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    info = model.config.get("distill", {})
    added = info.get("added_words", {}).get("added", 0)
    print(f"Saved {out}")
    print(f"  teacher             {info.get('teacher')} (given as {given_teacher}"
          f"{_revision_note(args.revision, model.config.get('teacher_revision'), given_teacher)})")
    print(f"  vocabulary          {info.get('vocab_size')} ids, {info.get('embedded_tokens')} embedded"
          f" ({added} added words, {info.get('zero_rows')} zero rows)")
    left_out = _left_out_words(info.get("added_words", {}))
    if left_out:
        print(f"  left out words      {left_out}")
    print(f"  dims                {model.dim} (teacher {info.get('teacher_hidden_size')})")
    print(f"  reads               at most {model.max_length} tokens a text"
          f" (teacher {info.get('teacher_max_seq_length')} with its special tokens)")
    if isinstance(info.get("explained_variance"), (int, float)):  # always recorded by a distill: never invented
        print(f"  explained variance  {info['explained_variance']:.3f}")
    params = info.get("parameters", {})
    assumed = " (assumed: the teacher folder has no sentence-transformers modules.json)" if info.get(
        "teacher_pooling_assumed") else ""
    print(f"  vocabulary pooling  {params.get('pooling')} (the teacher pools with {info.get('teacher_pooling')}"
          f"{assumed})")
    if params.get("sif_coefficient") is None:
        sif = "off"
    elif params.get("token_frequencies") == "zipf-id-rank":
        sif = f"a={params['sif_coefficient']:g}, p from Zipf over token ids"
    else:
        sif = (f"a={params['sif_coefficient']:g}, p from {params.get('token_frequencies')} pooled with Zipf over ids "
               f"(frequency weight {params.get('frequency_weight'):g})")
    print(f"  SIF weights         {sif}")
    removed = params.get("remove_common_component")
    print(f"  common component    {'removed (SIF step 2)' if removed else 'kept'}")
    print(f"  top components      {params.get('dropped_components', 0)} dropped (all-but-the-top)")
    print(f"  pooling             {'mean' if model.contrast == 0 else f'contrast {model.contrast:g}'}")
    print(f"  time                {elapsed:.1f} s (vocabulary pass {info.get('vocab_pass_seconds')} s"
          f" on {params.get('device')})")
    if "refine" in model.config:
        r = model.config["refine"]
        print(f"  refined             {r.get('passages')} passages, held-out cosine "
              f"{r['val_cosine']['initial']:.4f} -> {r['val_cosine']['best']:.4f} (featurize "
              f"{r.get('featurize_seconds')} s, train {r.get('train_seconds')} s)")
    if model.token_mapping is not None:
        print(f"  vocabulary clusters {len(model.embeddings)} rows for {model.vocab_size} token ids (mean cosine to "
              f"the centre {model.config['vocabulary_clusters']['mean_cosine_to_centre']:.3f})")
    print(f"  size                {_folder_size(out) / 2**20:.1f} MiB ({args.dtype})")
    return 0


def _revision_note(given: str | None, recorded: object, teacher: str) -> str:
    """The summary's words on the teacher's revision: the ``--revision`` given and the commit config.json records
    (``teacher_revision``), that a local folder ``teacher`` ignored ``--revision``, or that no commit is recorded."""
    if given is None:
        return f"; hub commit {recorded}" if recorded else ""
    if recorded:
        return f" at revision {given}" + ("" if recorded == given else f"; hub commit {recorded}")
    if Path(teacher).expanduser().exists():
        return f"; --revision {given} ignored: a local folder holds one version"
    return f" at revision {given}; no commit recorded: --teacher-name names another repository"


def _left_out_words(stats: dict[str, int]) -> str:
    """The ``--vocabulary`` words left out for a reason the user can act on, as one summary phrase ('' for none)."""
    parts = []
    if stats.get("too_long"):
        parts.append(f"{stats['too_long']} too long for the teacher's window")
    if stats.get("too_many_characters"):
        parts.append(f"{stats['too_many_characters']} over the tokenizer's characters a word (read as unknown)")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m distill ...``: usage errors exit 2 with one ``error:`` line, Ctrl-C exits 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "compare":
        from distill.comparison import main as compare_main

        return compare_main(argv[1:])
    from distill.resolve import is_model_folder

    if argv and argv[0] == "refine" and not is_model_folder(Path(argv[0])):  # a teacher folder named refine stays one
        from distill.refine.cli import main as refine_main

        return refine_main(argv[1:], prog="python -m distill refine")
    from distill.cli_checks import run_cli
    from distill.frequencies import FrequencyFileError
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    return run_cli(lambda: distill_main(argv),
                   expected=(TeacherNotFoundError, TeacherError, FrequencyFileError, ValueError, TypeError))


if __name__ == "__main__":
    from distill.cli_checks import exit_process

    exit_process(main())
