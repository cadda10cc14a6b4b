"""Is a clustering gap real or k-means seed noise? ``python -m benchmarks cluster-seeds -m SPEC -m SPEC --seeds 20``.

(Until the benchmarks were grouped by job this was ``python -m benchmarks.cluster_seeds``, the command the committed
results record.)

The suite scores clustering as the V-measure of MiniBatchKMeans averaged over 5 seeds. This scores each model over
``--seeds`` seeds (42, 43, ...) on one clustering dataset and reports the mean, its standard error and the suite's
own 5-seed score, so two models' difference can be set against the spread.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.report import emit


def seed_scores(emb: np.ndarray, labels: np.ndarray, seeds: int, *, first_seed: int, batch_size: int) -> np.ndarray:
    """The V-measure (×100) of one k-means run per seed ``first_seed``, ``first_seed + 1``, ..."""
    from benchmarks.quality.metrics import clustering_v_measure

    return np.array([clustering_v_measure(emb, labels, batch_size=batch_size, seed=first_seed + s, runs=1)
                     for s in range(seeds)])


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cluster-seeds``."""
    p = subparsers.add_parser("cluster-seeds", help="a clustering score over many k-means seeds, with its spread",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", "-m", action="append", required=True, help="model SPEC, as for benchmarks quality")
    p.add_argument("--dataset", default="StackOverflow", help="clustering dataset name (default StackOverflow)")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Each model's V-measure over ``--seeds`` seeds; print (and with ``--out`` write) the table."""
    from benchmarks.quality.data import ClusteringData, load_available, resolve_data_dir, select
    from benchmarks.quality.encoders import load_encoder
    from benchmarks.quality.tasks import TaskConfig
    from distill.cli_checks import UsageError

    if args.seeds < 2:
        raise UsageError("--seeds must be at least 2")
    root = resolve_data_dir(args.data)
    datasets = load_available(select(root, tasks=["clustering"], names=[args.dataset], names_option="--dataset"), root)
    ds = datasets[0] if datasets else None
    if not isinstance(ds, ClusteringData):
        raise UsageError(f"no clustering dataset {args.dataset!r} under {root}")
    cfg = TaskConfig()
    meta = provenance(args.command_line)
    rows = []
    for spec in args.model:
        enc = load_encoder(spec)
        emb = enc.encode(list(ds.texts))
        scores = seed_scores(emb, ds.labels, args.seeds, first_seed=cfg.seed, batch_size=cfg.kmeans_batch_size)
        rows.append({"model": enc.name, "mean": float(scores.mean()),
                     "sem": float(scores.std(ddof=1) / np.sqrt(len(scores))),
                     "suite_seeds": float(scores[: cfg.kmeans_runs].mean()), "scores": scores.tolist()})
    md = [f"## Clustering over {args.seeds} k-means seeds: {ds.name} (V-measure ×100)", "",
          f"| model | mean of {args.seeds} seeds | standard error | the suite's {cfg.kmeans_runs} seeds |",
          "|---|---:|---:|---:|"]
    md += [f"| {r['model']} | {r['mean']:.1f} | {r['sem']:.2f} | {r['suite_seeds']:.1f} |" for r in rows]
    emit("\n".join(md) + "\n\n" + provenance_markdown(meta), {"dataset": ds.name, "rows": rows, "meta": meta}, args.out)
    return 0

