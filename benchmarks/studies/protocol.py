"""Does B -> A help broadly, dataset by dataset? ``python -m benchmarks protocol -m SPEC_A -m SPEC_B``.

(Until the benchmarks were grouped by job this was ``python -m benchmarks.protocol``, the command the committed
results record.)

The selection protocol for a default: every development and test split we have is treated as development data
(``--datasets all``; ``dev`` or ``test`` for one half). For each dataset both models are scored with the suite's own
metric (``benchmarks.quality.tasks``'s protocol, the same numbers ``benchmarks quality`` prints), from per-item pieces
that can be resampled: the cosine of each pair (STS, pair classification, word similarity), whether each test text is
classified right (the suite's logistic regression), each query's nDCG@10 (retrieval), each text's cluster in each
k-means run (clustering, V-measure recomputed on the resampled texts). The items are resampled with replacement
``--resamples`` times, the same resample for both models, giving the 95% percentile interval of A - B.

Per dataset: A, B, A - B, the interval, and win / loss / tie (tie: the interval contains 0). Over datasets: the
counts, the mean of the per-dataset differences, and its leave-one-dataset-out range (the smallest and largest mean
of the differences with one dataset left out: a change whose mean only one dataset carries shows up there), and
the same for the suite's average (mean of task-type means).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.quality import metrics
from benchmarks.quality.data import ClassificationData, ClusteringData, Dataset, DatasetSpec, RetrievalData
from benchmarks.quality.tasks import TaskConfig, TextEncoder, encode_unique
from benchmarks.report import emit
from benchmarks.studies.paired_bootstrap import (
    PAIR_TASKS,
    Draw,
    all_pairs_design,
    check_pair_options,
    dataset_seed,
    item_cosines,
    metric,
    pair_items,
    resampled_differences,
    summarize,
    text_resampler,
)

SPLITS = ("all", "dev", "test")


@dataclass
class ItemScores:
    """One model's score on one dataset, and how to recompute it on a resample of the dataset's items."""

    task: str
    n: int
    score: float
    on: Callable[[np.ndarray], float]  # item indices -> the metric on those items (×100)
    draw: Draw | None = None  # how a resample picks items; None: the items themselves, with replacement
    unit: str = "items"  # what is resampled: "items", or "texts" for an all-pairs design (LP50)


def item_scores(encoder: TextEncoder, ds: Dataset, config: TaskConfig | None = None) -> ItemScores:
    """The suite's score of ``encoder`` on ``ds`` (as ``benchmarks.quality.tasks.evaluate`` computes it),
    resamplable."""
    cfg = config or TaskConfig()
    if ds.task in PAIR_TASKS:
        left, right, gold = pair_items(ds)
        cos = item_cosines(encoder, left, right)
        scores = _scores(ds.task, len(gold), lambda idx: metric(ds.task, cos[idx], gold[idx]))
        design = all_pairs_design(left, right)
        if design is not None:
            scores.draw, scores.unit = text_resampler(design), "texts"
        return scores
    if isinstance(ds, ClassificationData):
        sel = metrics.subsample_train(len(ds.train_texts), ds.train_labels, cfg.train_cap, cfg.seed)
        train = [ds.train_texts[i] for i in sel]
        emb = encode_unique(encoder, train + list(ds.test_texts))
        pred = metrics.classification_predictions(emb[: len(train)], ds.train_labels[sel], emb[len(train):],
                                                  max_iter=cfg.max_iter, seed=cfg.seed)
        right = (np.asarray(pred) == ds.test_labels).astype(np.float64)
        return _scores(ds.task, len(right), lambda idx: 100.0 * float(np.mean(right[idx])))
    if isinstance(ds, ClusteringData):
        from sklearn.metrics import v_measure_score

        emb = encode_unique(encoder, list(ds.texts))
        runs = metrics.kmeans_assignments(emb, len(np.unique(ds.labels)), batch_size=cfg.kmeans_batch_size,
                                          seed=cfg.seed, runs=cfg.kmeans_runs)
        gold = ds.labels
        return _scores(ds.task, len(gold), lambda idx: 100.0 * float(np.mean([v_measure_score(gold[idx], r[idx])
                                                                             for r in runs])))
    if isinstance(ds, RetrievalData):
        nq = len(ds.query_texts)
        emb = encode_unique(encoder, list(ds.query_texts) + list(ds.corpus_texts))
        per_query = metrics.ndcg_per_query(emb[:nq], emb[nq:], ds.query_ids, ds.corpus_ids, ds.qrels, cfg.ndcg_k)
        return _scores(ds.task, len(per_query), lambda idx: 100.0 * float(np.mean(per_query[idx])))
    raise TypeError(f"unsupported dataset type {type(ds).__name__}")


def _scores(task: str, n: int, on: Callable[[np.ndarray], float]) -> ItemScores:
    if n < 1:
        raise ValueError(f"a {task} dataset with no scored item")
    return ItemScores(task, n, on(np.arange(n)), on)


def verdict(ci95: list[float]) -> str:
    """``win`` (A above B: the interval is above 0), ``loss`` (below 0) or ``tie`` (it contains 0)."""
    lo, hi = ci95
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"


def compare_dataset(a: ItemScores, b: ItemScores, *, resamples: int, seed: int) -> dict:
    """A, B, A - B, the paired-bootstrap 95% interval and the verdict on one dataset."""
    if a.n != b.n or a.task != b.task:
        raise ValueError(f"the two models were scored on different items ({a.task} {a.n}, {b.task} {b.n})")
    diffs = resampled_differences(a.on, b.on, a.n, resamples=resamples, seed=seed, draw=a.draw)
    out = {"task": a.task, "n": a.n, "resampled": a.unit, **summarize(a.score, b.score, diffs)}
    out["result"] = verdict(out["ci95"])
    return out


def leave_one_out(per_dataset: dict[str, dict]) -> dict:
    """Mean of the per-dataset differences and of the task-type means, each with its leave-one-dataset-out range."""
    names = list(per_dataset)
    diffs = np.asarray([per_dataset[k]["diff"] for k in names], dtype=np.float64)

    def type_mean(keep: list[str]) -> float:
        by_task: dict[str, list[float]] = {}
        for k in keep:
            by_task.setdefault(per_dataset[k]["task"], []).append(per_dataset[k]["diff"])
        return float(np.mean([np.mean(v) for v in by_task.values()]))

    out = {"datasets": len(names),
           "wins": sum(v["result"] == "win" for v in per_dataset.values()),
           "losses": sum(v["result"] == "loss" for v in per_dataset.values()),
           "ties": sum(v["result"] == "tie" for v in per_dataset.values()),
           "mean_diff": float(diffs.mean()), "task_type_mean_diff": type_mean(names)}
    if len(names) > 1:
        held = [(float(np.delete(diffs, i).mean()), names[i]) for i in range(len(names))]
        typed = [(type_mean(names[:i] + names[i + 1:]), names[i]) for i in range(len(names))]
        for key, vals in (("lodo", held), ("lodo_task_type", typed)):
            lo, hi = min(vals), max(vals)
            out[key] = {"min": lo[0], "min_without": lo[1], "max": hi[0], "max_without": hi[1]}
    return out


def compare(enc_a: TextEncoder, enc_b: TextEncoder, datasets: list[Dataset], *, config: TaskConfig | None = None,
            resamples: int = 1000, seed: int = 42) -> dict:
    """The protocol's report of A against B on ``datasets``, each resampled from its own stream,
    ``dataset_seed(seed, dataset name)``."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    per_dataset = {}
    for ds in datasets:
        a, b = item_scores(enc_a, ds, config), item_scores(enc_b, ds, config)
        per_dataset[ds.name] = compare_dataset(a, b, resamples=resamples, seed=dataset_seed(seed, ds.name))
    return {"datasets": per_dataset, "summary": leave_one_out(per_dataset)}


