"""``python -m benchmarks quality``: models side by side on the task suite, and the table it prints.

The options every suite-scored command shares (data folder, cache, task and dataset filters) are defined here once;
``benchmarks ablation`` takes them too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..provenance import provenance_markdown
from ..report import emit, fmt, human_bytes, human_count, markdown_table
from .data import TASK_LABELS, TASK_TYPES
from .encoders import SPEC_HELP
from .tasks import DEFAULT_TRAIN_CAP, TaskConfig


def add_suite_options(p: argparse.ArgumentParser) -> None:
    """The data, cache and selection options of every command scored on the suite."""
    p.add_argument("--data", default=None, help="evaluation data folder (default: ../shared/data when it exists)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: .cache/benchmarks in the cwd)")
    p.add_argument("--cache", choices=["auto", "all", "none"], default="auto",
                   help="which encoders to cache on disk: auto = slow ones (teachers), all, none")
    p.add_argument("--tasks", default=None, help="comma list of task types (sts,classification,pair_classification,"
                                                 "clustering,retrieval,word_similarity)")
    p.add_argument("--datasets", default=None, help="comma list of dataset names (e.g. STSBenchmark,SICK-R); "
                   "development splits only when named (e.g. SciFact-train), 'dev' for all of them")
    p.add_argument("--discover", action="store_true",
                   help="also evaluate extra datasets found in the data folder in the same layout")
    p.add_argument("--train-cap", type=int, default=None,
                   help="max training examples for classification (default 4000)")
    p.add_argument("--device", default=None, help="torch device for teachers (default: distill's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_datasets(args: argparse.Namespace) -> list:
    """The datasets ``add_suite_options``' flags select, loaded; a usage error when there is none."""
    from distill.cli_checks import UsageError

    from .data import load_available, resolve_data_dir, select

    root = resolve_data_dir(args.data)
    tasks = args.tasks.split(",") if args.tasks else None
    names = args.datasets.split(",") if args.datasets else None
    specs = select(root, tasks=tasks, names=names, discover_extra=args.discover)
    if not specs and tasks and names:  # every name is known (select checked), and none is of these task types
        raise UsageError(f"--tasks {args.tasks} and --datasets {args.datasets}: no named dataset is of these task "
                         "types")
    datasets = load_available(specs, root)
    if not datasets:
        raise UsageError(f"no dataset found under {root} (layout: MANIFEST.md)")
    print(f"data: {root} ({len(datasets)} datasets: {', '.join(d.name for d in datasets)})", file=sys.stderr)
    return datasets


def task_config(args: argparse.Namespace) -> TaskConfig:
    """The suite's protocol with ``--train-cap`` applied (at least 1: no training example is no classifier, a
    usage error naming the option before any model runs)."""
    from distill.cli_checks import check_positive_int

    check_positive_int(args.train_cap, "--train-cap")
    return TaskConfig(train_cap=args.train_cap if args.train_cap is not None else DEFAULT_TRAIN_CAP)


