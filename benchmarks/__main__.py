"""``python -m benchmarks {quality,speed,ablation,plot,classify} ...`` (see ``--help`` of each)."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path

SPEC_HELP = ("model SPEC, repeatable: static:PATH (ours; static:PATH?contrast=C overrides its pooling contrast), "
             "teacher:NAME_OR_PATH (distill.Teacher), model2vec:PATH, "
             "st:NAME (sentence-transformers), or a bare PATH/NAME (auto-detected); prefix LABEL= to name the column")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help="evaluation data folder (default: ../shared/data when it exists)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: .cache/benchmarks in the cwd)")
    p.add_argument("--cache", choices=["auto", "all", "none"], default="auto",
                   help="which encoders to cache on disk: auto = slow ones (teachers), all, none")
    p.add_argument("--tasks", default=None, help="comma list of task types (sts,classification,pair_classification,"
                                                 "clustering,retrieval,word_similarity)")
    p.add_argument("--datasets", default=None, help="comma list of dataset names (e.g. STSBenchmark,SICK-R); development splits only when named "
                   "(e.g. SciFact-train), 'dev' for all of them")
    p.add_argument("--discover", action="store_true",
                   help="also evaluate extra datasets found in the data folder in the same layout")
    p.add_argument("--train-cap", type=int, default=None, help="max training examples for classification (default 4000)")
    p.add_argument("--device", default=None, help="torch device for teachers (default: distill's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _load_datasets(args):
    from .data import load_available, resolve_data_dir, select

    root = resolve_data_dir(args.data)
    tasks = args.tasks.split(",") if args.tasks else None
    names = args.datasets.split(",") if args.datasets else None
    specs = select(root, tasks=tasks, names=names, discover_extra=args.discover)
    datasets = load_available(specs, root)
    if not datasets:
        from distill.cli_checks import UsageError

        raise UsageError(f"no dataset found under {root} (layout: MANIFEST.md)")
    print(f"data: {root} ({len(datasets)} datasets: {', '.join(d.name for d in datasets)})", file=sys.stderr)
    return datasets


def _task_config(args):
    from .tasks import DEFAULT_TRAIN_CAP, TaskConfig

    return TaskConfig(train_cap=args.train_cap if args.train_cap is not None else DEFAULT_TRAIN_CAP)


def _cache_dir(args) -> Path:
    from .cache import default_cache_dir

    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


# ------------------------------------------------------------------------------------------------ quality
def cmd_quality(args) -> int:
    from .report import emit, quality_markdown
    from .tasks import run_quality

    datasets = _load_datasets(args)
    report = run_quality(args.model, datasets, config=_task_config(args), cache_dir=_cache_dir(args),
                         cache_mode=args.cache, reference=args.reference, progress=not args.no_progress,
                         device=args.device)
    if args.reference and args.reference.isdigit():
        report["reference"] = report["models"][int(args.reference)]["name"]
    emit(quality_markdown(report, title=args.title or "Quality"), report, args.out)
    return 0


def add_quality(sub) -> None:
    p = sub.add_parser("quality", help="evaluate models side by side on the task suite")
    p.add_argument("--model", "-m", action="append", required=True, help=SPEC_HELP)
    _add_common(p)
    p.add_argument("--reference", default=None, help="model name (or index) the '%% of' row is relative to "
                                                      "(default: the first model)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json (e.g. benchmarks/results/quality)")
    p.add_argument("--title", default=None)
    p.set_defaults(func=cmd_quality)


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Benchmark suite for static embeddings.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_quality(sub)
    from . import ablation, plot, speed

    speed.add_parser(sub)
    ablation.add_parser(sub, _add_common, _load_datasets, _task_config, _cache_dir)
    plot.add_parser(sub)
    # The fine-tuning classifier benchmark lives in benchmarks/classify.py (another package owner): register it
    # when it is there and offers the hook.
    # A broken or missing classify module must never take the other subcommands down.
    try:
        classify = importlib.import_module("benchmarks.classify")
    except Exception as e:  # noqa: BLE001 - ImportError, SyntaxError, anything raised at import
        if not (isinstance(e, ImportError) and getattr(e, "name", None) == "benchmarks.classify"):
            warnings.warn(f"benchmarks.classify could not be imported, 'classify' is unavailable: "
                          f"{type(e).__name__}: {e}", stacklevel=1)
    else:
        if hasattr(classify, "add_parser"):
            classify.add_parser(sub)
    return parser


def check_args(args) -> None:
    """Checks that need no model or data loaded: every -m SPEC, --device, --data (usage errors name them)."""
    from distill.cli_checks import UsageError, check_device_option

    from .encoders import SpecError, check_spec

    specs = getattr(args, "model", None)
    if isinstance(specs, list):  # classify's --model is one folder, checked by its own command
        for spec in specs:
            try:
                check_spec(spec)
            except SpecError as exc:
                raise UsageError(f"-m: {exc}") from None
    check_device_option(getattr(args, "device", None))
    data = getattr(args, "data", None)
    if data is not None and not Path(data).expanduser().is_dir():
        raise UsageError(f"--data {data}: the folder does not exist")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks ...``: usage errors exit 2 with one ``error:`` line, Ctrl-C exits 130."""
    from distill.cli_checks import run_cli

    from .encoders import SpecError

    def run() -> int:
        args = build_parser().parse_args(argv)
        check_args(args)
        return int(args.func(args) or 0)

    return run_cli(run, expected=(SpecError,))


if __name__ == "__main__":
    from distill.cli_checks import exit_process

    exit_process(main())
