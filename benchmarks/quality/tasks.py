"""Evaluate an encoder on loaded datasets (``benchmarks.quality.data``) with the metrics of
``benchmarks.quality.metrics``.

Protocol (scores ×100):

- STS: Spearman of cosine vs gold score (Pearson in the result's ``extra``).
- Classification: logistic regression (lbfgs, ``max_iter=1000``, seed 42) on the embeddings of at most
  ``train_cap`` training examples (a fixed-seed random sample), accuracy on the test split.
- Pair classification: average precision of the cosine with the paraphrase label.
- Clustering: MiniBatchKMeans (k = number of labels, batch 500, n_init="auto"), V-measure, mean of 5 runs
  (seeds 42..46).
- Retrieval: documents as ``title + " " + text``, cosine ranking, nDCG@10 over the queries with a positive
  judgement (how many others were left out: ``extra["queries_without_positive"]``, when any).
- Word similarity: each word encoded as a text, Spearman of cosine vs gold; coverage = share of pairs where
  both words have a non-zero vector.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import numpy as np

from . import metrics
from .cache import EncoderOutputError
from .data import ClassificationData, ClusteringData, Dataset, PairData, RetrievalData, STSData, WordSimData

if TYPE_CHECKING:
    from .encoders import CachedEncoder, Encoder


class TextEncoder(Protocol):
    """What the suite scores: anything with ``encode(texts) -> (n, dim) array`` (an ``Encoder``, a
    ``CachedEncoder``, a user's own object)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row a text."""
        ...


DEFAULT_TRAIN_CAP = 4_000


@dataclass
class TaskConfig:
    """The suite's protocol settings (the defaults are the published protocol)."""
    train_cap: int | None = DEFAULT_TRAIN_CAP
    max_iter: int = 1000
    seed: int = metrics.SEED
    kmeans_batch_size: int = 500
    kmeans_runs: int = 5
    ndcg_k: int = 10


@dataclass
class Result:
    """One model's score on one dataset, with its metric and item count."""
    task: str
    dataset: str
    score: float
    metric: str
    n: int
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict (``extra`` only when set)."""
        return {"task": self.task, "dataset": self.dataset, "score": self.score, "metric": self.metric,
                "n": self.n, "seconds": self.seconds, **({"extra": self.extra} if self.extra else {})}


def encode_unique(encoder: TextEncoder, texts: list[str], desc: str | None = None) -> np.ndarray:
    """Encode each distinct text once and scatter the rows back."""
    uniq: dict[str, int] = {}
    idx = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        idx[i] = uniq.setdefault(t, len(uniq))
    keys = list(uniq)
    try:
        emb = encoder.encode(keys, desc=desc) if desc is not None and _accepts_desc(encoder) else encoder.encode(keys)
    except TypeError:
        emb = encoder.encode(keys)
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(keys):
        raise EncoderOutputError(f"{_name(encoder)}: encoder returned shape {emb.shape} for {len(keys)} texts")
    bad = ~np.isfinite(emb).all(axis=1)
    if bad.any():  # l2_normalize makes such a row a zero vector: every metric would score it as a cosine of 0
        first = int(np.flatnonzero(bad)[0])
        raise EncoderOutputError(f"{_name(encoder)}: encoder returned non-finite values (NaN or infinite) for "
                                 f"{int(bad.sum())} of {len(keys)} texts, the first {keys[first]!r:.80}")
    return emb[idx]


def _name(encoder: TextEncoder) -> str:
    return str(getattr(encoder, "name", type(encoder).__name__))


def _accepts_desc(encoder: TextEncoder) -> TypeGuard[CachedEncoder]:
    from .encoders import CachedEncoder

    return isinstance(encoder, CachedEncoder)


def texts_of(ds: Dataset) -> list[str]:
    """Every text a dataset needs encoded (for cache warm-up and counting)."""
    if isinstance(ds, (STSData, PairData)):
        return list(ds.sentences1) + list(ds.sentences2)
    if isinstance(ds, ClassificationData):
        return list(ds.train_texts) + list(ds.test_texts)
    if isinstance(ds, ClusteringData):
        return list(ds.texts)
    if isinstance(ds, RetrievalData):
        return list(ds.query_texts) + list(ds.corpus_texts)
    if isinstance(ds, WordSimData):
        return list(ds.words1) + list(ds.words2)
    raise TypeError(type(ds))


def evaluate(encoder: TextEncoder, ds: Dataset, config: TaskConfig | None = None) -> Result:
    """``encoder``'s score on ``ds`` with its task's metric (the protocol in the module docstring)."""
    cfg = config or TaskConfig()
    t0 = time.perf_counter()
    desc = f"{getattr(encoder, 'name', 'model')}:{ds.name}"
    if isinstance(ds, STSData):
        n = len(ds.scores)
        emb = encode_unique(encoder, list(ds.sentences1) + list(ds.sentences2), desc)
        res = Result("sts", ds.name, metrics.sts_spearman(emb[:n], emb[n:], ds.scores), "spearman", n,
                     extra={"pearson": round(metrics.sts_pearson(emb[:n], emb[n:], ds.scores), 4)})
    elif isinstance(ds, PairData):
        n = len(ds.labels)
        emb = encode_unique(encoder, list(ds.sentences1) + list(ds.sentences2), desc)
        res = Result("pair_classification", ds.name, metrics.pair_average_precision(emb[:n], emb[n:], ds.labels),
                     "ap_cosine", n)
    elif isinstance(ds, ClassificationData):
        sel = metrics.subsample_train(len(ds.train_texts), ds.train_labels, cfg.train_cap, cfg.seed)
        train_texts = [ds.train_texts[i] for i in sel]
        emb = encode_unique(encoder, train_texts + list(ds.test_texts), desc)
        ntr = len(train_texts)
        acc = metrics.classification_accuracy(emb[:ntr], ds.train_labels[sel], emb[ntr:], ds.test_labels,
                                              max_iter=cfg.max_iter, seed=cfg.seed)
        res = Result("classification", ds.name, acc, "accuracy", len(ds.test_labels), extra={"n_train": ntr})
    elif isinstance(ds, ClusteringData):
        emb = encode_unique(encoder, list(ds.texts), desc)
        res = Result("clustering", ds.name,
                     metrics.clustering_v_measure(emb, ds.labels, batch_size=cfg.kmeans_batch_size, seed=cfg.seed,
                                                  runs=cfg.kmeans_runs),
                     "v_measure", len(ds.labels), extra={"k": int(len(np.unique(ds.labels)))})
    elif isinstance(ds, RetrievalData):
        nq = len(ds.query_texts)
        emb = encode_unique(encoder, list(ds.query_texts) + list(ds.corpus_texts), desc)
        res = Result("retrieval", ds.name,
                     metrics.ndcg_at_k(emb[:nq], emb[nq:], ds.query_ids, ds.corpus_ids, ds.qrels, cfg.ndcg_k),
                     f"ndcg@{cfg.ndcg_k}", nq, extra={"n_docs": len(ds.corpus_ids)})
        unscored = metrics.count_unscored_queries(ds.query_ids, ds.qrels)
        if unscored:  # left out of the mean, so the count says so (absent when every query is scored)
            res.extra["queries_without_positive"] = unscored
    elif isinstance(ds, WordSimData):
        n = len(ds.scores)
        emb = encode_unique(encoder, list(ds.words1) + list(ds.words2), desc)
        nz = np.linalg.norm(emb, axis=1) > 0
        coverage = float(np.mean(nz[:n] & nz[n:]))
        res = Result("word_similarity", ds.name, metrics.sts_spearman(emb[:n], emb[n:], ds.scores), "spearman", n,
                     extra={"coverage": round(100.0 * coverage, 2)})
    else:
        raise TypeError(f"unsupported dataset type {type(ds).__name__}")
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def evaluate_all(encoder: TextEncoder, datasets: list[Dataset], config: TaskConfig | None = None, *,
                 progress: bool = True) -> list[Result]:
    """``evaluate`` on every dataset, in order."""
    out = []
    it = datasets
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(datasets, desc=f"{getattr(encoder, 'name', 'model')}", unit="dataset")
        it = bar
    for ds in it:
        if bar is not None:
            bar.set_postfix_str(ds.name)
        out.append(evaluate(encoder, ds, config))
    return out


def summarize(results: list[Result]) -> dict:
    """Task-type averages and the overall average (mean of task-type averages)."""
    by_task: dict[str, list[float]] = {}
    for r in results:
        by_task.setdefault(r.task, []).append(r.score)
    task_avg = {t: float(np.mean(v)) for t, v in by_task.items()}
    return {"task_averages": task_avg,
            "average": float(np.mean(list(task_avg.values()))) if task_avg else float("nan"),
            "mean_of_datasets": float(np.mean([r.score for r in results])) if results else float("nan")}


def run_quality(model_specs: Sequence[str | Encoder], datasets: list[Dataset], *, config: TaskConfig | None = None,
                cache_dir: str | os.PathLike | None = None, cache_mode: str = "auto", reference: str | None = None,
                progress: bool = True, device: str | None = None, argv: list[str] | None = None) -> dict:
    """Evaluate each model (a SPEC string or an encoder object) on the loaded datasets; return the report dict.

    ``cache_mode``: "auto" caches slow encoders (teachers) only, "all" caches every encoder, "none" disables it.
    """
    import gc
    from dataclasses import asdict

    from benchmarks.provenance import provenance

    from .encoders import CachedEncoder, check_spec, load_encoder

    cfg = config or TaskConfig()
    for spec in model_specs:  # a typo in the last spec must not cost the first model's whole run
        if isinstance(spec, str):
            check_spec(spec)
    models: list[dict[str, Any]] = []
    for spec in model_specs:
        enc = load_encoder(spec, device=device) if isinstance(spec, str) else spec
        enabled = {"auto": None, "all": True, "none": False}[cache_mode]
        cached = CachedEncoder(enc, cache_dir, enabled=enabled, progress=progress)
        results = evaluate_all(cached, datasets, cfg, progress=progress)
        info = enc.info() if hasattr(enc, "info") else {"name": getattr(enc, "name", str(spec))}
        models.append({"name": info["name"], "spec": spec if isinstance(spec, str) else info["name"], "info": info,
                       "results": [r.to_dict() for r in results], "summary": summarize(results)})
        del cached, enc
        gc.collect()
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):  # make column names unique
        seen: dict[str, int] = {}
        for m in models:
            k = seen[m["name"]] = seen.get(m["name"], 0) + 1
            if k > 1:
                m["name"] = f"{m['name']} ({k})"
    ref = reference if reference in [m["name"] for m in models] else (models[0]["name"] if models else None)
    return {"models": models, "reference": ref, "config": asdict(cfg), "meta": provenance(argv)}
