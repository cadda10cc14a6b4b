"""Benchmark suite: quality (STS, classification, pair classification, clustering, retrieval, word similarity),
speed, ablation and plots for static models, their teachers and Model2Vec.

CLI: ``python -m benchmarks {quality,speed,ablation,plot} --help``. Library use::

    from benchmarks import data, tasks
    datasets = data.load_available(data.select(root), root)
    results = tasks.evaluate_all(encoder, datasets)   # encoder: anything with encode(list[str]) -> (n, d)
"""

from .data import REGISTRY, DatasetSpec, default_data_dir, load_available, select
from .tasks import TaskConfig, evaluate, evaluate_all, run_quality, summarize

__all__ = ["REGISTRY", "DatasetSpec", "TaskConfig", "default_data_dir", "evaluate", "evaluate_all",
           "load_available", "run_quality", "select", "summarize"]
