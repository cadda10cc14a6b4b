"""``compare``: encode the same texts with a static model and its teacher, time both, and measure how closely the
static model reproduces the teacher's similarities (the measures: the ``distill.comparison`` docstring)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from distill.comparison.metrics import cosine_range, neighbour_overlap, pair_cosines
from distill.comparison.models import BatchEncoder, load_models
from distill.comparison.validation import check_all_pairs_fit, check_pairs, check_scores, check_text, check_vectors
from distill.correlation import spearman
from static_model.pooling import l2_normalize

# A model is timed as the best of up to TIMING_RUNS runs, repeated while they took under TIMING_BUDGET_S in all, and
# at least twice when its first run took under SHORT_RUN_S: a static model's first call on a fresh install compiles
# the pooling kernel of large batches, which takes longer than the budget on a loaded machine (seen: 4,113 and 1,378
# texts/s reported for a model that runs 87,000/s), while the teacher's one run already takes seconds.
TIMING_RUNS = 5
TIMING_BUDGET_S = 1.0
SHORT_RUN_S = 10.0


def _timed_encode(model: BatchEncoder, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    """``model``'s vectors of ``texts`` and the seconds of its fastest run (see ``TIMING_RUNS``)."""
    model.encode(texts[: min(len(texts), 8)], batch_size=batch_size)  # warm-up (lazy loads, jit)
    times: list[float] = []
    for _ in range(TIMING_RUNS):
        start = time.perf_counter()
        emb = model.encode(texts, batch_size=batch_size)
        times.append(time.perf_counter() - start)
        if sum(times) >= TIMING_BUDGET_S and (len(times) > 1 or times[0] >= SHORT_RUN_S):
            break
    return np.asarray(emb, dtype=np.float32), min(times)


def _window_difference(static_model: object, teacher: object, texts: list[str]) -> dict:
    """How many of ``texts`` are longer than the teacher reads but within what the static model reads (then the two
    models are compared on different content): ``texts_past_teacher_window`` with both limits in tokens, counted
    in the static model's tokens (unknown ones dropped: a lower bound); nothing for a static model other than this
    package's ``StaticModel`` (Model2Vec's, sentence-transformers' tokenize otherwise), a teacher that does not say
    its window, or a static model that reads no more than the teacher."""
    from static_model import StaticModel

    window = getattr(teacher, "student_max_length", None)
    if not isinstance(static_model, StaticModel) or not isinstance(window, int):  # other encoders tokenize otherwise
        return {}
    reads = static_model.max_length
    if reads is not None and reads <= window:
        return {}
    longer = sum(len(ids) > window for ids in static_model.tokenize(texts, max_length=window + 1))
    return {"texts_past_teacher_window": int(longer), "teacher_window_tokens": window,
            "static_max_length": reads}


