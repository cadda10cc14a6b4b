"""How close is a static model to its teacher? Measured on the same texts in the same run.

- ``spearman``: Spearman correlation between the two models' similarities: over all pairs of texts
  (``texts``), or over the given sentence pairs (``pairs``);
- ``neighbour_overlap@k``: mean overlap of each text's top-k neighbours (self excluded) in both models;
- ``speed_ratio``: static texts/s divided by teacher texts/s, both timed here on the same texts;
- with gold pair scores: each model's Spearman correlation with the gold scores.

Command line: ``python -m distill compare STATIC [TEACHER] (--texts FILE | --pairs FILE)``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.concatenate(([True], xs[1:] != xs[:-1], [True]))
    idx = np.flatnonzero(boundaries)
    avg = (idx[:-1] + idx[1:] - 1) / 2.0 + 1.0
    ranks = np.empty_like(x)
    ranks[order] = np.repeat(avg, np.diff(idx))
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean |top-k(a) & top-k(b)| / k over rows; cosine neighbours, self excluded."""
    n = a.shape[0]
    if n < 2:
        return float("nan")
    k = min(k, n - 1)
    total = 0.0
    ua, ub = _unit(a), _unit(b)
    for start in range(0, n, 1024):
        sa = ua[start : start + 1024] @ ua.T
        sb = ub[start : start + 1024] @ ub.T
        rows = np.arange(sa.shape[0])
        sa[rows, rows + start] = -np.inf
        sb[rows, rows + start] = -np.inf
        ta = np.argpartition(-sa, k - 1, axis=1)[:, :k]
        tb = np.argpartition(-sb, k - 1, axis=1)[:, :k]
        for x, y in zip(ta, tb):
            total += len(np.intersect1d(x, y, assume_unique=True))
    return total / (n * k)


