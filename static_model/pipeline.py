"""A fine-tuned classifier served with numpy only: static model (token table) + a small MLP head.

The folder is a normal static model folder (loadable by :class:`StaticModel`, Model2Vec and sentence-transformers)
plus two files:

* ``head.safetensors``: ``layers.{i}.weight`` (out, in) and ``layers.{i}.bias`` (out,) for each linear layer;
* ``head_config.json``: labels, multi-label flag, threshold, activation, layer shapes and whether the pooled
  vector is L2-normalized before the head.

No pickle anywhere, and this module imports only numpy, safetensors, json and ``static_model`` itself: serving a
trained classifier needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from static_model.atomic import atomic_folder
from static_model.persistence import (
    MAX_ABS_VALUE,
    check_replaceable,
    check_save_target,
    json_value,
    read_consistently,
    write_model_files,
    write_tensors,
    write_text,
)
from static_model.safe_read import read_json, read_safetensors
from static_model.validation import as_texts, check_bool

if TYPE_CHECKING:  # pragma: no cover
    from static_model import StaticModel

HEAD_FILE = "head.safetensors"
HEAD_CONFIG_FILE = "head_config.json"
FORMAT_NAME = "static-pipeline"
FORMAT_VERSION = 1
ACTIVATIONS = ("relu", "tanh")
LABEL_FORMATS = ("single", "sets", "indicator")
# Logits must stay below this bound for every input, so that the forward pass (float32) and the softmax, which
# subtracts two logits, can never overflow into infinities and NaN probabilities.
_MAX_LOGIT_BOUND = float(np.finfo(np.float32).max) / 4


def check_labels(labels: Any) -> list[Any]:
    """The labels as plain JSON-ready Python values: strings, booleans, integers or finite floats, all of one kind
    (integers and floats may mix: they are numbers), none twice. Anything else would come back from ``predict`` as
    another value (``np.array([1, "a"])`` turns 1 into ``"1"``) or not at all."""
    if isinstance(labels, (str, bytes)) or not (isinstance(labels, Sequence) or hasattr(labels, "tolist")):
        raise TypeError(f"labels must be a list of labels, got {type(labels).__name__}")
    out: list[Any] = []
    kinds: dict[str, Any] = {}
    for i, label in enumerate(labels if isinstance(labels, Sequence) else labels.tolist()):
        value = label.item() if isinstance(label, np.generic) else label
        if isinstance(value, str):
            kind = "str"
        elif isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, numbers.Integral):
            kind, value = "number", int(value)
        elif isinstance(value, numbers.Real):
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"label {i} is {value!r}; a label must be a string, a bool, an int or a finite float")
            kind = "number"
        else:
            raise TypeError(f"label {i} is {type(value).__name__} ({value!r:.60}); a label must be a string, a bool, "
                            "an int or a finite float")
        kinds.setdefault(kind, value)
        out.append(value)
    if len(kinds) > 1:
        shown = ", ".join(f"{kind}: {value!r}" for kind, value in kinds.items())
        raise TypeError(f"labels mix types ({shown}); predictions would come back as another type: use one type")
    seen: dict[Any, int] = {}
    for i, value in enumerate(out):
        if value in seen:
            raise ValueError(f"labels {seen[value]} and {i} are both {value!r}; each output of the head needs its own "
                             "label")
        seen[value] = i
    return out


def label_array(labels: Sequence[Any]) -> np.ndarray:
    """``labels`` as a 1-D numpy array that holds exactly these values: numpy's own dtype where it keeps every one, else
    an object array (``np.array`` turns ``2**64 - 1`` and ``1`` into float64, and ``2**53 + 1`` beside ``0.5`` into
    ``2**53``: ``predict`` would answer with labels that were never given)."""
    values = list(labels)
    array = np.array(values)
    if array.ndim == 1 and array.tolist() == values:
        return array
    exact = np.empty(len(values), dtype=object)
    exact[:] = values
    return exact


def check_threshold(value: Any) -> float:
    """A multi-label threshold: a probability strictly between 0 and 1 (at 0 or 1 every label, or none, passes)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"threshold must be a number; got {value!r} ({type(value).__name__})")
    if not 0.0 < float(value) < 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be between 0 and 1 (both excluded); got {value!r}")
    return float(value)