def compare(
    static_model: BatchEncoder | str | os.PathLike,
    teacher: BatchEncoder | str | os.PathLike | None = None,
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
    :param teacher: a ``Teacher``, a teacher name/folder, or ``None`` for the one in the model config (at the
        revision it records, ``teacher_revision``: the version the model was distilled from).
    :param texts: texts: Spearman over all their pairwise similarities (n at most a few thousand).
    :param pairs: sentence pairs: Spearman over the pair similarities; neighbours over the unique
        sentences.
    :param scores: gold scores of ``pairs`` (optional): each model's Spearman with them.
    :param device: torch device of a teacher loaded here by name or folder; with a teacher object, the device it
        is on (anything else is a ``ValueError``: the object is not moved).
    :returns: a dict of the measurements (see the ``distill.comparison`` docstring).
    """
    if (texts is None) == (pairs is None):
        raise ValueError("Pass exactly one of texts= or pairs=.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if scores is not None and pairs is None:  # once ignored without a word
        raise ValueError("scores= are the gold scores of pairs=; with texts= there are no pairs to score.")
    if pairs is not None:  # the input is checked before any model loads
        pairs = check_pairs(pairs)
        if not pairs:
            raise ValueError("pairs is empty.")
        uniq = list(dict.fromkeys(s for p in pairs for s in p))
        if scores is not None:
            scores = check_scores(scores)
            if len(scores) != len(pairs):
                raise ValueError(f"scores must have one value per pair ({len(scores)} scores, {len(pairs)} pairs).")
        if len(pairs) < 2:  # once reported as a Spearman correlation of 0.0
            raise ValueError("Need at least two pairs, got 1: a Spearman correlation ranks the pairs, and a single "
                             "pair has no ranking.")
        if scores is not None:
            if len(set(scores)) < 2:  # once reported as a correlation of 0.0 with the gold scores
                raise ValueError(f"Every gold score is {scores[0]!r}: a constant has no ranking to correlate with; "
                                 "pass varied scores, or none.")
    else:
        assert texts is not None  # exactly one of texts and pairs (checked above)
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of str, not a single str (its characters would be compared).")
        uniq = list(dict.fromkeys(check_text(t, f"texts[{i}]") for i, t in enumerate(texts)))
        if len(uniq) < 2:
            raise ValueError(f"Need at least two distinct texts, got {len(uniq)} (three for a Spearman correlation: "
                             "two texts make a single pair, which has no ranking).")
        if len(uniq) == 2:  # once reported as a Spearman correlation of 0.0
            raise ValueError("Need at least three distinct texts, got 2: two texts make a single pair, and a "
                             "Spearman correlation needs at least two pairs to rank.")
        check_all_pairs_fit(len(uniq))
    static_model, teacher = load_models(static_model, teacher, device)
    e_static, s_time = _timed_encode(static_model, uniq, batch_size)
    e_teacher, t_time = _timed_encode(teacher, uniq, batch_size)
    check_vectors(e_static, uniq, "static model")
    check_vectors(e_teacher, uniq, "teacher")
    us, ut = l2_normalize(np.asarray(e_static, dtype=np.float32)), l2_normalize(np.asarray(e_teacher, dtype=np.float32))
    result: dict = {"n_texts": len(uniq)}
    not_measured: dict[str, str] = {}  # a number that cannot be measured on this input: None, and why
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
            for key, sims, who in (("spearman_static_vs_gold", sim_s, "static model"),
                                   ("spearman_teacher_vs_gold", sim_t, "teacher")):
                flat = _constant(sims, who, "every given pair", us if who == "static model" else ut)
                result[key] = None if flat else spearman(sims, gold)
                if flat:
                    not_measured[key] = flat
    else:
        sim_s, sim_t = pair_cosines(us), pair_cosines(ut)
        result["n_pairs"] = int(sim_s.size)
    what = "every given pair" if pairs is not None else "every pair of texts"
    flat = _constant(sim_s, "static model", what, us) or _constant(sim_t, "teacher", what, ut)
    result["spearman"] = None if flat else spearman(sim_s, sim_t)
    if flat:
        not_measured["spearman"] = flat
    k_used = min(k, len(uniq) - 1)  # neighbour_overlaps caps k at the other texts there are: the key says which k
    key = f"neighbour_overlap@{k_used}"
    flat = "" if len(uniq) < 3 else (  # two texts: each one's neighbour is the other (the chance overlap says so)
        _constant(cosine_range(us), "static model", "every two texts", us)
        or _constant(cosine_range(ut), "teacher", "every two texts", ut))
    result[key] = None if flat else neighbour_overlap(e_static, e_teacher, k_used)
    if flat:
        not_measured[key] = flat + " (no neighbours to rank)"
    result["neighbour_overlap_chance"] = k_used / (len(uniq) - 1)  # random neighbours' expected overlap
    result.update(_window_difference(static_model, teacher, uniq))
    result["static_zero_vectors"] = int(np.count_nonzero(~us.any(axis=1)))
    result["teacher_zero_vectors"] = int(np.count_nonzero(~ut.any(axis=1)))
    result["static_seconds"] = s_time
    result["teacher_seconds"] = t_time
    result["static_texts_per_s"] = len(uniq) / max(s_time, 1e-9)
    result["teacher_texts_per_s"] = len(uniq) / max(t_time, 1e-9)
    result["speed_ratio"] = t_time / max(s_time, 1e-9)
    result["teacher_device"] = getattr(teacher, "device", "cpu")
    result["teacher"] = _public_name(teacher)  # the teacher compared with, and the one the model's config names
    config = getattr(static_model, "config", None)
    recorded = config.get("teacher") if isinstance(config, dict) else None
    result["model_config_teacher"] = recorded if isinstance(recorded, str) else None
    if not_measured:
        result["not_measured"] = not_measured
    return result


def _public_name(teacher: object) -> str | None:
    """The public name of a ``Teacher`` (what a distilled model's config records); ``None`` for other encoders."""
    try:
        name = getattr(teacher, "public_name", None)
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) else None


FLAT_TOLERANCE = 1e-6  # cosines that differ by no more than this are one value (matrix products differ in the last bit)


def _constant(sims: np.ndarray, who: str, what: str, unit: np.ndarray) -> str:
    """Why ``sims`` (a model's cosines of ``what``) rank nothing, or ``""`` when they vary: a correlation or a
    neighbour list over one value is the tie rule, not the model (it was reported as 0.0, and 1.0 or chance)."""
    if sims.size == 0 or float(sims.max() - sims.min()) > FLAT_TOLERANCE:
        return ""
    zero = int(np.count_nonzero(~unit.any(axis=1)))
    if zero == len(unit):
        cause = f"every text has a zero vector under the {who} (no token it knows)"
    else:
        cause = f"the {who} gives {what} the same cosine, {float(sims.min()):.3f}"
    return f"not measured: {cause}"
