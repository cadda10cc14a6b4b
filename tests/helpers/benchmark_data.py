"""A tiny evaluation-data folder in the formats of shared/data/MANIFEST.md, and hand-made encoders for it: one that
solves every dataset exactly (``perfect_encode``) and one that is noise (``random_encode``)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


# Tiny datasets. Each text names its "meaning" so a hand-made perfect encoder can be written (see
# perfect_vector below): STS pairs are "sts-a <k>" / "sts-b <k>" with gold score k; classes are "cls <label> <i>".
STS_ROWS = [{"sentence1": f"sts-a {k}", "sentence2": f"sts-b {k}", "score": float(k), "genre": "x"} for k in range(6)]
CLS_TRAIN = [{"text": f"cls {lab} train {i}", "label": lab, "label_text": f"L{lab}"}
             for lab in range(3) for i in range(5)]
CLS_TEST = [{"text": f"cls {lab} test {i}", "label": lab, "label_text": f"L{lab}"}
            for lab in range(3) for i in range(3)]
PAIR_ROWS = [{"sentence1": f"pair {i}", "sentence2": f"pair {i} {'same' if i % 2 == 0 else 'other'}",
              "label": int(i % 2 == 0), "id1": str(i), "id2": str(i)} for i in range(8)]
CLU_ROWS = [{"text": f"clu {lab} {i}", "label": lab + 1} for lab in range(3) for i in range(6)]
CORPUS = [{"_id": f"d{i}", "title": f"doc {i}", "text": f"body {i}"} for i in range(5)]
QUERIES = [{"_id": f"q{i}", "text": f"query {i}"} for i in range(4)]
QRELS_TEST = [("q0", "d0", 1), ("q1", "d1", 1), ("q1", "d2", 1)]
QRELS_TRAIN = [("q3", "d3", 1)]
WORDS = [("w1", "w2", 3.0), ("w3", "w4", 1.0), ("w5", "w6", 2.0), ("w7", "w8", 0.5)]


def write_tiny_data(root: Path) -> Path:
    """A data folder in the manifest's formats with one tiny dataset per registry entry."""
    write_jsonl(root / "sts/stsbenchmark/test.jsonl", STS_ROWS)
    write_jsonl(root / "sts/stsbenchmark/train.jsonl", STS_ROWS[:2])
    write_jsonl(root / "sts/sickr/test.jsonl", STS_ROWS[::-1])
    for name in ("sst2", "trec", "emotion", "banking77"):
        write_jsonl(root / f"classification/{name}/train.jsonl", CLS_TRAIN)
        write_jsonl(root / f"classification/{name}/test.jsonl", CLS_TEST)
    write_jsonl(root / "pair_classification/mrpc/test.jsonl", PAIR_ROWS)
    write_jsonl(root / "clustering/stackoverflow_stc2/test.jsonl", CLU_ROWS)
    write_jsonl(root / "retrieval/scifact/corpus.jsonl", CORPUS)
    write_jsonl(root / "retrieval/scifact/queries.jsonl", QUERIES)
    (root / "retrieval/scifact/qrels").mkdir(parents=True, exist_ok=True)
    for split, rows in (("test", QRELS_TEST), ("train", QRELS_TRAIN)):
        (root / f"retrieval/scifact/qrels/{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    (root / "word_similarity").mkdir(parents=True, exist_ok=True)
    for name in ("EN-WS-353-ALL", "EN-SIMLEX-999"):
        (root / f"word_similarity/{name}.tsv").write_text(
            "word1\tword2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in WORDS))
    return root


DIM = 16


def unit_vector(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def angle_vector(c: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[1] = c, math.sqrt(max(0.0, 1 - c * c))
    return v


def noise_vector(text: str, scale: float) -> np.ndarray:
    seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    return scale * np.random.default_rng(seed).normal(size=DIM).astype(np.float32)


WORD_SCORES = {"w2": 3.0, "w4": 1.0, "w6": 2.0, "w8": 0.5}


def perfect_vector(text: str) -> np.ndarray:
    """Hand-made embeddings that solve every dataset of write_tiny_data exactly."""
    parts = text.split()
    if parts[0] == "sts-a":
        return unit_vector(0)
    if parts[0] == "sts-b":
        return angle_vector(0.1 + 0.15 * int(parts[1]))  # cosine increases with the gold score k
    if parts[0] == "cls":
        return 5 * unit_vector(2 + int(parts[1])) + noise_vector(text, 0.05)
    if parts[0] == "pair":
        return unit_vector(0) if len(parts) == 2 or parts[2] == "same" else unit_vector(1)
    if parts[0] == "clu":
        return 10 * unit_vector(6 + int(parts[1])) + noise_vector(text, 0.05)
    if parts[0] == "query":
        return unit_vector(10 + int(parts[1]))
    if parts[0] == "doc":
        i = int(parts[1])
        return 0.9 * unit_vector(11) + 0.1 * unit_vector(12) if i == 2 else unit_vector(10 + i)
    if re.fullmatch(r"w\d+", text):
        return unit_vector(0) if text in ("w1", "w3", "w5", "w7") else angle_vector(WORD_SCORES[text] / 4)
    raise AssertionError(text)


def perfect_encode(texts):
    return np.stack([perfect_vector(t) for t in texts])


def random_encode(texts):
    return np.stack([noise_vector(t, 1.0) for t in texts])


def hide_distribution(monkeypatch, name: str) -> None:
    """Make ``importlib.metadata`` report the distribution ``name`` as not installed (others as they are), so a
    package dataset read from it is unavailable whatever this environment has installed."""
    from importlib import metadata

    real = metadata.distribution

    def distribution(dist_name: str):
        if dist_name.lower() == name.lower():
            raise metadata.PackageNotFoundError(dist_name)
        return real(dist_name)

    monkeypatch.setattr(metadata, "distribution", distribution)
