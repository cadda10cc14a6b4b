"""Input checks, label encoding, token batches and the validation split for :class:`StaticModelClassifier`.

Nothing here imports torch: the checks run (and fail clearly) before any training code is loaded.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from static_model.pipeline import label_array

# How the targets were given, so that ``predict`` answers in the same form.
SINGLE = "single"  # one label per text: predict -> (n,) array of labels
LABEL_SETS = "sets"  # list of label lists: predict -> list of tuples of labels
INDICATOR = "indicator"  # (n, k) 0/1 matrix: predict -> (n, k) int matrix


def check_texts(X: Any, name: str = "X", *, allow_empty_texts: bool = True) -> list[str]:
    """``X`` as a list of strings, or a clear ``TypeError``/``ValueError``."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of strings, got a single {type(X).__name__}; wrap it in a list.")
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional (one text per row), got an array of shape {X.shape}.")
        X = X.tolist()
    elif hasattr(X, "tolist") and not isinstance(X, (list, tuple)):  # pandas Series
        X = X.tolist()
    if not isinstance(X, Iterable):
        raise TypeError(f"{name} must be a sequence of strings, got {type(X).__name__}.")
    _refuse_unordered(X, name)
    texts = list(X)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        i = bad[0]
        raise TypeError(
            f"{name} must contain only strings; item {i} is {type(texts[i]).__name__} ({len(bad)} non-string item(s))."
        )
    if not allow_empty_texts:
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            shown = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
            raise ValueError(
                f"{name} contains {len(empty)} empty or whitespace-only text(s) (at index {shown}); "
                "remove them before fitting."
            )
    return texts


def _refuse_unordered(value: Any, name: str) -> None:
    """A set or a dict has no row order of its own: texts and labels would be paired (and predictions returned) in
    an order nobody chose. The numpy pipeline refuses them too."""
    if isinstance(value, (Mapping, Set)):
        raise TypeError(f"{name} is a {type(value).__name__}, which has no row order; pass a list (one item per text).")


def _kind(label: Any) -> str:
    if isinstance(label, (str, np.str_)):
        return "str"
    if isinstance(label, (bool, np.bool_)):
        return "bool"
    if isinstance(label, numbers.Integral):
        return "int"
    if isinstance(label, numbers.Real):
        return "float"
    raise TypeError(f"Labels must be strings or numbers, got {type(label).__name__} ({label!r}).")


def to_python(label: Any) -> Any:
    """A label as a plain JSON-friendly Python value; a NaN or infinite label is an error (JSON cannot hold it, and
    NaN is not even equal to itself)."""
    kind = _kind(label)
    if kind == "str":
        return str(label)
    if kind == "bool":
        return bool(label)
    if kind == "int":
        return int(label)
    value = float(label)
    if not math.isfinite(value):
        raise ValueError(f"Labels must be finite; got {value!r}.")
    return value


class MissingLabelError(ValueError, TypeError):
    """A missing label (None, NaN, pandas' NA) in ``y``: a ValueError, and a TypeError as a None label was before."""


def _missing(label: Any) -> str | None:
    """How ``label`` is missing ("None", "NaN", "NA": a label column's empty cell), or None when it is a value."""
    if label is None:
        return "None"
    pandas = sys.modules.get("pandas")  # pandas' NA exists only where pandas was imported
    if pandas is not None and label is getattr(pandas, "NA", None):
        return "NA"
    if isinstance(label, numbers.Real) and not isinstance(label, numbers.Integral) and math.isnan(label):
        return "NaN"
    return None


def _refuse_missing(
    labels: Sequence[Any] | np.ndarray, name: str, *, when: str = "fitting", row_kind: str = "label list"
) -> None:
    """Name the first row with a missing label (single labels, label lists or indicator rows, ``row_kind``), rather
    than "mixes label types" (NaN among strings) or "must be strings or numbers" (None): a missing label is no class.
    The one check of every argument that takes labels (``fit``, ``score``); ``when`` says what to fill them before."""
    first, count = "", 0
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "biuf":  # numbers only: NaN is the one missing value
        flags = np.isnan(labels) if labels.dtype.kind == "f" else np.zeros(labels.shape, dtype=bool)
        rows = np.flatnonzero(flags if flags.ndim == 1 else flags.any(axis=tuple(range(1, flags.ndim))))
        if len(rows):
            first, count = f"row {rows[0]} (NaN{f' in its {row_kind}' if labels.ndim > 1 else ''}", len(rows)
    else:
        for row, value in enumerate(labels):
            nested = _is_sequence_label(value)
            items = (value.tolist() if isinstance(value, np.ndarray) else value) if nested else (value,)
            what = next(filter(None, map(_missing, items)), None)
            if what is not None:
                first = first or f"row {row} ({what}{f' in its {row_kind}' if nested else ''}"
                count += 1
    if count:
        raise MissingLabelError(
            f"{name} has a missing label at {first}; {count} row(s) in all): labels must be strings or numbers, and "
            f"None, NaN or infinite labels cannot be classes; drop or fill those rows before {when}."
        )


