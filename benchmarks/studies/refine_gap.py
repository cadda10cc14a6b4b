"""How far a refined model is from its teacher, per kind of text: ``python -m benchmarks refine-gap MODEL``.

(Until the benchmarks were grouped by job this was ``python -m benchmarks.refine_gap``, the command the committed
results record.)

The cosine between the static model's sentence vector and its training target (the teacher's embedding projected
as ``distill.refine`` projects it: principal components of the featurized corpus, mean kept unless the model was
refined with ``center_targets``), averaged over text sets: held-out corpus lines, concatenations of several of them,
and SciFact claims and abstracts. It tells a domain gap from a length (multi-sentence) gap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def text_sets(held_out: list[str], data: Path, n: int, seed: int = 0) -> dict[str, list[str]]:
    """The text sets: ``held_out`` corpus lines (never trained on) alone and joined, SciFact claims and abstracts."""
    rng = np.random.default_rng(seed)
    if len(held_out) < n:
        raise ValueError(f"only {len(held_out)} corpus lines are held out from training; need {n}")
    docs = [json.loads(x) for x in open(data / "retrieval" / "scifact" / "corpus.jsonl", encoding="utf-8")]
    claims = [json.loads(x)["text"] for x in open(data / "retrieval" / "scifact" / "queries.jsonl", encoding="utf-8")]
    return {
        "held-out corpus lines": [held_out[i] for i in rng.choice(len(held_out), n, replace=False)],
        "3 held-out lines joined": [" ".join(held_out[j] for j in rng.choice(len(held_out), 3)) for _ in range(n)],
        "8 held-out lines joined": [" ".join(held_out[j] for j in rng.choice(len(held_out), 8)) for _ in range(n)],
        "SciFact claims": claims[:n],
        "SciFact abstracts (title + text)": [(d["title"] + " " + d["text"]).strip() for d in docs[:n]],
        "SciFact abstracts, first 2 sentences": [" ".join(d["text"].split(". ")[:2]) for d in docs[:n]],
    }


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``refine-gap``."""
    p = subparsers.add_parser("refine-gap", help="a refined model's cosine to its teacher's targets, per kind of text",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="refined static model folder (its config names teacher, corpus and passages)")
    p.add_argument("--texts-per-set", type=int, default=300)
    p.add_argument("--corpus", default=None,
                   help="the corpus file the model was refined on (its config records only the file's name; "
                   "default: that name in the data folder's corpus_general/)")
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """The cosine per text set; print (and with ``--out`` write) the table."""
    from benchmarks.provenance import provenance, provenance_markdown
    from benchmarks.quality.data import resolve_data_dir
    from benchmarks.report import emit
    from distill.pca import pca_basis, project
    from distill.refine.corpus import read_corpus
    from distill.refine.featurize import default_cache_dir, featurize
    from distill.teacher import Teacher
    from static_model import StaticModel
    from static_model.pooling import l2_normalize

    model = StaticModel.from_pretrained(args.model)
    info = model.config.get("refine")
    if not info:
        raise SystemExit(f"{args.model} is not a refined model (no 'refine' entry in its config.json)")
    if args.corpus:
        corpus = Path(args.corpus)
    else:
        corpus = resolve_data_dir(args.data) / "corpus_general" / str(info.get("corpus"))
    if not corpus.is_file():
        raise SystemExit(f"{args.model} was refined on {info.get('corpus')!r}; no such corpus file at {corpus}: "
                         "pass --corpus PATH")
    teacher = Teacher(model.config["teacher"])
    n_train = int(info["passages"])
    trained = read_corpus(corpus, n_train, info.get("prefer_sources", ()))  # the passages refine used
    seen = set(trained)
    held_out = [t for t in read_corpus(corpus, None) if t not in seen]
    targets = featurize(teacher, trained, cache_dir=default_cache_dir(teacher),
                        show_progress_bar=False)
    mean, comps, _ = pca_basis(targets, model.dim)  # the basis refine projected its targets on
    keep_mean = not info.get("targets_centered", True)
    meta = provenance(args.command_line)
    rows = []
    for name, texts in text_sets(held_out, resolve_data_dir(args.data), args.texts_per_set).items():
        y = project(teacher.encode(texts, batch_size=32), mean, comps, keep_mean=keep_mean).astype(np.float64)
        s = model.encode(texts, normalize=False).astype(np.float64)
        cos = (l2_normalize(s) * l2_normalize(y)).sum(1)
        rows.append((name, float(cos.mean()), float(np.mean([len(t.split()) for t in texts]))))
    md = [f"## Refined model against its teacher, per kind of text: {args.model}", "",
          f"Teacher {teacher.name}; targets: the {n_train:,} passages refine took from {info['corpus']} "
          f"(sources first: {', '.join(info.get('prefer_sources') or []) or 'none'}), "
          f"{'centred' if info.get('targets_centered', True) else 'mean kept'}; held-out lines: the corpus's others.",
          "",
          f"| text set ({args.texts_per_set} each) | mean words | cosine to the teacher's target |", "|---|---:|---:|"]
    md += [f"| {name} | {w:.0f} | {c:.3f} |" for name, c, w in rows]
    emit("\n".join(md) + "\n\n" + provenance_markdown(meta), {"rows": [{"set": n, "cosine": c, "mean_words": w}
                                                                   for n, c, w in rows], "meta": meta}, args.out)
    return 0

