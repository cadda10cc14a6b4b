"""How close is a static model to its teacher? Measured on the same texts in the same run.

- ``spearman``: Spearman correlation between the two models' cosine similarities: over all pairs of texts
  (``texts``), or over the given sentence pairs (``pairs``); 1 means the static model ranks every pair exactly as
  the teacher does;
- ``neighbour_overlap@k``: for each text, the share of its k nearest neighbours (cosine, self excluded) that are
  the same in both models, averaged over the texts;
- ``speed_ratio``: static texts/s divided by teacher texts/s, both timed here on the same texts;
- with gold pair scores: each model's Spearman correlation with the gold scores (``read_scored_pairs``: a .jsonl
  row's ``score``, else its ``label``; the command line's result names which as ``gold_score_key``);
- a number the input cannot give (a model whose cosines are all one value: every text one vector, or a zero vector
  from texts with no known token) is ``None``, and ``not_measured`` says why; ``neighbour_overlap_chance`` is the
  overlap of random neighbours (1 when k covers every other text), ``*_zero_vectors`` count the texts a model
  gives a zero vector, ``teacher`` and ``model_config_teacher`` name the teacher compared with and the model's own.

Command line: ``python -m distill compare STATIC [TEACHER] [--texts FILE | --pairs FILE] [--json]``: a report
that says what was compared with what and each number in words (``format_report``), or the dict as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Protocol

import numpy as np

from distill.correlation import spearman
from distill.neighbours import neighbour_overlaps
from distill.text_files import json_object
from static_model.pooling import l2_normalize


class BatchEncoder(Protocol):
    """What ``compare`` times: ``encode(texts, batch_size=...)``, one row a text (a ``StaticModel``, a
    ``Teacher``, or any object with that method)."""

    def encode(self, texts: list[str], /, *, batch_size: int) -> np.ndarray:
        """One row a text."""
        ...


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean |top-k(a) & top-k(b)| / k over rows; cosine neighbours, self excluded."""
    per_row = neighbour_overlaps(a, b, k)
    return float(per_row.mean()) if per_row.size else float("nan")


def pair_cosines(emb: np.ndarray) -> np.ndarray:
    """The cosine of every pair ``i < j`` of the rows, in ``np.triu_indices(n, 1)`` order."""
    unit = l2_normalize(np.asarray(emb, dtype=np.float32))
    return (unit @ unit.T)[np.triu_indices(len(unit), 1)]


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


def _same_device(a: str, b: str) -> bool:
    """Whether two torch device names name one device (``cuda`` is ``cuda:0``); unparsable names compare as text."""
    import torch

    try:
        da, db = torch.device(a), torch.device(b)
    except (RuntimeError, TypeError, ValueError):
        return a == b
    return da.type == db.type and (da.index or 0) == (db.index or 0)


def _check_teacher_device(teacher: object, device: str) -> None:
    """A ``ValueError`` naming ``device`` when a teacher object is not on it: ``device`` only places a teacher loaded
    here by name or folder, and a ``Teacher`` built on another device once ran there without a word."""
    on = getattr(teacher, "device", None)
    if on is None:
        raise ValueError(f"device={device!r} places a teacher loaded by name or folder, and the teacher given "
                         f"({type(teacher).__name__}) has no device to check; pass the teacher's name or folder, "
                         "or leave device out.")
    if not _same_device(str(on), str(device)):
        raise ValueError(f"device={device!r}, and the teacher given is on {on}: a teacher object is compared where "
                         f"it is; build it with Teacher(..., device={device!r}), pass its name or folder, or leave "
                         "device out.")