def _check_one_kind(labels: Sequence[Any], name: str) -> None:
    kinds: dict[str, Any] = {}
    for label in labels:
        try:
            kind = _kind(label)
        except TypeError as exc:
            raise TypeError(f"{name}: {exc}") from None
        kinds.setdefault(kind, label)
    if "float" in kinds and "int" in kinds and len(kinds) == 2:
        return  # 1 and 1.0 are the same number
    if len(kinds) > 1:
        examples = ", ".join(f"{k}: {v!r}" for k, v in kinds.items())
        raise TypeError(f"{name} mixes label types ({examples}); use one type for all labels.")


def _is_sequence_label(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def _label_kind(label: Any) -> str:
    """A label's kind as a classifier's classes have them: a str, a bool or a number (1 and 1.0 are the same)."""
    kind = _kind(label)
    return "number" if kind in ("int", "float") else kind


def _refuse_other_kind(labels: Sequence[Any], classes: np.ndarray, name: str) -> None:
    """True labels of another kind than the classes (ints for a classifier trained on strings) can never equal a
    class: every text would count as wrong, silently. Unknown labels of the classes' kind do count as wrong."""
    if not len(labels) or not len(classes):
        return
    have, known = _label_kind(labels[0]), _label_kind(classes.tolist()[0])
    if have != known:
        raise TypeError(
            f"{name} holds {have} labels ({labels[0]!r}), but this classifier was trained on {known} labels "
            f"({', '.join(map(repr, classes.tolist()[:3]))}{', ...' if len(classes) > 3 else ''}): no text could be "
            "right."
        )


def _truth_rows(y: Any, n_samples: int, name: str, expected: str) -> list[Any]:
    """The rows of the true labels ``y`` given to ``score``: a sequence with a row order, one row per text."""
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):  # pandas
        y = y.to_numpy()
    if y is None or isinstance(y, (str, bytes)) or not isinstance(y, Iterable):
        raise TypeError(f"{name} must be a sequence of {expected}, got {type(y).__name__}.")
    _refuse_unordered(y, name)
    if isinstance(y, np.ndarray) and y.ndim != 1 and not (y.ndim == 2 and expected == "label lists"):
        raise ValueError(f"{name} must be a 1-D sequence of {expected}, got an array of shape {y.shape}.")
    rows = list(y.tolist() if isinstance(y, np.ndarray) and y.dtype != object else y)
    if len(rows) != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} texts but {len(rows)} {expected}.")
    _refuse_missing(rows, name, when="scoring")
    return rows


def single_labels(y: Any, n_samples: int, classes: np.ndarray, name: str = "y") -> list[Any]:
    """One label per text as plain Python values, checked as ``fit`` checks them (a missing label named by its row,
    one kind of label) and of the kind of ``classes``: the truth a single-label classifier is scored against."""
    labels = _truth_rows(y, n_samples, name, "labels")
    for i, label in enumerate(labels):
        if _is_sequence_label(label):
            raise TypeError(
                f"{name} must hold one label per text (this classifier was trained on single labels); item {i} is "
                f"{type(label).__name__} ({label!r:.60})."
            )
    _check_one_kind(labels, name)
    try:
        values = [to_python(label) for label in labels]
    except ValueError as exc:
        raise ValueError(f"{name} contains NaN or infinite labels ({exc})") from None
    _refuse_other_kind(values, classes, name)
    return values