def markdown(name_a: str, name_b: str, result: dict, resamples: int, splits: dict[str, str] | None = None) -> str:
    """The protocol's per-dataset table and its summary lines."""
    splits = splits or {}
    rows = [f"| {k}{'*' if v.get('resampled') == 'texts' else ''} | {v['task']} | {splits.get(k, '')} | "
            f"{v['n']} | {v['a']:.2f} | {v['b']:.2f} | {v['diff']:+.2f} | "
            f"[{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}] | {v['result']} |" for k, v in result["datasets"].items()]
    s = result["summary"]
    lines = [f"## Selection protocol: {name_a} (A) against {name_b} (B)", "",
             (f"Paired bootstrap over each dataset's items ({resamples} resamples, the same for A and B); "
              "tie = the 95% interval contains 0."
              + (" Marked *: every pair of one set of texts, so the texts are resampled (each text is in many "
                 "pairs; resampling pairs would make the interval too narrow)."
                 if any(v.get("resampled") == "texts" for v in result["datasets"].values()) else "")), "",
             "| dataset | task | split | n | A | B | A - B | 95% interval | result |",
             "|---|---|---|---:|---:|---:|---:|---:|---|", *rows, "",
             f"- **{s['wins']} wins, {s['losses']} losses, {s['ties']} ties** of A over {s['datasets']} datasets",
             f"- mean of per-dataset A - B: **{s['mean_diff']:+.2f}**" + _range(s.get("lodo")),
             f"- A - B on the suite's average (mean of task-type means): **{s['task_type_mean_diff']:+.2f}**"
             + _range(s.get("lodo_task_type"))]
    return "\n".join(lines) + "\n"