def _load_models(
    static_model: BatchEncoder | str | os.PathLike, teacher: BatchEncoder | str | os.PathLike | None, device: str | None
) -> tuple[BatchEncoder, BatchEncoder]:
    if device is not None and teacher is not None and not isinstance(teacher, (str, os.PathLike)):
        _check_teacher_device(teacher, device)
    if isinstance(static_model, (str, os.PathLike)):
        from static_model import StaticModel

        static_model = StaticModel.from_pretrained(static_model)
    revision = None  # the teacher's commit the model's config records, for the teacher it names
    if teacher is None:
        config = getattr(static_model, "config", None) or {}
        teacher = config.get("teacher")
        if not teacher:
            raise ValueError("No teacher given and the static model's config names none; pass the teacher.")
        from distill.resolve import config_teacher_revision

        revision = config_teacher_revision(config)
        if isinstance(teacher, str):
            from distill.resolve import TeacherNotFoundError, resolve_teacher

            at = "" if revision is None else f" at revision {revision}"
            try:
                resolve_teacher(teacher, revision=revision)
            except TeacherNotFoundError as exc:
                raise TeacherNotFoundError(
                    f"The static model's config names the teacher {teacher!r}{at} (its public name), which is not "
                    f"found here; pass the teacher folder or name. ({exc})") from None
    if isinstance(teacher, (str, os.PathLike)):
        from distill.teacher import Teacher

        teacher = Teacher(teacher, device=device, revision=revision)
    return static_model, teacher


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
    :returns: a dict of the measurements (see the module docstring).
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
        pairs = _check_pairs(pairs)
        if not pairs:
            raise ValueError("pairs is empty.")
        uniq = list(dict.fromkeys(s for p in pairs for s in p))
        if scores is not None:
            scores = _check_scores(scores)
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
        uniq = list(dict.fromkeys(_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)))
        if len(uniq) < 2:
            raise ValueError(f"Need at least two distinct texts, got {len(uniq)} (three for a Spearman correlation: "
                             "two texts make a single pair, which has no ranking).")
        if len(uniq) == 2:  # once reported as a Spearman correlation of 0.0
            raise ValueError("Need at least three distinct texts, got 2: two texts make a single pair, and a "
                             "Spearman correlation needs at least two pairs to rank.")
        _check_all_pairs_fit(len(uniq))
    static_model, teacher = _load_models(static_model, teacher, device)
    e_static, s_time = _timed_encode(static_model, uniq, batch_size)
    e_teacher, t_time = _timed_encode(teacher, uniq, batch_size)
    _check_vectors(e_static, uniq, "static model")
    _check_vectors(e_teacher, uniq, "teacher")
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
        _constant(_all_cosines(us), "static model", "every two texts", us)
        or _constant(_all_cosines(ut), "teacher", "every two texts", ut))
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


# Peak bytes of the all-pairs measures per squared text count (cosines of both models, pair indices, ranks), measured:
# 8,000 texts peaked at 2.7 GB.
ALL_PAIRS_BYTES_PER_TEXT_SQUARED = 48


def _check_all_pairs_fit(n_texts: int) -> None:
    """A ``ValueError`` before any model loads when the all-pairs measures of ``n_texts`` texts would not fit in the
    memory available now (Linux; elsewhere not checked): they grow with the square of the texts (20,000 texts: about
    19 GB), and running out was a raw traceback or the kernel's OOM kill after both models had encoded."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not Linux
        return
    need = ALL_PAIRS_BYTES_PER_TEXT_SQUARED * n_texts**2
    if need > available:
        raise ValueError(f"{n_texts:,} distinct texts make {n_texts * (n_texts - 1) // 2:,} pairs, whose measures "
                          f"need about {need / 1e9:.1f} GB, and {available / 1e9:.1f} GB is available: pass fewer "
                          "texts (--limit), or --pairs with the pairs to compare.")


def _public_name(teacher: object) -> str | None:
    """The public name of a ``Teacher`` (what a distilled model's config records); ``None`` for other encoders."""
    try:
        name = getattr(teacher, "public_name", None)
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) else None


def _check_vectors(emb: np.ndarray, texts: list[str], who: str) -> None:
    """One finite row a text, else a ``ValueError``: a NaN row was normalized to a zero vector and measured as one."""
    emb = np.asarray(emb)
    if emb.ndim != 2 or len(emb) != len(texts):
        raise ValueError(f"the {who} gave vectors of shape {emb.shape} for {len(texts)} texts (one row a text).")
    bad = np.flatnonzero(~np.isfinite(emb.astype(np.float32)).all(axis=1))  # as it is measured
    if bad.size:
        raise ValueError(f"the {who} gave NaN or infinite vectors for {bad.size} of the {len(texts)} texts (the "
                         f"first: {texts[bad[0]]!r}); nothing can be measured from them.")