def _timed_encode(model, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    model.encode(texts[: min(len(texts), 8)], batch_size=batch_size)  # warm-up (lazy loads, jit)
    start = time.perf_counter()
    emb = model.encode(texts, batch_size=batch_size)
    return np.asarray(emb, dtype=np.float32), time.perf_counter() - start


def _load_models(static_model, teacher, device):
    if isinstance(static_model, (str, os.PathLike)):
        from static_model import StaticModel

        static_model = StaticModel.from_pretrained(static_model)
    if teacher is None:
        teacher = (getattr(static_model, "config", None) or {}).get("teacher")
        if not teacher:
            raise ValueError("No teacher given and the static model's config names none.")
    if isinstance(teacher, (str, os.PathLike)):
        from distill.teacher import Teacher

        teacher = Teacher(teacher, device=device)
    return static_model, teacher


def compare(
    static_model,
    teacher=None,
    texts: Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    *,
    scores: Sequence[float] | None = None,
    k: int = 10,
    batch_size: int = 256,
    device: str | None = None,
) -> dict:
    """Compare a static model with its teacher on ``texts`` or sentence ``pairs``.

    :param static_model: a ``StaticModel`` or its folder (anything with ``encode``).
    :param teacher: a ``Teacher``, a teacher name/folder, or ``None`` for the one in the model config.
    :param texts: texts: Spearman over all their pairwise similarities (n at most a few thousand).
    :param pairs: sentence pairs: Spearman over the pair similarities; neighbours over the unique
        sentences.
    :param scores: gold scores of ``pairs`` (optional): each model's Spearman with them.
    :returns: a dict of the measurements (see the module docstring).
    """
    if (texts is None) == (pairs is None):
        raise ValueError("Pass exactly one of texts= or pairs=.")
    static_model, teacher = _load_models(static_model, teacher, device)
    if pairs is not None:
        pairs = [(str(a), str(b)) for a, b in pairs]
        if not pairs:
            raise ValueError("pairs is empty.")
        uniq = list(dict.fromkeys(s for p in pairs for s in p))
    else:
        uniq = list(dict.fromkeys(str(t) for t in texts))
        if len(uniq) < 2:
            raise ValueError("Need at least two distinct texts.")
    e_static, s_time = _timed_encode(static_model, uniq, batch_size)
    e_teacher, t_time = _timed_encode(teacher, uniq, batch_size)
    us, ut = _unit(e_static), _unit(e_teacher)
    result: dict = {"n_texts": len(uniq)}
    if pairs is not None:
        pos = {s: i for i, s in enumerate(uniq)}
        ia = np.asarray([pos[a] for a, _ in pairs])
        ib = np.asarray([pos[b] for _, b in pairs])
        sim_s = (us[ia] * us[ib]).sum(1)
        sim_t = (ut[ia] * ut[ib]).sum(1)
        result["n_pairs"] = len(pairs)
        if scores is not None:
            gold = np.asarray(scores, dtype=np.float64)
            if gold.shape[0] != len(pairs):
                raise ValueError("scores must have one value per pair.")
            result["spearman_static_vs_gold"] = spearman(sim_s, gold)
            result["spearman_teacher_vs_gold"] = spearman(sim_t, gold)
    else:
        iu = np.triu_indices(len(uniq), k=1)
        sim_s = (us @ us.T)[iu]
        sim_t = (ut @ ut.T)[iu]
        result["n_pairs"] = int(iu[0].size)
    result["spearman"] = spearman(sim_s, sim_t)
    result[f"neighbour_overlap@{k}"] = neighbour_overlap(e_static, e_teacher, k)
    result["static_seconds"] = s_time
    result["teacher_seconds"] = t_time
    result["static_texts_per_s"] = len(uniq) / max(s_time, 1e-9)
    result["teacher_texts_per_s"] = len(uniq) / max(t_time, 1e-9)
    result["speed_ratio"] = t_time / max(s_time, 1e-9)
    result["teacher_device"] = getattr(teacher, "device", "cpu")
    return result


# --------------------------------------------------------------------------- CLI


def read_texts(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Texts from a .txt (one a line) or .jsonl (key ``text``, or ``sentence1``/``sentence2``) file."""
    path = Path(path)
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if path.suffix == ".jsonl":
                row = json.loads(line)
                if "text" in row:
                    out.append(str(row["text"]))
                else:
                    out.extend(str(row[key]) for key in ("sentence1", "sentence2") if key in row)
            else:
                out.append(line)
            if limit is not None and len(out) >= limit:
                break
    return out[:limit] if limit is not None else out


def read_pairs(path: str | os.PathLike, limit: int | None = None) -> tuple[list[tuple[str, str]], list[float] | None]:
    """Pairs from a .jsonl (``sentence1``, ``sentence2``, optional ``score``) or a 2/3-column TSV."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    scores: list[float] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                row = json.loads(line)
                pairs.append((str(row["sentence1"]), str(row["sentence2"])))
                if "score" in row:
                    scores.append(float(row["score"]))
            else:
                cols = line.split("\t")
                if len(cols) < 2:
                    raise ValueError(f"{path}: expected 'sentence1<TAB>sentence2[<TAB>score]' lines.")
                pairs.append((cols[0], cols[1]))
                if len(cols) > 2:
                    scores.append(float(cols[2]))
            if limit is not None and len(pairs) >= limit:
                break
    return pairs, (scores if len(scores) == len(pairs) else None)


def build_parser(prog: str = "python -m distill compare") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Compare a static model with its teacher.")
    p.add_argument("static_model", help="folder of the static model")
    p.add_argument("teacher", nargs="?", default=None, help="teacher (default: the one in the model's config)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--texts", help=".txt (one text a line) or .jsonl (text / sentence1, sentence2)")
    src.add_argument("--pairs", help=".jsonl with sentence1, sentence2[, score] or a TSV")
    p.add_argument("--limit", type=int, default=2000, help="at most this many texts / pairs (default 2000)")
    p.add_argument("--k", type=int, default=10, help="neighbours for the overlap (default 10)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m distill compare") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.texts:
        texts, pairs, scores = read_texts(args.texts, args.limit), None, None
    else:
        texts, (pairs, scores) = None, read_pairs(args.pairs, args.limit)
    res = compare(
        args.static_model, args.teacher, texts=texts, pairs=pairs, scores=scores,
        k=args.k, batch_size=args.batch_size, device=args.device,
    )
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for key, val in res.items():
            print(f"{key:>28}: {val:.4f}" if isinstance(val, float) else f"{key:>28}: {val}")
    return 0

