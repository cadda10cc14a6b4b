"""Is a small gap between two models real? ``python -m benchmarks paired-bootstrap -m SPEC_A -m SPEC_B``.

(Until the benchmarks were grouped by job this was ``python -m benchmarks.paired_bootstrap``, the command the
committed results record.)

For the pair-scored task types (STS, pair classification, word similarity) each model's cosine per item is computed
once; then the items are resampled with replacement ``--resamples`` times, the same resample for both models (each
dataset from its own stream of ``--seed`` and its name), and the task metric is recomputed for each. Reported per
dataset and per task type (the mean over its datasets, as the suite averages): A's and B's score, the difference
A - B, its 95% percentile interval and the share of resamples in which A scores at least B. A difference whose
interval straddles 0 is not one the test set can tell apart.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.report import emit

if TYPE_CHECKING:
    from benchmarks.quality.data import Dataset
    from benchmarks.quality.tasks import TextEncoder

PAIR_TASKS = ("sts", "pair_classification", "word_similarity")


def pair_items(ds: Dataset) -> tuple[list[str], list[str], np.ndarray]:
    """(left texts, right texts, gold) of a pair-scored dataset."""
    from benchmarks.quality.data import PairData, STSData, WordSimData

    if isinstance(ds, (STSData, PairData)):
        left, right = list(ds.sentences1), list(ds.sentences2)
        gold = ds.labels if isinstance(ds, PairData) else ds.scores
    elif isinstance(ds, WordSimData):
        left, right, gold = list(ds.words1), list(ds.words2), ds.scores
    else:
        raise TypeError(f"{type(ds).__name__} is not scored per pair; choose from {PAIR_TASKS}")
    return left, right, np.asarray(gold)


def item_cosines(encoder: TextEncoder, left: list[str], right: list[str]) -> np.ndarray:
    """The cosine of each item's two texts, as the suite computes it."""
    from benchmarks.quality.metrics import paired_cosine
    from benchmarks.quality.tasks import encode_unique

    emb = encode_unique(encoder, left + right)
    return paired_cosine(emb[: len(left)], emb[len(left):])


def metric(task: str, cos: np.ndarray, gold: np.ndarray) -> float:
    """The suite's metric (×100) from per-item cosines: Spearman, or average precision for pair classification."""
    from benchmarks.quality.metrics import cosine_average_precision
    from distill.correlation import spearman

    return cosine_average_precision(cos, gold) if task == "pair_classification" else 100.0 * spearman(cos, gold)


def bootstrap_differences(task: str, cos_a: np.ndarray, cos_b: np.ndarray, gold: np.ndarray, *, resamples: int,
                          seed: int) -> np.ndarray:
    """A's metric minus B's on ``resamples`` shared resamples of the items."""
    if cos_a.shape != cos_b.shape or cos_a.shape != gold.shape:
        raise ValueError(f"cosines {cos_a.shape}, {cos_b.shape} and gold {gold.shape} must have one shape")
    return resampled_differences(lambda idx: metric(task, cos_a[idx], gold[idx]),
                                 lambda idx: metric(task, cos_b[idx], gold[idx]), gold.size,
                                 resamples=resamples, seed=seed)


Draw = Callable[[np.random.Generator], np.ndarray]  # one bootstrap resample: item indices, with repeats