def label_sets(y: Any, n_samples: int, classes: np.ndarray, name: str = "y") -> list[set[Any]]:
    """Each text's labels as a set, from one label list (list, tuple, set or array) per text: the truth that a
    multi-label classifier trained on label lists is scored against, checked as ``fit`` checks label lists."""
    rows = _truth_rows(y, n_samples, name, "label lists")
    for i, row in enumerate(rows):
        if not _is_sequence_label(row):
            raise TypeError(
                f"{name} must hold one list of labels per text (this classifier was trained on label lists); item {i} "
                f"is {type(row).__name__} ({row!r:.60})."
            )
    lists = [row.tolist() if isinstance(row, np.ndarray) else list(row) for row in rows]
    flat = [label for labels in lists for label in labels]
    _check_one_kind(flat, name)
    try:
        sets = [{to_python(label) for label in labels} for labels in lists]
    except ValueError as exc:
        raise ValueError(f"{name} contains NaN or infinite labels ({exc})") from None
    _refuse_other_kind([to_python(label) for label in flat[:1]], classes, name)
    return sets


def indicator_rows(y: Any, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    """The true 0/1 indicator matrix (n_samples, n_classes) a classifier trained on one is scored against, checked
    as ``fit`` checks one (a missing cell named by its row, only 0 and 1)."""
    if hasattr(y, "toarray") and hasattr(y, "shape"):  # scipy sparse
        y = y.toarray()
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):  # pandas
        y = y.to_numpy()
    if y is None or isinstance(y, (str, bytes)) or not isinstance(y, Iterable):
        raise TypeError(f"{name} must be a 0/1 indicator matrix (this classifier was trained on one), got "
                        f"{type(y).__name__}.")
    _refuse_unordered(y, name)
    try:
        matrix = np.asarray(y)
    except ValueError:  # ragged rows
        matrix = np.asarray(y, dtype=object)
    if matrix.ndim != 2 or matrix.shape != (n_samples, n_classes):
        raise ValueError(f"{name} must be a 0/1 indicator matrix of shape ({n_samples}, {n_classes}) (one row per "
                         f"text, one column per class, as in fit), got shape {matrix.shape}.")
    return _indicator_values(matrix, name, when="scoring")


def _indicator_values(y: np.ndarray, name: str, *, when: str) -> np.ndarray:
    """A 2-D indicator matrix as float64 0/1 values: a missing cell (NaN, None) named by its row, anything else than
    0 and 1 refused."""
    _refuse_missing(y, name, when=when, row_kind="indicator row")
    try:
        values = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"The indicator matrix {name} must hold 0/1 numbers, got dtype {y.dtype}.") from exc
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"The indicator matrix {name} must hold only 0 and 1.")
    return values


@dataclass
class Targets:
    """Encoded targets: class indices (single-label) or a float 0/1 matrix (multi-label)."""

    classes: np.ndarray
    multilabel: bool
    label_format: str
    y: np.ndarray  # (n,) int64 or (n, k) float32

    @property
    def n_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    def subset(self, rows: np.ndarray) -> Targets:
        """The targets of ``rows`` only, with the same classes (a class may have no text left)."""
        return Targets(self.classes, self.multilabel, self.label_format, self.y[rows])


