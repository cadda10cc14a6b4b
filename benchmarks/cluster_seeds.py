"""Is a clustering gap real or k-means seed noise? ``python -m benchmarks.cluster_seeds -m SPEC -m SPEC --seeds 20``.

The suite scores clustering as the V-measure of MiniBatchKMeans averaged over 5 seeds. This scores each model over
``--seeds`` seeds (42, 43, ...) on one clustering dataset and reports the mean, its standard error and the suite's
own 5-seed score, so two models' difference can be set against the spread.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def seed_scores(emb: np.ndarray, labels: np.ndarray, seeds: int, *, first_seed: int, batch_size: int) -> np.ndarray:
    from .metrics import clustering_v_measure

    return np.array([clustering_v_measure(emb, labels, batch_size=batch_size, seed=first_seed + s, runs=1)
                     for s in range(seeds)])


def main(argv: list[str] | None = None) -> int:
    from .tasks import TaskConfig

    p = argparse.ArgumentParser(prog="python -m benchmarks.cluster_seeds", description=__doc__.splitlines()[0])
    p.add_argument("--model", "-m", action="append", required=True, help="model SPEC, as for benchmarks quality")
    p.add_argument("--dataset", default="StackOverflow", help="clustering dataset name (default StackOverflow)")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    args = p.parse_args(argv)
    if args.seeds < 2:
        p.error("--seeds must be at least 2")
    command = ["python", "-m", "benchmarks.cluster_seeds", *(sys.argv[1:] if argv is None else argv)]

    from .data import load_available, resolve_data_dir, select
    from .encoders import load_encoder
    from .report import emit, provenance, provenance_markdown

    root = resolve_data_dir(args.data)
    datasets = load_available(select(root, tasks=["clustering"], names=[args.dataset]), root)
    if not datasets:
        raise SystemExit(f"no clustering dataset {args.dataset!r} under {root}")
    ds = datasets[0]
    cfg = TaskConfig()
    meta = provenance(command)
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


if __name__ == "__main__":
    sys.exit(main())
