"""Refinement variants side by side on the quality suite (how the defaults of ``distill.refine`` were chosen).

    python -m benchmarks refine-variants --base .cache/models/distill-all-MiniLM-L6-v2 \
        --variant 'cosine, no SIF={"loss": "cosine"}' --variant 'mse, no SIF={"loss": "mse"}' \
        --out benchmarks/results/refine_variants

Each variant is ``LABEL=JSON``: ``RefineConfig.from_options`` names (``distill.refine``) on top of the shared ones
(``--teacher``, ``--max-sentences``). The featurized targets are cached, so after the first variant each one costs
its training and its (static, fast) evaluation only. (Until the benchmarks were grouped by job this was
``python -m benchmarks.refine_variants``, the command the committed results record.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_variant(text: str) -> tuple[str, dict]:
    """``LABEL=JSON`` -> (label, the refine() keyword arguments); an argparse error naming the variant otherwise."""
    label, sep, kwargs = text.partition("=")
    if not sep or not label.strip():
        raise argparse.ArgumentTypeError(f"--variant wants LABEL=JSON, got {text!r}")
    try:
        parsed = json.loads(kwargs)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--variant {label!r}: not JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"--variant {label!r}: JSON must be an object of refine() arguments")
    return label.strip(), parsed


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``refine-variants``."""
    p = subparsers.add_parser("refine-variants", help="refinement variants side by side on the suite",
                              description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="static model folder to refine (e.g. from python -m distill)")
    p.add_argument("--teacher", default=None, help="teacher (default: the one in the base model's config)")
    p.add_argument("--corpus", default=None, help="corpus file (default: refine's default corpus)")
    p.add_argument("--max-sentences", type=int, default=100_000)
    p.add_argument("--variant", action="append", type=parse_variant, required=True, help="LABEL=JSON, repeatable")
    p.add_argument("--work-dir", default=".cache/refine_variants", help="where the variant models are saved")
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Refine the base model once per variant, score them all on the suite; print (and write) the table."""
    from benchmarks.quality.data import load_available, resolve_data_dir, select
    from benchmarks.quality.suite import quality_markdown
    from benchmarks.quality.tasks import run_quality
    from benchmarks.report import emit
    from distill.refine import RefineConfig, refine

    work = Path(args.work_dir)
    specs, notes = [], []
    for label, kwargs in args.variant:
        config = RefineConfig.from_options(**{"max_sentences": args.max_sentences, **kwargs})
        model = refine(args.base, args.teacher, args.corpus, config, show_progress_bar=False)
        info = model.config["refine"]
        notes.append(f"- {label}: `{json.dumps(kwargs)}`; best epoch {info['best_epoch']}, held-out cosine "
                     f"{info['val_cosine']['initial']:.4f} -> {info['val_cosine']['best']:.4f}, "
                     f"training {info['train_seconds']} s")
        print(notes[-1], file=sys.stderr, flush=True)
        folder = work / "".join(c if c.isalnum() else "_" for c in label)
        model.save_pretrained(folder, overwrite=True)
        specs.append(f"{label}=static:{folder}")
    root = resolve_data_dir(args.data)
    report = run_quality(specs, load_available(select(root), root), cache_dir=None, cache_mode="none",
                         progress=False, argv=args.command_line)
    report["variants"] = notes
    md = quality_markdown(report, title=f"Refinement variants of {args.base} ({args.max_sentences:,} passages)")
    emit(md + "\nVariants:\n\n" + "\n".join(notes) + "\n", report, args.out)
    return 0