def encode_targets(y: Any, n_samples: int, name: str = "y") -> Targets:
    """Work out the task from ``y`` and encode it.

    * a 1-D sequence of strings or numbers: single-label classification (at least two classes);
    * a 2-D numpy array (or scipy sparse matrix) of 0/1: a multi-label indicator matrix, classes ``0..k-1``;
    * a sequence of label lists/tuples/sets: multi-label with named classes.
    """
    if hasattr(y, "toarray") and hasattr(y, "shape"):  # scipy sparse indicator matrix
        y = y.toarray()
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels, got a single string.")
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):  # pandas
        y = y.to_numpy()
    if not isinstance(y, Iterable):  # None, a number: not "'NoneType' object is not iterable"
        raise TypeError(f"{name} must be a sequence of labels or a 2-D 0/1 indicator matrix, got {type(y).__name__}.")
    _refuse_unordered(y, name)
    if isinstance(y, np.ndarray) and y.ndim == 2:
        return _encode_indicator(y, n_samples, name)
    if isinstance(y, np.ndarray) and y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (labels) or 2-D (indicator matrix), got shape {y.shape}.")
    labels = list(y.tolist() if isinstance(y, np.ndarray) and y.dtype != object else y)
    if len(labels) != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} texts but {len(labels)} labels.")
    if n_samples == 0:
        raise ValueError("Cannot fit on zero samples.")
    _refuse_missing(labels, name)
    nested = [_is_sequence_label(v) for v in labels]
    if any(nested) and not all(nested):
        i = nested.index(False) if nested[0] else nested.index(True)
        raise TypeError(
            f"{name} mixes single labels and label lists (item 0 is {type(labels[0]).__name__}, item {i} is "
            f"{type(labels[i]).__name__}); pass one label per text, or a list of labels for every text."
        )
    if all(nested):
        sets = [list(v.tolist() if isinstance(v, np.ndarray) else v) for v in labels]
        _refuse_indicator_rows(sets, name)
        flat = [label for s in sets for label in s]
        if not flat:
            raise ValueError(f"{name} has no labels at all: every label list is empty.")
        _check_one_kind(flat, name)
        try:
            classes = label_array(sorted({to_python(v) for v in flat}))
        except ValueError as exc:
            raise ValueError(f"{name} contains NaN or infinite labels ({exc})") from None
        index = {c: i for i, c in enumerate(classes.tolist())}
        matrix = np.zeros((n_samples, len(classes)), dtype=np.float32)
        for row, s in enumerate(sets):
            for label in s:
                matrix[row, index[to_python(label)]] = 1.0
        return Targets(classes, True, LABEL_SETS, matrix)
    _check_one_kind(labels, name)
    try:
        values = [to_python(v) for v in labels]
    except ValueError as exc:
        raise ValueError(f"{name} contains NaN or infinite labels ({exc})") from None
    classes = label_array(sorted(set(values)))
    if len(classes) < 2:
        raise ValueError(
            f"{name} has a single class ({classes[0]!r}); a classifier needs at least two classes to learn from."
        )
    index = {c: i for i, c in enumerate(classes.tolist())}
    return Targets(classes, False, SINGLE, np.array([index[v] for v in values], dtype=np.int64))


def _refuse_indicator_rows(sets: list[list[Any]], name: str) -> None:
    """Label lists that are rows of 0/1 of one length (``[[1, 0], [0, 1]]``) are an indicator matrix given as lists,
    as scikit-learn reads them; read as label lists, each such row would name both classes 0 and 1 and the model
    would silently learn nonsense. Ask for the one form that is meant."""
    width = len(sets[0])
    if width < 2 or any(len(s) != width for s in sets):
        return
    if all(isinstance(v, (numbers.Integral, np.bool_)) and v in (0, 1) for s in sets for v in s):
        raise TypeError(
            f"{name} is a list of 0/1 rows of one length ({width}), which reads both as an indicator matrix and as "
            f"label lists naming the classes 0 and 1; pass np.asarray({name}) for an indicator matrix, or label lists "
            "with named classes."
        )


def _encode_indicator(y: np.ndarray, n_samples: int, name: str) -> Targets:
    if y.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different lengths: {n_samples} texts but {y.shape[0]} label rows.")
    if n_samples == 0:
        raise ValueError("Cannot fit on zero samples.")
    if y.shape[1] < 1:
        raise ValueError(f"The indicator matrix {name} has no columns.")
    values = _indicator_values(y, name, when="fitting")
    if not values.any():
        raise ValueError(f"The indicator matrix {name} has no positive labels at all.")
    return Targets(np.arange(y.shape[1]), True, INDICATOR, values.astype(np.float32))