def _range(lodo: dict | None) -> str:
    if not lodo:
        return ""
    return (f"; leaving one dataset out: {lodo['min']:+.2f} (without {lodo['min_without']}) to "
            f"{lodo['max']:+.2f} (without {lodo['max_without']})")


def split_specs(root: Path, which: str, tasks: set[str] | None = None) -> list[DatasetSpec]:
    """The dataset specs of ``which`` (``test``: the suite, ``dev``: its development splits, or ``all``), those of
    the task types ``tasks`` only when given; nothing loaded."""
    from benchmarks.quality.data import DEV_NAME, REGISTRY, select

    if which not in SPLITS:
        raise ValueError(f"datasets must be one of {SPLITS}, got {which!r}")
    names = ([s.name for s in REGISTRY] if which in ("all", "test") else []) + ([DEV_NAME] if which != "test" else [])
    return [s for s in select(root, names=names) if not tasks or s.task in tasks]


def load_split(root: Path, which: str) -> list[Dataset]:
    """The loaded datasets of ``which``: ``test`` (the suite), ``dev`` (its development splits) or ``all``."""
    from benchmarks.quality.data import load_available

    return load_available(split_specs(root, which), root)


def split_of(name: str) -> str:
    """``dev`` for a development split, ``test`` for a suite dataset."""
    from benchmarks.quality.data import DEV_SPLITS

    return "dev" if name in {s.name for s in DEV_SPLITS} else "test"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``protocol``."""
    p = subparsers.add_parser("protocol", help="A against B dataset by dataset, paired bootstrap per dataset",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", "-m", action="append", required=True,
                   help="model SPEC, as for benchmarks quality (exactly two: A, the candidate, then B)")
    p.add_argument("--datasets", default="all", choices=SPLITS,
                   help="all (default): every development and test split; dev or test: one half")
    p.add_argument("--tasks", default=None, help="comma list of task types to keep (default: all of them)")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train-cap", type=int, default=None, help="classification train cap (default the suite's)")
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--cache-dir", default=None, help="embedding cache for slow encoders (default .cache/benchmarks)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Score both models on every selected dataset; print (and with ``--out`` write) the protocol's report."""
    from benchmarks.quality.cache import default_cache_dir
    from benchmarks.quality.data import TASK_TYPES, load_available, resolve_data_dir
    from benchmarks.quality.encoders import CachedEncoder, load_encoder
    from benchmarks.quality.tasks import DEFAULT_TRAIN_CAP
    from distill.cli_checks import UsageError

    check_pair_options(args)
    if args.train_cap is not None and args.train_cap < 1:
        raise UsageError("--train-cap must be at least 1")
    keep = set(args.tasks.split(",")) if args.tasks else set()
    if keep - set(TASK_TYPES):
        raise UsageError(f"--tasks: unknown {sorted(keep - set(TASK_TYPES))}; choose from {', '.join(TASK_TYPES)}")
    root = resolve_data_dir(args.data)
    specs = split_specs(root, args.datasets, keep)
    if not specs:  # a split with none of these task types (word similarity has no development split)
        raise UsageError(f"--tasks {args.tasks} and --datasets {args.datasets}: no dataset of these task types in "
                         "that split")
    datasets = load_available(specs, root)
    if not datasets:
        raise UsageError(f"no dataset under {root} (layout: MANIFEST.md)")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    enc_a, enc_b = (CachedEncoder(load_encoder(s), cache, progress=False) for s in args.model)
    cfg = TaskConfig(train_cap=args.train_cap if args.train_cap is not None else DEFAULT_TRAIN_CAP)
    meta = provenance(args.command_line)
    result = compare(enc_a, enc_b, datasets, config=cfg, resamples=args.resamples, seed=args.seed)
    splits = {d.name: split_of(d.name) for d in datasets}
    md = markdown(enc_a.name, enc_b.name, result, args.resamples, splits)
    emit(md + "\n" + provenance_markdown(meta),
         {"a": enc_a.name, "b": enc_b.name, "specs": args.model, "resamples": args.resamples, "seed": args.seed,
          "splits": splits, **result, "meta": meta}, args.out)
    return 0