def _all_cosines(unit: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The lowest and the highest cosine between two different rows of ``unit`` (L2-normalized, at least 2 rows)."""
    lo, hi = np.inf, -np.inf
    for start in range(0, len(unit), chunk):
        sims = unit[start : start + chunk] @ unit.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = np.nan
        lo, hi = min(lo, float(np.nanmin(sims))), max(hi, float(np.nanmax(sims)))
    return np.asarray([lo, hi])


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


def _check_text(value: object, where: str) -> str:
    """``value`` when it is a non-blank ``str``; else a ``TypeError`` naming ``where`` (no ``None`` compared as
    "None"), or a ``ValueError`` for a blank one (a zero vector under the static model, compared as a text)."""
    if not isinstance(value, str):
        raise TypeError(f"{where} is {type(value).__name__}, not str.")
    if not value.strip():
        raise ValueError(f"{where} is blank ({value!r}); a blank text has no meaning to compare.")
    return value


def _is_pair(value: object) -> bool:
    """Whether ``value`` holds two items by position (a tuple, a list, an array row), not a str, dict or set."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sized) or not hasattr(value, "__getitem__"):
        return False
    return len(value) == 2


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` as a list of ``(str, str)``; a ``TypeError`` naming the first bad pair."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
        raise TypeError(f"pairs must be a list of (text, text) pairs, not a {type(pairs).__name__}.")
    out = []
    for i, pair in enumerate(pairs):
        if not _is_pair(pair):
            raise TypeError(f"pairs[{i}] must be a pair of two texts, got {pair!r}.")
        out.append((_check_text(pair[0], f"pairs[{i}][0]"), _check_text(pair[1], f"pairs[{i}][1]")))
    return out


def _check_scores(scores: Sequence[float]) -> list[float]:
    """``scores`` as finite floats; a ``ValueError`` naming the first NaN, infinite or non-number score, a
    ``TypeError`` for one str or number (a str was read as one score a character)."""
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Iterable):
        raise TypeError(f"scores must be a list of numbers, one a pair, not a {type(scores).__name__}.")
    out = []
    for i, score in enumerate(scores):
        number = _finite_score(score)
        if number is None:
            raise ValueError(f"scores[{i}] is {score!r}, not a finite number.")
        out.append(number)
    return out


def _finite_score(score: object) -> float | None:
    """``score`` as a finite float (a number or a numeric string, never a bool), else ``None``."""
    if isinstance(score, (bool, np.bool_)):
        return None
    try:
        number = float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------- CLI


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, lines ended by ``\n``, ``\r\n`` or a lone ``\r`` (universal
    newlines, as refine and scale read files); a ``ValueError`` naming the file and line otherwise."""
    lineno = 0
    with open(path, "rb") as f:
        for block in f:  # ends at each \n; bytes.splitlines splits at \n, \r\n and \r only
            for raw in block.splitlines():
                lineno += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{path} is not UTF-8 text (line {lineno}: {exc.reason}); save it as "
                                     "UTF-8.") from None
                if lineno == 1:  # a byte-order mark (Windows editors write one) is no part of the first text
                    line = line.removeprefix("\ufeff")
                yield lineno, line


JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")  # any case: data.JSONL had its lines compared as raw JSON text


def _is_json_lines(path: Path) -> bool:
    return path.suffix.lower() in JSON_LINES_SUFFIXES


def _json_text(path: Path, lineno: int, row: dict, key: str) -> str:
    """``row[key]`` when it is a non-blank string; else a ``ValueError`` naming the file, line and key."""
    value = row[key]
    if not isinstance(value, str):
        raise ValueError(f"{path} line {lineno}: {key!r} is {type(value).__name__}, not text.")  # noqa: TRY004
    if not value.strip():
        raise ValueError(f"{path} line {lineno}: {key!r} is blank; a blank text has no meaning to compare.")
    return value


def read_texts(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Texts from a .txt (one a line) or .jsonl (key ``text``, or ``sentence1``/``sentence2``) file; a .jsonl,
    .ndjson or .json name (any case) is read as JSON lines."""
    path = Path(path)
    out: list[str] = []
    for lineno, line in _lines(path):
        line = line.strip()
        if not line:
            continue
        if _is_json_lines(path):
            row = json_object(line, f"{path} line {lineno}")
            if "text" in row:
                out.append(_json_text(path, lineno, row, "text"))
            elif "sentence1" in row or "sentence2" in row:
                out.extend(_json_text(path, lineno, row, key) for key in ("sentence1", "sentence2") if key in row)
            else:
                raise ValueError(f"{path} line {lineno}: a .jsonl text needs a 'text' or 'sentence1' key.")
        else:
            out.append(line)
        if limit is not None and len(out) >= limit:
            break
    return out[:limit] if limit is not None else out


GOLD_SCORE_KEYS = ("score", "label")  # a .jsonl pair's gold similarity: "score", else "label" (GLUE STS-B's layout)
TSV_SCORE_COLUMN = "column 3"  # where a TSV pair's gold score is (``read_scored_pairs``' key for a TSV)


def _gold_score_key(row: dict) -> str | None:
    """The key of a .jsonl pair's gold score: ``score`` when the row has one, else ``label``, else ``None``."""
    return next((key for key in GOLD_SCORE_KEYS if key in row and row[key] is not None), None)


def _not_a_score(path: Path, lineno: int, key: str, score: object) -> str:
    """The error for a gold score that is not a finite number; a ``label`` one says why a class name is refused."""
    if key != "label":
        return f"{path} line {lineno}: the score {score!r} is not a finite number."
    return (f"{path} line {lineno}: the label {score!r} is not a finite number (compare reads a 'label' as a gold "
            "similarity score, and a class label has no ranking: drop the labels, or give numeric scores).")


def read_pairs(path: str | os.PathLike, limit: int | None = None) -> tuple[list[tuple[str, str]], list[float] | None]:
    """Pairs from a .jsonl (``sentence1``, ``sentence2``, optional ``score`` or ``label``; also .ndjson, .json, any
    case) or a 2/3-column TSV, with their gold scores (``read_scored_pairs``)."""
    pairs, scores, _ = read_scored_pairs(path, limit)
    return pairs, scores


def read_scored_pairs(
    path: str | os.PathLike, limit: int | None = None
) -> tuple[list[tuple[str, str]], list[float] | None, str | None]:
    """``(pairs, gold scores, where the scores are)`` from a .jsonl or TSV pairs file.

    A .jsonl row's gold score is its ``score``, else its ``label`` (GLUE STS-B keeps it there); every row must keep
    it under the same key (or none have one), and a label must be a number (``"entailment"`` is a class, not a
    similarity). The third item is ``"score"``, ``"label"``, ``"column 3"`` (a TSV) or ``None`` (no scores)."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    scores: list[float] = []
    unscored: int | None = None  # the first line of a pair without a score
    first_key: tuple[int, str] | None = None  # the first scored line and where its score is
    for lineno, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if _is_json_lines(path):
            row = json_object(line, f"{path} line {lineno}")
            if "sentence1" not in row or "sentence2" not in row:
                raise ValueError(f"{path} line {lineno}: a pair needs the keys 'sentence1' and 'sentence2'.")
            pairs.append((_json_text(path, lineno, row, "sentence1"), _json_text(path, lineno, row, "sentence2")))
            key = _gold_score_key(row)
            score = row[key] if key is not None else None
        else:
            cols = line.split("\t")
            if len(cols) < 2:
                raise ValueError(f"{path} line {lineno}: expected 'sentence1<TAB>sentence2[<TAB>score]'.")
            blank = next((i for i in (0, 1) if not cols[i].strip()), None)
            if blank is not None:
                raise ValueError(f"{path} line {lineno}: sentence{blank + 1} is blank; a blank text has no meaning to "
                                 "compare.")
            pairs.append((cols[0], cols[1]))
            score = cols[2] if len(cols) > 2 else None
            key = TSV_SCORE_COLUMN if score is not None else None
        if score is not None:
            assert key is not None  # a score is found under a key
            if first_key is None:
                first_key = (lineno, key)
            elif key != first_key[1]:
                raise ValueError(f"{path} line {lineno}: the gold score is under {key!r}, while line {first_key[0]} "
                                 f"has it under {first_key[1]!r}; keep every gold score under one key (a 'label' "
                                 "may mean something other than a 'score').")
            number = _finite_score(score)
            if number is None:
                raise ValueError(_not_a_score(path, lineno, key, score))
            scores.append(number)
        elif unscored is None:
            unscored = lineno
        if scores and unscored is not None:
            raise ValueError(f"{path} line {unscored}: a pair without a score, while other pairs have one; score "
                             "every pair or none.")
        if limit is not None and len(pairs) >= limit:
            break
    if first_key is not None and first_key[1] == "label" and _nli_classes(scores):
        raise ValueError(f"{path}: every 'label' is 0, 1 or 2, the classes of an NLI set (0 entailment, 1 neutral, "
                         "2 contradiction), which rank opposite to similarity; compare reads a 'label' as a gold "
                         "similarity score. Give the similarity under 'score' (if 0, 1, 2 are similarity grades, "
                         "rename the key), or drop the labels.")
    return pairs, (scores if scores else None), (first_key[1] if scores and first_key else None)


def _nli_classes(labels: list[float]) -> bool:
    """Labels that are all 0, 1 or 2 with a 2 among them: an NLI set's three classes (GLUE's and SNLI's layout)."""
    return set(labels) <= {0.0, 1.0, 2.0} and 2.0 in labels


SAMPLE_SENTENCES = Path(__file__).parent / "data" / "sample_sentences.txt"  # shipped as package data: public domain

METRICS_HELP = """what the report says:
  Spearman correlation   between the static model's and the teacher's cosine similarities: over every pair
                         of the --texts, or over the --pairs; 1 = the static model ranks the pairs exactly as
                         the teacher does, 0 = no relation
  neighbour overlap@k    for each text, the share of its k nearest neighbours (cosine, itself excluded) that
                         both models agree on, averaged over the texts (1 = the same neighbours)
  gold scores            with scored --pairs: each model's Spearman correlation with the gold scores (a
                         .jsonl pair's score, else its numeric label, as in GLUE STS-B)
  speed                  texts per second of each model, both timed here on the same texts after a warm-up,
                         each by its fastest run (up to five, while they take under a second in all; the
                         teacher on --device); the ratio is how many times faster the static model is
A number the input cannot give (a model that maps every text to one vector, e.g. texts with no token the static
model knows) is reported as not measured, with the reason; the report counts texts with a zero vector.
--json prints the same numbers as one JSON object (the keys spearman, neighbour_overlap@k, speed_ratio, ...;
null and the key not_measured for a number not measured), with the model, teacher and file compared."""


def build_parser(prog: str = "python -m distill compare") -> argparse.ArgumentParser:
    """The argument parser of ``python -m distill compare``."""
    from distill.cli_checks import OptionParser

    p = OptionParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=METRICS_HELP,
        description="Compare a static model with its teacher: encode the same texts with both and measure how "
        "closely the static model reproduces the teacher's similarities, and how much faster it is.")
    p.add_argument("static_model", help="folder of the static model, or its Hugging Face Hub id")
    p.add_argument("teacher", nargs="?", default=None,
                   help="teacher name or folder (default: the teacher named in the model's config.json)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--texts", help=".txt (one text a line) or .jsonl (text / sentence1, sentence2); default: the "
                     "2,000 public-domain sentences shipped with the package (distill/data/sample_sentences.txt)")
    src.add_argument("--pairs", help=".jsonl with sentence1, sentence2[, score, or label as in GLUE STS-B] or a TSV "
                     "(sentence1, sentence2[, score])")
    p.add_argument("--limit", type=int, default=2000, help="at most this many texts / pairs (default 2000)")
    p.add_argument("--k", type=int, default=10, help="neighbours for the overlap (default 10)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None, help="torch device for the teacher (default: cuda if available)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p


def format_report(result: dict, *, static_name: str, teacher_name: str, source: str, kind: str) -> str:
    """The ``compare`` result in words: what was compared with what, on what, and what each number means.

    :param kind: ``"texts"`` or ``"pairs"`` (what ``source`` holds).
    """
    k = next((key.split("@", 1)[1] for key in result if key.startswith("neighbour_overlap@")), "10")
    overlap = result.get(f"neighbour_overlap@{k}", float("nan"))
    not_measured = result.get("not_measured") or {}
    n_texts, n_pairs = result["n_texts"], result["n_pairs"]
    if kind == "pairs":
        data = f"{n_pairs:,} sentence pairs from {source} ({n_texts:,} distinct sentences)"
        over = f"the {n_pairs:,} given pairs"
    else:
        data = f"{n_texts:,} distinct texts from {source} (all {n_pairs:,} pairs of them)"
        over = f"all {n_pairs:,} pairs of texts"
    used, recorded = result.get("teacher"), result.get("model_config_teacher")
    other = bool(used and recorded and used != recorded)  # a teacher that is not the one the config names
    lines = [
        f"Static model {static_name} compared with {'the teacher' if other else 'its teacher'} {teacher_name}",
        f"on {data}.",
    ]
    if other:
        lines.append(f"  (the model's config names {recorded} as its teacher, and this teacher is {used}: unless that "
                     "is the same model under another name, these numbers are against another teacher)")
    lines += [
        "",
        f"Spearman correlation between the static model's and the teacher's similarities over {over}: "
        + _number(result["spearman"], not_measured.get("spearman")),
        "  (1 = the static model ranks the pairs exactly as the teacher does, 0 = no relation)",
        f"Neighbour overlap@{k}: " + _number(overlap, not_measured.get(f"neighbour_overlap@{k}")),
    ]
    if overlap is not None:
        lines.append(f"  (on average {overlap:.1%} of each text's {k} nearest neighbours by cosine are the same in "
                     "both models)")
    chance = result.get("neighbour_overlap_chance")
    if chance is not None and chance >= 1 and overlap is not None:
        lines.append(f"  (with {n_texts:,} texts every other text is among the {k} nearest, so the overlap is 1 "
                     "whatever the models: pass more texts)")
    if "spearman_static_vs_gold" in result:
        lines.append("Spearman correlation with the gold pair scores: static model "
                     + _number(result["spearman_static_vs_gold"], not_measured.get("spearman_static_vs_gold"))
                     + ", teacher "
                     + _number(result["spearman_teacher_vs_gold"], not_measured.get("spearman_teacher_vs_gold")))
        if result.get("gold_score_key") == "label":
            lines.append("  (the gold scores are the 'label' of each pair: the file has no 'score')")
        if (result.get("spearman_teacher_vs_gold") or 0) < 0:
            lines.append("  (the teacher ranks the pairs opposite to the gold scores: if they are classes where 0 "
                         "means alike, as an NLI set's entailment, they are read the wrong way round)")
    past = result.get("texts_past_teacher_window") or 0
    if past:
        reads = result.get("static_max_length")
        lines.append(f"  ({past:,} of the {n_texts:,} texts are longer than the teacher reads: it sees their first "
                     f"{result['teacher_window_tokens']:,} tokens, the static model "
                     + ("all of them" if reads is None else f"up to {reads:,}")
                     + "; for these texts the two models are compared on different content)")
    for who in ("static", "teacher"):
        zero = result.get(f"{who}_zero_vectors") or 0
        if zero and not any("zero vector" in why for why in not_measured.values()):
            lines.append(f"  ({zero:,} of the {n_texts:,} texts have a zero vector under the "
                         f"{'static model' if who == 'static' else 'teacher'} (no token it knows): a cosine of 0 "
                         "with every text)")
    lines += [
        f"Speed, both timed here on the same {n_texts:,} texts: static model "
        f"{result['static_texts_per_s']:,.0f} texts/s, teacher {result['teacher_texts_per_s']:,.0f} texts/s "
        f"(teacher on {result.get('teacher_device', '?')})",
        f"  the static model is {result['speed_ratio']:,.0f}x faster than the teacher"
        if result["speed_ratio"] >= 10 else
        f"  the static model is {result['speed_ratio']:,.2f}x as fast as the teacher",
    ]
    return "\n".join(lines)


def _number(value: float | None, why: str | None) -> str:
    """``value`` to three places, or why it was not measured."""
    return f"{value:.3f}" if value is not None else (why or "not measured")


def read_input(
    args: argparse.Namespace,
) -> tuple[list[str] | None, list[tuple[str, str]] | None, list[float] | None, str | None]:
    """``(texts, pairs, scores, where the scores are)`` from ``--texts`` or ``--pairs``, checked (usage errors name
    the option and file; the last item as ``read_scored_pairs`` gives it)."""
    from distill.cli_checks import UsageError, check_positive_int, check_utf8_text

    check_positive_int(args.limit, "--limit")
    check_positive_int(args.k, "--k")
    check_positive_int(args.batch_size, "--batch-size")
    if not args.texts and not args.pairs:
        args.texts = str(SAMPLE_SENTENCES)
    option, path = ("--texts", args.texts) if args.texts else ("--pairs", args.pairs)
    check_utf8_text(path, option)
    try:
        if args.texts:
            texts = read_texts(path, args.limit)
            if len(set(texts)) < 3:
                raise ValueError(f"{path} holds {len(set(texts))} distinct text(s); at least three are needed (two "
                                 "make a single pair, and a Spearman correlation ranks at least two).")
            return texts, None, None, None
        pairs, scores, score_key = read_scored_pairs(path, args.limit)
        if not pairs:
            raise ValueError(f"{path} holds no pairs.")
        return None, pairs, scores, score_key
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def check_pairs_rank(pairs: list[tuple[str, str]] | None, scores: list[float] | None, path: str) -> None:
    """``--pairs`` that a Spearman correlation can rank: two pairs or more, and gold scores that are not all one value
    (each was once reported as a correlation of 0.0); checked after the model folder, before anything loads."""
    from distill.cli_checks import UsageError

    if pairs is not None and len(pairs) < 2:
        raise UsageError(f"--pairs: {path} holds a single pair; at least two are needed (a Spearman correlation ranks "
                         "the pairs)")
    if scores is not None and len(set(scores)) < 2:
        raise UsageError(f"--pairs: {path}: every gold score is {scores[0]!r}, a constant with no ranking to "
                         "correlate with; give varied scores, or none")


def check_model_args(args: argparse.Namespace) -> None:
    """The static model folder and ``--device``, checked before anything loads."""
    from distill.cli_checks import check_device_option, check_model_folder

    check_model_folder(args.static_model, "STATIC_MODEL")
    check_device_option(args.device)


def _main(argv: list[str] | None, prog: str) -> int:
    args = build_parser(prog).parse_args(argv)
    texts, pairs, scores, score_key = read_input(args)
    check_model_args(args)
    path = args.texts or args.pairs
    check_pairs_rank(pairs, scores, path)
    from static_model import StaticModel

    static = StaticModel.from_pretrained(args.static_model)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the report is the output: no weight-loading bar in front of it
    res = compare(static, args.teacher, texts=texts, pairs=pairs, scores=scores,
                  k=args.k, batch_size=args.batch_size, device=args.device)
    if score_key is not None:  # where the gold scores were read: "score", "label" or "column 3"
        res["gold_score_key"] = score_key
    teacher = args.teacher or (static.config or {}).get("teacher")
    if args.json:  # what was compared with what, as the report says it; strict JSON (NaN is none)
        res = {"static_model": str(args.static_model), "teacher_given": str(teacher), "source": str(path),
               "input": "texts" if args.texts else "pairs", **res}
        print(json.dumps(res, indent=2, allow_nan=False))
    else:
        print(format_report(res, static_name=args.static_model, teacher_name=str(teacher), source=path,
                            kind="texts" if args.texts else "pairs"))
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m distill compare") -> int:
    """``python -m distill compare``: usage errors exit 2 with one ``error:`` line, Ctrl-C exits 130."""
    from distill.cli_checks import run_cli
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import TeacherError

    return run_cli(lambda: _main(argv, prog), expected=(TeacherNotFoundError, TeacherError, ValueError, TypeError))
