"""Command line: ``python -m distill TEACHER --output DIR [options]`` and ``python -m distill compare ...``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

USAGE_HINT = "python -m distill compare STATIC_MODEL [TEACHER] (--texts FILE | --pairs FILE)"


def _int_or_none(value: str) -> int | None:
    return None if value.lower() in ("none", "null", "off") else int(value)


def _float_or_none(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "off") else float(value)


def build_parser() -> argparse.ArgumentParser:
    from distill.refine import add_refine_options
    from distill.assemble import DEFAULT_CONTRAST
    from distill.frequencies import DEFAULT_FREQUENCY_WEIGHT
    from distill.embed import DEFAULT_BATCH_SIZE

    p = argparse.ArgumentParser(
        prog="python -m distill",
        description="Distill a sentence-transformer into a static token-embedding model. "
        f"Compare a result with its teacher: {USAGE_HINT}",
    )
    p.add_argument("teacher", help="local folder, all-MiniLM-L6-v2 / all-mpnet-base-v2 (offline packages), or hub id")
    p.add_argument("--output", "-o", required=True, help="folder to write the static model to (written atomically)")
    p.add_argument("--pca-dims", type=_int_or_none, default=256, help="output dims, or 'none' to keep the teacher's (default 256)")
    p.add_argument("--sif-coefficient", type=_float_or_none, default=1e-4, help="SIF a, or 'none' (default 1e-4)")
    p.add_argument("--vocabulary", help="words to add as whole tokens: one a line, or a word<TAB>frequency TSV")
    p.add_argument("--vocabulary-size", type=int, default=None, help="use only the first N words of --vocabulary")
    p.add_argument("--token-frequencies", help="word<TAB>frequency list, a folder with one, or a text corpus (default: Zipf over token ids)")
    p.add_argument("--frequency-weight", type=float, default=None,
                   help="with --token-frequencies: how far the counts move p from Zipf over ids, in (0, 1] "
                   f"(p ~ zipf^(1-w) * counts^w; default {DEFAULT_FREQUENCY_WEIGHT}, 1 = the counts alone); "
                   "best measured with --sif-coefficient 3e-4")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"sequences per forward in the vocabulary pass (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--pooling", choices=("mean", "token", "cls"), default="mean")
    p.add_argument("--dtype", choices=("float16", "float32", "int8"), default="float16")
    p.add_argument("--contrast", type=float, default=DEFAULT_CONTRAST,
                   help="pooling contrast written into the model: 0 for Model2Vec's plain mean; c > 0 weights each "
                   f"token row by exp(-c * cos(row, the text's mean row)) (default {DEFAULT_CONTRAST})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    refine = p.add_argument_group("corpus refinement (python -m distill TEACHER --output DIR --refine CORPUS)")
    refine.add_argument("--refine", metavar="CORPUS", default=None,
                        help="after the vocabulary pass, refine on CORPUS (one passage a line; 'default' for "
                        "../shared/data/corpus_general/sentences.txt): see python -m distill.refine --help")
    add_refine_options(refine, prefix="refine-")
    return p


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def distill_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        print(f"error: output {out} exists and is not empty (use --overwrite to replace it)", file=sys.stderr)
        return 2
    if args.refine not in (None, "default") and not Path(args.refine).is_file():
        print(f"error: --refine: corpus file {args.refine} does not exist", file=sys.stderr)
        return 2
    if args.vocabulary_size is not None and not args.vocabulary:
        print("error: --vocabulary-size needs --vocabulary", file=sys.stderr)
        return 2

    from distill import distill, read_vocabulary_file
    from distill.frequencies import FrequencyFileError
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    if args.quiet:  # transformers draws its own bar while it loads the weights
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    start = time.perf_counter()
    try:
        vocabulary = None
        if args.vocabulary:
            vocabulary = read_vocabulary_file(args.vocabulary, args.vocabulary_size)
            if not vocabulary:
                raise ValueError(f"The vocabulary file {args.vocabulary} holds no words.")
        model = distill(
            args.teacher,
            pca_dims=args.pca_dims,
            sif_coefficient=args.sif_coefficient,
            vocabulary=vocabulary,
            token_frequencies=args.token_frequencies,
            frequency_weight=args.frequency_weight,
            device=args.device,
            batch_size=args.batch_size,
            pooling=args.pooling,
            dtype=args.dtype,
            contrast=args.contrast,
            show_progress_bar=not args.quiet,
        )
        if args.refine is not None:
            from distill.refine import refine, refine_kwargs

            model = refine(model, args.teacher, None if args.refine == "default" else args.refine,
                           device=args.device, dtype=args.dtype, show_progress_bar=not args.quiet,
                           **refine_kwargs(args, prefix="refine-"))
    except (TeacherNotFoundError, TeacherError, FrequencyFileError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # save_pretrained is atomic: an interrupted run leaves no half-written folder.
    model.save_pretrained(out)
    elapsed = time.perf_counter() - start
    info = model.config.get("distill", {})
    added = info.get("added_words", {}).get("added", 0)
    print(f"Saved {out}")
    print(f"  teacher             {info.get('teacher')} ({info.get('teacher_path')})")
    print(f"  vocabulary          {info.get('vocab_size')} ids, {info.get('embedded_tokens')} embedded"
          f" ({added} added words, {info.get('zero_rows')} zero rows)")
    print(f"  dims                {model.dim} (teacher {info.get('teacher_hidden_size')})")
    print(f"  reads               at most {model.max_length} tokens a text (teacher {info.get('teacher_max_seq_length')}"
          " with its special tokens)")
    print(f"  explained variance  {info.get('explained_variance', 1.0):.3f}")
    params = info.get("parameters", {})
    if params.get("sif_coefficient") is None:
        sif = "off"
    elif params.get("token_frequencies") == "zipf-id-rank":
        sif = f"a={params['sif_coefficient']:g}, p from Zipf over token ids"
    else:
        sif = (f"a={params['sif_coefficient']:g}, p from {params.get('token_frequencies')} pooled with Zipf over ids "
               f"(frequency weight {params.get('frequency_weight'):g})")
    print(f"  SIF weights         {sif}")
    print(f"  pooling             {'mean' if model.contrast == 0 else f'contrast {model.contrast:g}'}")
    print(f"  time                {elapsed:.1f} s (vocabulary pass {info.get('vocab_pass_seconds')} s on {info.get('parameters', {}).get('device')})")
    if "refine" in model.config:
        r = model.config["refine"]
        print(f"  refined             {r.get('passages')} passages, held-out cosine "
              f"{r['val_cosine']['initial']:.4f} -> {r['val_cosine']['best']:.4f} (featurize "
              f"{r.get('featurize_seconds')} s, train {r.get('train_seconds')} s)")
    print(f"  size                {_folder_size(out) / 2**20:.1f} MiB ({args.dtype})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] == "compare":
        from distill.comparison import main as compare_main

        return compare_main(argv[1:])
    return distill_main(argv)


if __name__ == "__main__":
    sys.exit(main())
