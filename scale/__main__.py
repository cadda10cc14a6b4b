"""``python -m scale encode MODEL INPUT [INPUT ...] --output DIR``: bulk encoding on a Ray cluster."""

from __future__ import annotations

import argparse
import sys

from scale.bulk_encode import DEFAULT_PARTITION_ROWS
from static_model.interrupts import EXIT_INTERRUPTED, exit_process, raise_on_interrupt


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the option in its usage error)."""
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m scale`` (its ``encode`` and ``featurize`` jobs)."""
    parser = argparse.ArgumentParser(prog="python -m scale", description="Run static-model jobs on a Ray cluster.")
    jobs = parser.add_subparsers(dest="job", required=True)
    enc = jobs.add_parser(
        "encode",
        help="encode text/JSONL/Parquet files into (id, embedding) Parquet partitions",
        description="Encode every text of the inputs with a static model on Ray workers; vectors stream to Parquet "
        "partitions (columns id, embedding) in --output. Re-running the same command resumes an interrupted run.",
    )
    enc.add_argument("model", help="a static model folder, or a Hugging Face Hub id")
    enc.add_argument("inputs", nargs="+", help=".txt (one text a line), .jsonl or .parquet files")
    enc.add_argument("--output", "-o", required=True, help="folder for the Parquet partitions")
    enc.add_argument("--column", default="text", help="the text's field (JSONL) or column (Parquet); default text")
    enc.add_argument("--partition-rows", type=positive_int, default=DEFAULT_PARTITION_ROWS,
                     help=f"texts per partition file (default {DEFAULT_PARTITION_ROWS:,})")
    enc.add_argument("--address", default=None,
                     help="a running Ray cluster (HOST:PORT, auto, ray://HOST:PORT); default: start a local one")
    enc.add_argument("--workers", type=positive_int, default=None,
                     help="worker processes (default: the cluster's CPUs)")
    enc.add_argument("--batch-size", type=positive_int, default=4096, help="texts per encode call inside a worker")
    enc.add_argument("--overwrite", action="store_true", help="start over in an --output made from other inputs")
    enc.add_argument("--quiet", action="store_true", help="no progress bar")

    feat = jobs.add_parser(
        "featurize",
        help="run refinement's teacher pass over a corpus on Ray workers (fills refine's featurize cache)",
        description="Encode a corpus with the teacher on Ray workers (one GPU each where the cluster has GPUs, else "
        "CPUs), writing the chunks `python -m distill.refine` reads from its cache: run refine afterwards with the "
        "same corpus options and it trains at once. Re-running resumes per chunk.",
    )
    feat.add_argument("teacher", help="the teacher: a name or folder every worker can resolve")
    feat.add_argument("corpus", help="the corpus as refine's --corpus names it (text, .jsonl, .parquet, hf:NAME)")
    feat.add_argument("--max-sentences", default=None,
                      help="the first N passages, or 'all' (as refine's option, with its default)")
    feat.add_argument("--prefer-sources", default=None,
                      type=lambda v: () if v.lower() in ("none", "") else tuple(x for x in v.split(",") if x),
                      help="source names taken first, or 'none' (as refine's option, with its default)")
    feat.add_argument("--text-field", default=None, help="JSONL field / Parquet column (as refine's option)")
    feat.add_argument("--cache-dir", default=None, help="default: refine's own, .cache/refine/<teacher fingerprint>")
    feat.add_argument("--chunk-size", type=positive_int, default=None, help="passages per chunk (default: refine's)")
    feat.add_argument("--batch-size", type=positive_int, default=64, help="passages per teacher forward")
    feat.add_argument("--address", default=None, help="a running Ray cluster; default: start a local one")
    feat.add_argument("--workers", type=positive_int, default=None, help="teacher workers (default: GPUs, else CPUs)")
    feat.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _encode(args: argparse.Namespace) -> str:
    from scale.bulk_encode import encode_files

    report = encode_files(
        args.model, args.inputs, args.output, column=args.column, partition_rows=args.partition_rows,
        address=args.address, workers=args.workers, batch_size=args.batch_size, overwrite=args.overwrite,
        progress=not args.quiet,
    )
    return (f"{report.output}: {report.partitions} partitions ({report.skipped} already done, {report.encoded} "
            f"encoded now), {report.rows:,} texts in {report.seconds:.1f} s")


def _featurize(args: argparse.Namespace) -> str:
    from distill.refine.corpus import DEFAULT_MAX_SENTENCES, read_corpus
    from scale.featurize import featurize_on_ray

    given = args.max_sentences
    if given is not None and given.lower() not in ("all", "none") and not given.isdigit():
        raise ValueError(f"--max-sentences must be a whole number or 'all'; got {given!r}")
    limit = DEFAULT_MAX_SENTENCES if given is None else None if given.lower() in ("all", "none") else int(given)
    texts = read_corpus(args.corpus, limit, args.prefer_sources, text_field=args.text_field)
    report = featurize_on_ray(
        args.teacher, texts, cache_dir=args.cache_dir, chunk_size=args.chunk_size, batch_size=args.batch_size,
        address=args.address, workers=args.workers, progress=not args.quiet,
    )
    return (f"{report.cache_dir}: {report.chunks} chunks ({report.skipped} already cached, {report.encoded} "
            f"encoded now), {report.passages:,} passages in {report.seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    """``python -m scale ...``: bad input exits 2 and a worker's failure 1, each with one ``error:`` line; Ctrl-C
    exits 130."""
    args = build_parser().parse_args(argv)
    from scale.engine import FolderInUseError, WorkerError
    from scale.inputs import InputError

    try:
        raise_on_interrupt()  # from here on Ctrl-C unwinds (finished partitions stay, half-written ones go)
        summary = (_encode if args.job == "encode" else _featurize)(args)
    except (InputError, ValueError, TypeError, OSError, ImportError, FolderInUseError) as exc:
        # OSError: a missing, unreadable or unwritable path (permissions, read-only disk, a name too long), a
        # folder in the way, no cluster at --address
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except WorkerError as exc:  # a worker's failure: one line (its traceback is in exc.worker_traceback)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished partitions are kept; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary)
    return 0


if __name__ == "__main__":
    exit_process(main())