def config_json(config: dict[str, Any]) -> str:
    """A config as the JSON text the pipeline folder (and an ONNX export's ``labels.json``) stores."""
    return json.dumps(config, indent=2, ensure_ascii=False, default=json_value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _activate(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0.0, out=x)
    return np.tanh(x, out=x)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warnings for large logits.
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


class StaticPipeline:
    """Texts → labels with a static model and an MLP head, in numpy.

    ``predict`` answers in the form the classifier was trained with: an array of labels (single-label), a list of
    label tuples (multi-label from label lists) or a 0/1 matrix (multi-label from an indicator matrix).
    """

    def __init__(
        self,
        model: StaticModel,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        labels: Sequence[Any],
        multilabel: bool = False,
        threshold: float = 0.5,
        activation: str = "relu",
        normalize: bool = True,
        label_format: str | None = None,
    ) -> None:
        multilabel = check_bool(multilabel, "multilabel")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        label_format = label_format or ("sets" if multilabel else "single")
        if label_format not in LABEL_FORMATS or (label_format == "single") == bool(multilabel):
            raise ValueError(f"label_format {label_format!r} does not fit multilabel={multilabel}.")
        if not layers:
            raise ValueError("The head needs at least one linear layer.")
        self.model = model
        self.layers = [
            (np.ascontiguousarray(w, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)) for w, b in layers
        ]
        self.labels = check_labels(labels)  # JSON-ready
        self.multilabel = multilabel
        self.threshold = check_threshold(threshold)
        self.activation = activation
        self.normalize = check_bool(normalize, "normalize")
        self.label_format = label_format
        self._check_shapes()
        # Transposed copies, so that the forward pass is one contiguous matmul per layer.
        self._weights_t = [np.ascontiguousarray(w.T) for w, _ in self.layers]

    def _check_shapes(self) -> None:
        expected_in = int(self.model.dim)
        # The largest |value| each layer can see: the pooled vector is a unit vector, or an average of table rows,
        # whose values times their weights a StaticModel keeps within MAX_ABS_VALUE.
        bound = 1.0 if self.normalize else float(MAX_ABS_VALUE)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"Head layer {i}: weight {w.shape} and bias {b.shape} do not fit together.")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"Head layer {i} holds NaN or infinite values.")
            if w.shape[1] != expected_in:
                raise ValueError(f"Head layer {i} expects {w.shape[1]} inputs, but gets {expected_in}.")
            expected_in = w.shape[0]
            if w.size:
                bound = float(np.abs(w.astype(np.float64)).sum(axis=1).max()) * bound + float(np.abs(b).max())
            if not bound <= _MAX_LOGIT_BOUND:
                raise ValueError(f"Head layer {i} has weights so large that its outputs can reach {bound:.3g}, beyond "
                                 "what float32 computes without overflow (infinite logits, NaN probabilities).")
            if i < last and self.activation == "tanh":
                bound = min(bound, 1.0)
        if expected_in != len(self.labels):
            raise ValueError(f"The head has {expected_in} outputs but there are {len(self.labels)} labels.")

    @property
    def classes_(self) -> np.ndarray:
        """The labels as a numpy array (scikit-learn's name) that holds their own values (see :func:`label_array`)."""
        return label_array(self.labels)

    # ------------------------------------------------------------------ inference
    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The pooled vectors the head sees: mean of token rows, L2-normalized when ``normalize``."""
        single, batch = as_texts(texts)
        if single:
            raise TypeError("Pass a list of texts, not a single string.")
        return np.asarray(self.model.encode(batch, normalize=self.normalize), dtype=np.float32)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, shape (n, n_labels)."""
        x = self.features(texts)
        last = len(self.layers) - 1
        for i, (wt, (_, b)) in enumerate(zip(self._weights_t, self.layers)):
            x = x @ wt
            x += b
            if i < last:
                x = _activate(x, self.activation)
        return x

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax (single-label) or per-label sigmoid (multi-label) probabilities, shape (n, n_labels)."""
        logits = self.decision_function(texts)
        return _sigmoid(logits) if self.multilabel else _softmax(logits)

    def predict(self, texts: Sequence[str], *, threshold: float | None = None) -> Any:
        """Predicted labels: one a text, or for multi-label the labels above ``threshold`` (a single-label pipeline
        takes the most probable label whatever the threshold, as Model2Vec's does; an invalid one is refused)."""
        if threshold is not None:
            threshold = check_threshold(threshold)
        if not self.multilabel:
            return self.classes_[self.decision_function(texts).argmax(axis=1)]
        threshold = self.threshold if threshold is None else threshold
        # sigmoid(z) > t  <=>  z > logit(t), the rule StaticModelClassifier.predict uses too.
        hits = self.decision_function(texts) > np.log(threshold / (1.0 - threshold))
        if self.label_format == "indicator":
            return hits.astype(np.int64)
        return [tuple(self.labels[j] for j in np.flatnonzero(row)) for row in hits]

    # ------------------------------------------------------------------ persistence
    def label_config(self) -> dict[str, Any]:
        """The labels (JSON values of their own type: 1 stays 1, "1" stays "1") and how ``predict`` answers with them:
        the part of :meth:`head_config` that an ONNX export's ``labels.json`` holds too."""
        return {
            "labels": self.labels,
            "multilabel": self.multilabel,
            "label_format": self.label_format,
            "threshold": self.threshold,
        }

    def head_config(self) -> dict[str, Any]:
        """The head's config.json content: format, labels, options and layer shapes."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            **self.label_config(),
            "activation": self.activation,
            "normalize": self.normalize,
            "layers": [[int(w.shape[1]), int(w.shape[0])] for w, _ in self.layers],  # [in, out] per layer
        }

    def save_pretrained(self, path: str | os.PathLike, *, dtype: str | None = None, overwrite: bool = False) -> Path:
        """Write the folder atomically: build it beside ``path``, then swap it in. A failure leaves ``path`` as it was.

        The same rules as :meth:`StaticModel.save_pretrained`: a model folder is replaced only with ``overwrite=True``,
        a folder holding anything else never.
        """
        target = check_save_target(path, overwrite=overwrite)
        contents = self.model.folder_contents(dtype)
        with atomic_folder(target, check=check_replaceable, replace=overwrite) as staging:
            # the model's files straight into the staging folder: a save of its own would stage them in one more
            # folder beside the target, which a kill -9 would leave behind and no later save would remove
            write_model_files(staging, contents)
            tensors = {}
            for i, (w, b) in enumerate(self.layers):
                tensors[f"layers.{i}.weight"] = w
                tensors[f"layers.{i}.bias"] = b
            write_tensors(staging / HEAD_FILE, tensors, {"format": FORMAT_NAME})
            write_text(staging / HEAD_CONFIG_FILE, config_json(self.head_config()))
        return target

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None
    ) -> StaticPipeline:
        """Load a classifier pipeline folder written by :meth:`save_pretrained` (read again if a save replaces it
        meanwhile: the head and the model always come from the same version).

        ``path`` may be a Hugging Face Hub id, as in :meth:`StaticModel.from_pretrained`: ``revision`` (a branch, tag
        or commit) and ``token`` (a str; ``True``: the saved login; ``False``: none; ``None``: ``HF_TOKEN`` or the
        saved login) go to every huggingface_hub call, and a local path ignores them. The head's files are fetched
        with the model's (``static_model.hub.MODEL_FILE_PATTERNS``: every JSON and safetensors file)."""
        return read_consistently(path, cls._read_folder, revision=revision, token=token)

    @classmethod
    def _read_folder(cls, folder: Path) -> StaticPipeline:
        from static_model import StaticModel

        config_path, head_path = folder / HEAD_CONFIG_FILE, folder / HEAD_FILE
        absent = [path for path in (config_path, head_path) if not os.path.lexists(path)]
        if len(absent) == 1:  # a pipeline folder that lost one file: name it
            raise FileNotFoundError(f"{absent[0]} is missing: a classifier pipeline folder needs both "
                                    f"{HEAD_CONFIG_FILE} and {HEAD_FILE}.")
        if absent:
            raise FileNotFoundError(
                f"{folder} is not a classifier pipeline folder: it needs {HEAD_CONFIG_FILE} and {HEAD_FILE} "
                "(a plain static model folder has neither)."
            )
        config = read_json(config_path, folder)
        version = config.get("version", 0)
        if (config.get("format") != FORMAT_NAME or not _is_count(version) or version > FORMAT_VERSION):
            raise ValueError(f"{config_path} is not a supported {FORMAT_NAME} v{FORMAT_VERSION} config.")
        if not isinstance(config.get("layers"), list) or not isinstance(config.get("labels"), list):
            raise ValueError(f"{config_path} needs 'layers' and 'labels' lists.")  # noqa: TRY004 (file content)
        if not all(isinstance(s, list) and len(s) == 2 and all(map(_is_count, s)) for s in config["layers"]):
            raise ValueError(f"{config_path}: 'layers' must hold one [in, out] pair of integers per layer.")
        tensors = read_safetensors(head_path, folder)
        n_layers = len(config["layers"])
        expected = {f"layers.{i}.{part}" for i in range(n_layers) for part in ("weight", "bias")}
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        if missing:
            raise ValueError(f"{head_path} lacks tensor {missing[0]!r}.")
        if extra:  # a head of more layers than the config names (or stray tensors): the two files disagree
            raise ValueError(f"{head_path} holds tensor {extra[0]!r}, which {config_path} does not name ({n_layers} "
                             "layers); the two files do not belong together.")
        for name in sorted(expected):
            if tensors[name].dtype.kind != "f":  # the format stores float32; an integer or bool head is no head
                raise ValueError(f"{head_path}: tensor {name!r} is {tensors[name].dtype}, not a float tensor.")
        layers = [(tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]) for i in range(n_layers)]
        for i, ((w, _), (d_in, d_out)) in enumerate(zip(layers, config["layers"])):
            if tuple(w.shape) != (d_out, d_in):
                raise ValueError(f"{head_path}: layer {i} has shape {tuple(w.shape)}, config says {(d_out, d_in)}.")
        model = StaticModel.from_pretrained(folder)
        try:
            return cls(
                model,
                layers,
                labels=config["labels"],
                multilabel=config.get("multilabel", False),
                threshold=config.get("threshold", 0.5),
                activation=config.get("activation", "relu"),
                normalize=config.get("normalize", True),
                label_format=config.get("label_format"),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{config_path} with {head_path}: {exc}") from None

    def __getstate__(self) -> dict[str, Any]:
        """The head's layers, labels and settings and the model (pickled without its caches, see
        :meth:`StaticModel.__getstate__`); never the transposed copies of the weights, which are rebuilt."""
        state = dict(self.__dict__)
        state.pop("_weights_t", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._weights_t = [np.ascontiguousarray(w.T) for w, _ in self.layers]

    def __repr__(self) -> str:
        shapes = " → ".join(str(w.shape[1]) for w, _ in self.layers) + f" → {self.layers[-1][0].shape[0]}"
        kind = "multi-label" if self.multilabel else "single-label"
        return f"StaticPipeline({kind}, {len(self.labels)} labels, head {shapes})"
