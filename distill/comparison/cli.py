"""The command line ``python -m distill compare STATIC [TEACHER] [--texts FILE | --pairs FILE] [--json]``: the
options checked before anything loads, then the report (``format_report``) or the result as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from distill.comparison.inputs import read_scored_pairs, read_texts
from distill.comparison.measure import compare
from distill.comparison.report import format_report

# shipped as package data (distill/data): public domain
SAMPLE_SENTENCES = Path(__file__).parent.parent / "data" / "sample_sentences.txt"

METRICS_HELP = """what the report says:
  Spearman correlation   between the static model's and the teacher's cosine similarities: over every pair
                         of the --texts, or over the --pairs; 1 = the static model ranks the pairs exactly as
                         the teacher does, 0 = no relation
  neighbour overlap@k    for each text, the share of its k nearest neighbours (cosine, itself excluded) that
                         both models agree on, averaged over the texts (1 = the same neighbours)
  gold scores            with scored --pairs: each model's Spearman correlation with the gold scores (a
                         .jsonl pair's score, else its numeric label, as in GLUE STS-B)
  speed                  texts per second of each model, both timed here on the same texts after a warm-up,
                         each by its fastest run (up to five, while they take under a second in all; the
                         teacher on --device); the ratio is how many times faster the static model is
A number the input cannot give (a model that maps every text to one vector, e.g. texts with no token the static
model knows) is reported as not measured, with the reason; the report counts texts with a zero vector.
--json prints the same numbers as one JSON object (the keys spearman, neighbour_overlap@k, speed_ratio, ...;
null and the key not_measured for a number not measured), with the model, teacher and file compared."""


def build_parser(prog: str = "python -m distill compare") -> argparse.ArgumentParser:
    """The argument parser of ``python -m distill compare``."""
    from distill.cli_checks import OptionParser

    p = OptionParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=METRICS_HELP,
        description="Compare a static model with its teacher: encode the same texts with both and measure how "
        "closely the static model reproduces the teacher's similarities, and how much faster it is.")
    p.add_argument("static_model", help="folder of the static model, or its Hugging Face Hub id")
    p.add_argument("teacher", nargs="?", default=None,
                   help="teacher name or folder (default: the teacher named in the model's config.json)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--texts", help=".txt (one text a line) or .jsonl (text / sentence1, sentence2); default: the "
                     "2,000 public-domain sentences shipped with the package (distill/data/sample_sentences.txt)")
    src.add_argument("--pairs", help=".jsonl with sentence1, sentence2[, score, or label as in GLUE STS-B] or a TSV "
                     "(sentence1, sentence2[, score])")
    p.add_argument("--limit", type=int, default=2000, help="at most this many texts / pairs (default 2000)")
    p.add_argument("--k", type=int, default=10, help="neighbours for the overlap (default 10)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None, help="torch device for the teacher (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p


def read_input(
    args: argparse.Namespace,
) -> tuple[list[str] | None, list[tuple[str, str]] | None, list[float] | None, str | None]:
    """``(texts, pairs, scores, where the scores are)`` from ``--texts`` or ``--pairs``, checked (usage errors name
    the option and file; the last item as ``read_scored_pairs`` gives it)."""
    from distill.cli_checks import UsageError, check_positive_int, check_utf8_text

    check_positive_int(args.limit, "--limit")
    check_positive_int(args.k, "--k")
    check_positive_int(args.batch_size, "--batch-size")
    if not args.texts and not args.pairs:
        args.texts = str(SAMPLE_SENTENCES)
    option, path = ("--texts", args.texts) if args.texts else ("--pairs", args.pairs)
    check_utf8_text(path, option)
    try:
        if args.texts:
            texts = read_texts(path, args.limit)
            if len(set(texts)) < 3:
                raise ValueError(f"{path} holds {len(set(texts))} distinct text(s); at least three are needed (two "
                                 "make a single pair, and a Spearman correlation ranks at least two).")
            return texts, None, None, None
        pairs, scores, score_key = read_scored_pairs(path, args.limit)
        if not pairs:
            raise ValueError(f"{path} holds no pairs.")
        return None, pairs, scores, score_key
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def check_pairs_rank(pairs: list[tuple[str, str]] | None, scores: list[float] | None, path: str) -> None:
    """``--pairs`` that a Spearman correlation can rank: two pairs or more, and gold scores that are not all one value
    (each was once reported as a correlation of 0.0); checked after the model folder, before anything loads."""
    from distill.cli_checks import UsageError

    if pairs is not None and len(pairs) < 2:
        raise UsageError(f"--pairs: {path} holds a single pair; at least two are needed (a Spearman correlation ranks "
                         "the pairs)")
    if scores is not None and len(set(scores)) < 2:
        raise UsageError(f"--pairs: {path}: every gold score is {scores[0]!r}, a constant with no ranking to "
                         "correlate with; give varied scores, or none")


def check_model_args(args: argparse.Namespace) -> None:
    """The static model folder and ``--device``, checked before anything loads."""
    from distill.cli_checks import check_device_option, check_model_folder

    check_model_folder(args.static_model, "STATIC_MODEL")
    check_device_option(args.device)


def _main(argv: list[str] | None, prog: str) -> int:
    args = build_parser(prog).parse_args(argv)
    texts, pairs, scores, score_key = read_input(args)
    check_model_args(args)
    path = args.texts or args.pairs
    check_pairs_rank(pairs, scores, path)
    from static_model import StaticModel

    static = StaticModel.from_pretrained(args.static_model)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the report is the output: no weight-loading bar in front of it
    res = compare(static, args.teacher, texts=texts, pairs=pairs, scores=scores,
                  k=args.k, batch_size=args.batch_size, device=args.device)
    if score_key is not None:  # where the gold scores were read: "score", "label" or "column 3"
        res["gold_score_key"] = score_key
    teacher = args.teacher or (static.config or {}).get("teacher")
    if args.json:  # what was compared with what, as the report says it; strict JSON (NaN is none)
        res = {"static_model": str(args.static_model), "teacher_given": str(teacher), "source": str(path),
               "input": "texts" if args.texts else "pairs", **res}
        print(json.dumps(res, indent=2, allow_nan=False))
    else:
        print(format_report(res, static_name=args.static_model, teacher_name=str(teacher), source=path,
                            kind="texts" if args.texts else "pairs"))
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m distill compare") -> int:
    """``python -m distill compare``: usage errors exit 2 with one ``error:`` line, Ctrl-C exits 130."""
    from distill.cli_checks import run_cli
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    return run_cli(lambda: _main(argv, prog), expected=(TeacherNotFoundError, TeacherError, ValueError, TypeError))