def check_class_weight(
    class_weight: Any, targets: Targets, sample_weight: np.ndarray | None = None
) -> np.ndarray | None:
    """Per-class loss weights (CE class weights, or BCE ``pos_weight`` for multi-label), or ``None``.

    ``"balanced"`` counts each text by its ``sample_weight`` (None: 1 each), as scikit-learn's
    ``compute_class_weight(..., sample_weight=...)`` does: a weight of 2 counts as two copies of the text.
    """
    if class_weight is None:
        return None
    k = targets.n_classes
    weights = np.ones(len(targets.y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if targets.multilabel:
        positives = weights @ targets.y.astype(np.float64)
        negatives = weights.sum() - positives
    else:
        counts = np.bincount(targets.y, weights=weights, minlength=k)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {class_weight!r}.")
        # a class no text has counts as 1 (no text's loss uses its weight); a weighted count may be below 1
        if targets.multilabel:  # BCE pos_weight = negatives / positives, as in torch's docs
            return (negatives / np.where(positives > 0, positives, 1.0)).astype(np.float32)
        return (counts.sum() / (k * np.where(counts > 0, counts, 1.0))).astype(np.float32)
    if isinstance(class_weight, dict):
        lookup = {}
        for key, value in class_weight.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                raise ValueError(f"class_weight values must be numbers; class {key!r} has {value!r}.")
            try:
                label = to_python(key)
            except (TypeError, ValueError) as exc:  # "Labels must be finite" named no argument
                raise type(exc)(f"class_weight names {key!r:.60}, which cannot be a class: {exc}") from None
            lookup[label] = float(value)
        unknown = set(lookup) - set(targets.classes.tolist())
        if unknown:
            raise ValueError(f"class_weight names classes that are not in y: {sorted(map(repr, unknown))}.")
        weights = np.array([lookup.get(c, 1.0) for c in targets.classes.tolist()], dtype=np.float32)
        if (weights <= 0).any() or not np.isfinite(weights).all():
            raise ValueError("class_weight values must be positive and finite.")
        return weights
    raise TypeError(f"class_weight must be None, 'balanced' or a dict, got {type(class_weight).__name__}.")


def check_sample_weight(sample_weight: Any, n_samples: int, *, purpose: str = "train on") -> np.ndarray | None:
    """One finite, non-negative float weight per text (not all zero: nothing to ``purpose``) as a float64 array, or
    ``None``."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight)
    except ValueError:  # ragged nesting
        weights = np.asarray(sample_weight, dtype=object)
    if isinstance(sample_weight, (str, bytes)) or weights.ndim != 1:
        shape = "a string" if isinstance(sample_weight, (str, bytes)) else f"shape {weights.shape}"
        raise ValueError(f"sample_weight must be a 1-D sequence of one number per text, got {shape}.")
    if weights.dtype.kind not in "iuf":
        raise TypeError(f"sample_weight must hold numbers, got dtype {weights.dtype}.")
    weights = weights.astype(np.float64)
    if len(weights) != n_samples:
        raise ValueError(f"sample_weight has {len(weights)} values but X has {n_samples} texts.")
    bad = np.flatnonzero(~np.isfinite(weights))
    if len(bad):
        raise ValueError(
            f"sample_weight must be finite; item {bad[0]} is {weights[bad[0]]!r} ({len(bad)} NaN or infinite value(s))."
        )
    negative = np.flatnonzero(weights < 0)
    if len(negative):
        raise ValueError(f"sample_weight must be non-negative; item {negative[0]} is {weights[negative[0]]!r}.")
    if not weights.any():
        raise ValueError(f"sample_weight is zero for every text: there is nothing to {purpose}.")
    return weights


def validation_split(targets: Targets, fraction: float | int | None, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Train and validation indices: stratified for single labels when every class can spare an example."""
    n = len(targets.y)
    everything = np.arange(n)
    if not fraction:
        return everything, None
    if isinstance(fraction, numbers.Integral) and fraction >= n:
        # clamped to n - 1, this trained on one single text, silently
        raise ValueError(
            f"validation_fraction={fraction} asks for {fraction} validation texts, but there are only {n} "
            "texts: a count must leave at least one text to train on."
        )
    n_val = int(fraction) if isinstance(fraction, numbers.Integral) else int(round(float(fraction) * n))
    n_val = min(max(n_val, 1), n - 1)
    if n < 2 or n_val < 1:
        return everything, None
    rng = np.random.default_rng(seed)
    if targets.multilabel:
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    counts = np.bincount(targets.y, minlength=targets.n_classes)
    if n_val >= targets.n_classes and n - n_val >= targets.n_classes and (counts >= 2).all():
        from sklearn.model_selection import StratifiedShuffleSplit

        splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        train, val = next(splitter.split(np.zeros(n), targets.y))
        return np.sort(train), np.sort(val)
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class TokenizedTexts:
    """Per-text token ids kept flat (ids + offsets), sliced into EmbeddingBag batches without padding."""

    def __init__(self, token_lists: Sequence[np.ndarray]) -> None:
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        self.offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.ids = (
            np.concatenate([np.asarray(t, dtype=np.int64) for t in token_lists])
            if len(token_lists) and self.offsets[-1]
            else np.zeros(0, dtype=np.int64)
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and start offsets (``len(rows)`` of them) of the given rows, in that order."""
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        offsets = np.zeros(len(rows), dtype=np.int64)
        if len(rows) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), offsets
        # Vectorised gather of the ranges [start, start + length) for each row.
        index = np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)
        return self.ids[index], offsets