def resampled_differences(score_a: Callable[[np.ndarray], float], score_b: Callable[[np.ndarray], float], n: int, *,
                          resamples: int, seed: int, draw: Draw | None = None) -> np.ndarray:
    """``score_a(idx) - score_b(idx)`` on ``resamples`` shared resamples ``idx``: of the ``n`` items with replacement,
    or what ``draw`` returns (``text_resampler``: the items of resampled texts)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, n, n) if draw is None else draw(rng)
        out[r] = score_a(idx) - score_b(idx)
    return out


def all_pairs_design(left: list[str], right: list[str]) -> np.ndarray | None:
    """The ``(pairs, 2)`` text indices when the items are every pair of one set of texts (LP50: all 1,225 pairs of
    50 documents), else None.

    There the independent units are the texts, not the pairs (each document is in 49 pairs), so resampling pairs
    would give intervals far too narrow; ``text_resampler`` resamples the texts instead."""
    texts = sorted(set(left) | set(right))
    n = len(texts)
    if n < 3 or len(left) != n * (n - 1) // 2:
        return None
    where = {t: i for i, t in enumerate(texts)}
    pairs = np.array([[where[a], where[b]] for a, b in zip(left, right)], dtype=np.int64)
    lo, hi = pairs.min(axis=1), pairs.max(axis=1)
    if np.any(lo == hi) or len(np.unique(lo * n + hi)) != len(pairs):
        return None
    return pairs


def text_resampler(pairs: np.ndarray) -> Draw:
    """Bootstrap draws for an all-pairs design: ``n`` texts drawn with replacement; every pair of two drawn texts is
    kept as often as both were drawn (``count_i * count_j`` times; a text paired with itself has no item)."""
    n_texts = int(pairs.max()) + 1
    items = np.arange(len(pairs))

    def draw(rng: np.random.Generator) -> np.ndarray:
        counts = np.bincount(rng.integers(0, n_texts, n_texts), minlength=n_texts)
        return np.repeat(items, counts[pairs[:, 0]] * counts[pairs[:, 1]])

    return draw


def dataset_seed(seed: int, name: str) -> int:
    """The seed of one dataset's resamples: a SeedSequence of ``seed`` and the first 8 bytes of the BLAKE2b digest
    of the UTF-8 ``name`` (never Python's ``hash()``, which is salted per process), so each dataset draws its own
    stream, the same in every run and whatever the order or number of the other datasets."""
    name_key = int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")
    return int(np.random.SeedSequence([seed, name_key]).generate_state(1, dtype=np.uint64)[0])


def summarize(a: float, b: float, diffs: np.ndarray) -> dict:
    """A, B, A - B, the 95% percentile interval of the resampled differences and the share with A >= B."""
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"a": a, "b": b, "diff": a - b, "ci95": [float(lo), float(hi)],
            "share_a_at_least_b": float(np.mean(diffs >= 0))}


def compare(enc_a: TextEncoder, enc_b: TextEncoder, datasets: list[Dataset], *, resamples: int = 2000,
            seed: int = 42) -> dict:
    """Per-dataset and per-task-type bootstrap summaries of A - B.

    Each dataset is resampled from its own stream, ``dataset_seed(seed, dataset name)``: datasets of one size used
    to share ``seed`` and so drew the very same item indices, which made their intervals move together and the task
    type's interval (of the mean of the datasets' differences) wider than independent resamples give."""
    per_dataset: dict[str, dict] = {}
    by_task: dict[str, list[tuple[float, float, np.ndarray]]] = {}
    for ds in datasets:
        left, right, gold = pair_items(ds)
        ca, cb = item_cosines(enc_a, left, right), item_cosines(enc_b, left, right)
        a, b = metric(ds.task, ca, gold), metric(ds.task, cb, gold)
        diffs = bootstrap_differences(ds.task, ca, cb, gold, resamples=resamples,
                                      seed=dataset_seed(seed, ds.name))
        per_dataset[ds.name] = {"task": ds.task, "n": int(gold.size), **summarize(a, b, diffs)}
        by_task.setdefault(ds.task, []).append((a, b, diffs))
    per_task = {}
    for task, rows in by_task.items():  # datasets resampled independently; the type's score is their mean
        a = float(np.mean([r[0] for r in rows]))
        b = float(np.mean([r[1] for r in rows]))
        per_task[task] = summarize(a, b, np.mean([r[2] for r in rows], axis=0))
    return {"datasets": per_dataset, "task_types": per_task}


def markdown(name_a: str, name_b: str, result: dict, resamples: int) -> str:
    """The per-dataset and per-task-type table of ``compare``'s result."""
    head = (f"| | n | {name_a} (A) | {name_b} (B) | A - B | 95% interval | share of resamples A >= B |\n"
            "|---|---:|---:|---:|---:|---:|---:|")
    rows = [f"| {k} ({v['task']}) | {v['n']} | {v['a']:.2f} | {v['b']:.2f} | {v['diff']:+.2f} | "
            f"[{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}] | {100 * v['share_a_at_least_b']:.0f}% |"
            for k, v in result["datasets"].items()]
    rows += [f"| **{k} avg** | | {v['a']:.2f} | {v['b']:.2f} | {v['diff']:+.2f} | "
             f"[{v['ci95'][0]:+.2f}, {v['ci95'][1]:+.2f}] | {100 * v['share_a_at_least_b']:.0f}% |"
             for k, v in result["task_types"].items()]
    return (f"## Paired bootstrap: {name_a} against {name_b} ({resamples} resamples of the test items)\n\n"
            + head + "\n" + "\n".join(rows) + "\n")


def _names(value: str) -> list[str]:
    """One ``--datasets`` argument: a name, or a comma list of names (``quality``'s spelling)."""
    return [name.strip() for name in value.split(",")]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``paired-bootstrap``."""
    p = subparsers.add_parser("paired-bootstrap", help="is a small gap between two models real? (pair-scored tasks)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", "-m", action="append", required=True, help="model SPEC, as for benchmarks quality (two)")
    p.add_argument("--tasks", nargs="+", default=list(PAIR_TASKS), choices=PAIR_TASKS)
    p.add_argument("--datasets", nargs="+", default=None, type=_names,
                   help="dataset names, space- or comma-separated as in quality (default: every one of --tasks)")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def check_pair_options(args: argparse.Namespace) -> None:
    """The options every A-against-B study shares: exactly two ``-m`` models, at least one resample and a ``--seed``
    of 0 or more (a negative one was a traceback from the resampler after both models had run)."""
    from distill.cli_checks import UsageError

    if len(args.model) != 2:
        raise UsageError(f"give exactly two models (-m A -m B), got {len(args.model)}")
    if args.resamples < 1:
        raise UsageError("--resamples must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {args.seed}")


def run(args: argparse.Namespace) -> int:
    """Bootstrap A - B on every selected dataset; print (and with ``--out`` write) the table."""
    from benchmarks.quality.data import load_available, resolve_data_dir, select
    from benchmarks.quality.encoders import load_encoder
    from distill.cli_checks import UsageError

    check_pair_options(args)
    root = resolve_data_dir(args.data)
    if args.datasets is not None:  # each argument a name or a comma list of them
        args.datasets = [name for names in args.datasets for name in names]
    specs = select(root, tasks=args.tasks, names=args.datasets)
    if not specs and args.datasets:  # every name is known (select checked), and none is of these task types
        raise UsageError(f"--tasks {' '.join(args.tasks)} and --datasets {' '.join(args.datasets)}: no named dataset "
                         "is of these task types")
    datasets = load_available(specs, root)
    if not datasets:
        raise UsageError(f"no {'/'.join(args.tasks)} dataset under {root}")
    enc_a, enc_b = (load_encoder(s) for s in args.model)
    meta = provenance(args.command_line)
    result = compare(enc_a, enc_b, datasets, resamples=args.resamples, seed=args.seed)
    md = markdown(enc_a.name, enc_b.name, result, args.resamples)
    emit(md + "\n" + provenance_markdown(meta),
         {"a": enc_a.name, "b": enc_b.name, "resamples": args.resamples, "seed": args.seed, **result, "meta": meta},
         args.out)
    return 0