def cache_dir(args: argparse.Namespace) -> Path:
    """``--cache-dir``, else ``benchmarks.quality.cache.default_cache_dir()``."""
    from .cache import default_cache_dir

    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def quality_markdown(report: dict, *, title: str = "Quality") -> str:
    """Datasets × models, task-type averages, overall average, % of the reference model."""
    models = report["models"]
    names = [m["name"] for m in models]
    ref = report.get("reference") or (names[0] if names else None)
    scores = {m["name"]: {(r["task"], r["dataset"]): r for r in m["results"]} for m in models}
    datasets: list[tuple[str, str]] = []
    for m in models:
        for r in m["results"]:
            if (r["task"], r["dataset"]) not in datasets:
                datasets.append((r["task"], r["dataset"]))
    datasets.sort(key=lambda td: TASK_TYPES.index(td[0]) if td[0] in TASK_TYPES else 99)
    rows = []
    for task, ds in datasets:
        metric = next((scores[n][(task, ds)]["metric"] for n in names if (task, ds) in scores[n]), "")
        rows.append([f"{TASK_LABELS.get(task, task)} / {ds} ({metric})"]
                    + [fmt(scores[n].get((task, ds), {}).get("score")) for n in names])
    tasks_present = [t for t in TASK_TYPES if any(td[0] == t for td in datasets)]
    for t in tasks_present:
        rows.append([f"**{TASK_LABELS.get(t, t)} avg**"]
                    + [fmt(m["summary"]["task_averages"].get(t)) for m in models])
    rows.append(["**Average (mean of task types)**"] + [f"**{fmt(m['summary']['average'])}**" for m in models])
    ref_model = next((m for m in models if m["name"] == ref), None)
    if ref_model is not None:
        ra = ref_model["summary"]["average"]
        rows.append([f"% of {ref}"] + [fmt(100.0 * m["summary"]["average"] / ra) if ra else "–" for m in models])
    info_rows = []
    if any(m.get("info", {}).get("num_parameters") for m in models):
        info_rows.append(["Parameters"] + [human_count(m.get("info", {}).get("num_parameters")) for m in models])
    if any(m.get("info", {}).get("expanded_parameters") for m in models):  # vocabulary-quantized models
        info_rows.append(["Parameters, expanded (token ids × dim)"]
                         + [human_count(m.get("info", {}).get("expanded_parameters")) for m in models])
    if any(m.get("info", {}).get("size_on_disk") for m in models):
        info_rows.append(["Size on disk"] + [human_bytes(m.get("info", {}).get("size_on_disk")) for m in models])
    out = [f"## {title}", "", markdown_table(["Dataset (metric ×100)"] + names, rows + info_rows), ""]
    extras = []
    for m in models:
        for r in m["results"]:
            if r.get("task") == "word_similarity" and r.get("extra", {}).get("coverage", 100) < 100:
                extras.append(f"{m['name']} {r['dataset']} coverage {r['extra']['coverage']}%")
    if extras:
        out += ["Word coverage below 100%: " + "; ".join(extras), ""]
    unscored = sorted({(r["dataset"], r["extra"]["queries_without_positive"], r["n"]) for m in models
                       for r in m["results"] if r.get("extra", {}).get("queries_without_positive")})
    if unscored:  # the same for every model: a property of the judgements
        out += ["Retrieval queries without a positive judgement, left out of nDCG: "
                + "; ".join(f"{name} {k} of {n}" for name, k, n in unscored), ""]
    if report.get("config"):
        cfg = report["config"]
        out += [f"Protocol: classification train cap {cfg.get('train_cap')}, LogisticRegression max_iter "
                f"{cfg.get('max_iter')}, seed {cfg.get('seed')}; clustering MiniBatchKMeans batch "
                f"{cfg.get('kmeans_batch_size')}, V-measure mean of {cfg.get('kmeans_runs', 1)} seeds; retrieval "
                f"nDCG@{cfg.get('ndcg_k')}. Average = mean of the task-type averages.", ""]
    if report.get("meta"):
        out += [provenance_markdown(report["meta"])]
    return "\n".join(out)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``quality``."""
    p = subparsers.add_parser("quality", help="evaluate models side by side on the task suite")
    p.add_argument("--model", "-m", action="append", required=True, help=SPEC_HELP)
    add_suite_options(p)
    p.add_argument("--reference", default=None, help="model name (or index) the '%% of' row is relative to "
                                                      "(default: the first model)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json (e.g. benchmarks/results/quality)")
    p.add_argument("--title", default=None)
    return p


def check_reference(reference: str | None, n_models: int) -> None:
    """``--reference`` given as an index is one of the ``n_models`` models: a usage error before the run (it was an
    IndexError after every model had been scored)."""
    from distill.cli_checks import UsageError

    if reference is not None and reference.isdigit() and int(reference) >= n_models:
        raise UsageError(f"--reference {reference}: there are {n_models} models (-m), so an index is 0 to "
                         f"{n_models - 1}")


def run(args: argparse.Namespace) -> int:
    """Score every ``-m`` model on the selected datasets; print (and with ``--out`` write) the table."""
    from .tasks import run_quality

    check_reference(args.reference, len(args.model))
    config = task_config(args)
    datasets = load_datasets(args)
    report = run_quality(args.model, datasets, config=config, cache_dir=cache_dir(args),
                         cache_mode=args.cache, reference=args.reference, progress=not args.no_progress,
                         device=args.device, argv=args.command_line)
    if args.reference and args.reference.isdigit():
        report["reference"] = report["models"][int(args.reference)]["name"]
    elif args.reference and report["reference"] != args.reference:  # a name known only once the models loaded
        print(f"warning: --reference {args.reference}: no model of that name (models: "
              f"{', '.join(m['name'] for m in report['models'])}); the '% of' row is relative to "
              f"{report['reference']}", file=sys.stderr)
    emit(quality_markdown(report, title=args.title or "Quality"), report, args.out)
    return 0
