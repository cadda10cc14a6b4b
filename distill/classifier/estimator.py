"""``StaticModelClassifier``: a scikit-learn classifier that fine-tunes a static model end to end."""

from __future__ import annotations

import math
import numbers
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from distill.classifier.data import (
    INDICATOR,
    SINGLE,
    TokenizedTexts,
    check_class_weight,
    check_sample_weight,
    check_texts,
    encode_targets,
    indicator_rows,
    label_sets,
    single_labels,
    validation_split,
)
from static_model.pipeline import check_threshold
from static_model.validation import is_int

if TYPE_CHECKING:
    from sklearn.utils import Tags

    from distill.classifier.data import Targets
    from distill.classifier.model import BagOfTokensClassifier
    from distill.classifier.training import History


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter of the wrong type or range (scikit-learn's ``InvalidParameterError`` is both too)."""


# (name, lowest value, None allowed) of each integer parameter; ``verbose`` (also a bool) is checked apart.
_INT_PARAMS: tuple[tuple[str, int, bool], ...] = (
    ("hidden_dim", 1, False),
    ("n_layers", 0, False),
    ("batch_size", 1, True),
    ("max_epochs", 1, False),
    ("min_epochs", 0, False),
    ("early_stopping_patience", 1, True),
    ("max_length", 1, True),
    ("random_state", 0, True),
    ("n_threads", 1, True),
)


class _TorchThreads:
    """``torch.set_num_threads`` for the fits that run at once, restored to the count found before the first.

    The count is process-wide (and, with OpenMP, also each thread's own, which a new thread takes from the
    process-wide one): a fit that saved the count it found while another fit trained saved that fit's temporary
    count, and restoring it last left it behind. Every fit restores, in its own thread, the count saved when no fit
    was running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved = 0

    @contextmanager
    def __call__(self, torch: ModuleType, n_threads: int | None) -> Iterator[None]:
        if n_threads is None:  # keep torch's setting
            yield
            return
        with self._lock:
            if not self._running:
                self._saved = torch.get_num_threads()
            self._running += 1
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            # also when other fits still run: with OpenMP they keep their own thread's count (without OpenMP the
            # count is process-wide only, and they go on with the saved one)
            with self._lock:
                self._running -= 1
                torch.set_num_threads(self._saved)


_torch_threads = _TorchThreads()


def _finite(value: Any) -> float:
    """``value`` as a finite float, else NaN, so every range check on it fails (inf, NaN, a bool, a string, not a
    real number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


def _load_static_model(model: Any) -> Any:
    """A StaticModel from a folder path or an object that already is one."""
    if isinstance(model, (str, os.PathLike)):
        from static_model import StaticModel

        return StaticModel.from_pretrained(model)
    for attribute in ("tokenize", "embedding_matrix", "tokenizer"):
        if not hasattr(model, attribute):
            raise TypeError(
                f"model must be a static model folder or a StaticModel, got {type(model).__name__} (no {attribute!r})."
            )
    return model


class StaticModelClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a static embedding model and an MLP head for text classification (scikit-learn API).

    The network averages the static model's token vectors (an ``EmbeddingBag`` over flat ids and offsets, using the
    static model's own tokenization), optionally L2-normalizes, and applies an MLP head. The token table is trained
    too unless ``freeze_embeddings``. Single-label targets use cross-entropy; multi-label targets (a list of label
    lists, or a 2-D 0/1 numpy indicator matrix) use binary cross-entropy. Early stopping watches a stratified
    validation split cut from the training data and restores the best weights. ``to_pipeline()`` exports a
    :class:`static_model.pipeline.StaticPipeline` that predicts the same labels with numpy only.

    Parameters
    ----------
    model : str | os.PathLike | StaticModel
        The static model to start from: a folder or an object. It is never modified.
    hidden_dim, n_layers, activation, dropout
        The MLP head: ``n_layers`` hidden layers of ``hidden_dim`` units (0 = a linear head).
    normalize : bool
        L2-normalize the pooled vector before the head.
    freeze_embeddings : bool
        Keep the token table fixed and train only the head.
    learning_rate, weight_decay, batch_size
        AdamW settings; ``batch_size=None`` picks 32..256 from the training set size.
    max_epochs, min_epochs, early_stopping_patience
        Training length (``min_epochs <= max_epochs``). ``early_stopping_patience=None`` trains ``max_epochs`` and
        keeps the best epoch if there is a validation split.
    validation_fraction : float | int | None
        Held-out part of ``X`` for early stopping (a fraction, or a number of texts); 0/None: no validation split.
    class_weight : None | "balanced" | dict
        Cross-entropy class weights (single-label) or BCE ``pos_weight`` per label (multi-label). ``"balanced"``
        counts each text by its sample weight, as scikit-learn does.
    threshold : float
        Multi-label decision threshold on each label's probability.
    max_length : int | None
        Token limit per text; None keeps the static model's own.
    random_state : int | None
        Seed for the split, the initialization and the batch order: the same seed gives the same model (None: a new
        seed each fit).
    n_threads : int | None
        torch threads while training (a process-wide setting, restored afterwards, also after fits in several threads
        at once). The steps are small, so one thread is usually fastest, and much faster than several on a busy
        machine; None keeps torch's setting.
    verbose : int | bool
        0: silent; 1: a progress bar over epochs.

    Integer parameters must be ints (``True`` and ``3.0`` are refused); all parameters are checked at ``fit``.
    ``fit(X, y, sample_weight=None)`` takes one finite weight >= 0 per text: the training loss and the validation
    loss and accuracy (early stopping) become weighted means, so only the ratios count and equal weights give the
    model no weights give; a zero weight drops the text as if it were not in ``X``.
    """

    def __init__(
        self,
        model: Any = None,
        *,
        hidden_dim: int = 512,
        n_layers: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
        normalize: bool = True,
        freeze_embeddings: bool = False,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int | None = None,
        max_epochs: int = 50,
        min_epochs: int = 1,
        early_stopping_patience: int | None = 5,
        validation_fraction: float | int | None = 0.1,
        class_weight: Any = None,
        threshold: float = 0.5,
        max_length: int | None = None,
        random_state: int | None = 42,
        n_threads: int | None = 1,
        verbose: int | bool = 1,
    ) -> None:
        self.model = model
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.activation = activation
        self.dropout = dropout
        self.normalize = normalize
        self.freeze_embeddings = freeze_embeddings
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.early_stopping_patience = early_stopping_patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.threshold = threshold
        self.max_length = max_length
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ scikit-learn plumbing
    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.multi_output = True
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_label = True
        return tags

    def _check_params(self) -> None:
        """Refuse a parameter of the wrong type or range (bools and floats for the int parameters too)."""
        if self.model is None:
            raise ValueError(
                "StaticModelClassifier needs a static model: StaticModelClassifier(model=folder_or_model)."
            )
        for name, low, optional in _INT_PARAMS:
            value = getattr(self, name)
            if not ((optional and value is None) or (is_int(value) and value >= low)):
                raise InvalidParameterError(
                    f"{name} must be {'None or ' if optional else ''}an int >= {low}, got {value!r}."
                )
        if self.min_epochs > self.max_epochs:
            raise InvalidParameterError(
                f"min_epochs must be <= max_epochs: min_epochs={self.min_epochs!r} is above "
                f"max_epochs={self.max_epochs!r}."
            )
        if self.random_state is not None and self.random_state >= 2**32:  # numpy's and scikit-learn's seed range
            raise InvalidParameterError(f"random_state must be None or an int < 2**32, got {self.random_state!r}.")
        if not (isinstance(self.verbose, (bool, np.bool_)) or (is_int(self.verbose) and self.verbose >= 0)):
            raise InvalidParameterError(f"verbose must be a bool or an int >= 0, got {self.verbose!r}.")
        for name in ("normalize", "freeze_embeddings"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise InvalidParameterError(f"{name} must be a bool, got {getattr(self, name)!r}.")
        checks = [
            ("activation", self.activation in ("relu", "tanh"), "'relu' or 'tanh'"),
            ("dropout", 0.0 <= _finite(self.dropout) < 1.0, "a number in [0, 1)"),
            ("learning_rate", 0 < _finite(self.learning_rate), "a finite number > 0"),
            ("weight_decay", 0 <= _finite(self.weight_decay), "a finite number >= 0"),
            ("threshold", 0.0 < _finite(self.threshold) < 1.0, "a number in (0, 1)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InvalidParameterError(f"{name} must be {expected}, got {getattr(self, name)!r}.")
        vf = self.validation_fraction
        if vf is not None and not (
            (is_int(vf) and vf >= 0) or (isinstance(vf, (float, np.floating)) and 0.0 <= vf < 1.0)
        ):
            raise InvalidParameterError(
                f"validation_fraction must be a fraction in [0, 1), a count, or None, got {vf!r}."
            )

    # ------------------------------------------------------------------ fit / predict
    def _tokenize(self, static: Any, texts: list[str], max_length: int | None) -> TokenizedTexts:
        return TokenizedTexts(static.tokenize(texts, max_length=max_length))

    def _fitted_max_length(self) -> int | None:
        """The token limit the network was trained with (``None``: every token), fixed at ``fit``: ``set_params`` after
        ``fit`` changes nothing until the next ``fit``, as for the network's other settings."""
        if hasattr(self, "max_length_"):
            return self.max_length_
        # fitted before max_length_ was recorded (an old pickle): what fit used then
        base = self.static_model_
        return self.max_length if self.max_length is not None else getattr(base, "max_length", None)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> StaticModelClassifier:
        """Train on texts ``X`` and labels ``y``, optionally weighting each text's loss; returns ``self``."""
        self._check_params()
        texts = check_texts(X, allow_empty_texts=False)
        if not texts:
            raise ValueError("X is empty: cannot fit on zero texts.")
        targets = encode_targets(y, len(texts))
        weights = check_sample_weight(sample_weight, len(texts))
        if weights is not None:
            # A zero weight removes the text (scikit-learn's contract: not even the split or the batches see it);
            # the classes stay those of all of y.
            kept = np.flatnonzero(weights > 0)
            if len(kept) < len(texts):
                texts, targets, weights = [texts[i] for i in kept], targets.subset(kept), weights[kept]
            if (weights == weights[0]).all():  # equal weights are no weights: the loss is a weighted mean
                weights = None
        class_weights = check_class_weight(self.class_weight, targets, weights)

        import torch

        from distill.classifier.training import auto_batch_size

        static = _load_static_model(self.model)
        max_length = self.max_length if self.max_length is not None else getattr(static, "max_length", None)
        max_length = None if max_length is None else int(max_length)
        tokens = self._tokenize(static, texts, max_length)
        if self.random_state is not None:
            seed = int(self.random_state)
        else:
            seed = int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
        train_rows, val_rows = validation_split(targets, self.validation_fraction, seed)
        batch_size = int(self.batch_size) if self.batch_size else auto_batch_size(len(train_rows))
        started = time.perf_counter()
        with _torch_threads(torch, None if self.n_threads is None else int(self.n_threads)):
            network, history = self._train(
                torch, static, tokens, targets, class_weights, train_rows, val_rows, batch_size, seed, weights
            )
        self.static_model_ = static
        self.network_ = network
        self.max_length_ = max_length
        self.classes_ = targets.classes
        self.multilabel_ = targets.multilabel
        self.label_format_ = targets.label_format
        self.history_ = history.as_dict()
        self.n_epochs_ = len(history.train_loss)
        self.best_epoch_ = history.best_epoch or self.n_epochs_
        self.batch_size_ = batch_size
        self.fit_time_ = time.perf_counter() - started
        return self

    def _train(
        self,
        torch: ModuleType,
        static: Any,
        tokens: TokenizedTexts,
        targets: Targets,
        class_weights: np.ndarray | None,
        train_rows: np.ndarray,
        val_rows: np.ndarray | None,
        batch_size: int,
        seed: int,
        sample_weight: np.ndarray | None,
    ) -> tuple[BagOfTokensClassifier, History]:
        from distill.classifier.model import BagOfTokensClassifier
        from distill.classifier.training import train

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = BagOfTokensClassifier(
                static.embedding_matrix(),
                targets.n_classes,
                hidden_dim=int(self.hidden_dim),
                n_layers=int(self.n_layers),
                activation=self.activation,
                dropout=float(self.dropout),
                normalize=bool(self.normalize),
                freeze_embeddings=bool(self.freeze_embeddings),
            )
            history = train(
                network,
                tokens,
                targets.y,
                train_rows,
                val_rows,
                multilabel=targets.multilabel,
                class_weights=class_weights,
                learning_rate=float(self.learning_rate),
                weight_decay=float(self.weight_decay),
                batch_size=batch_size,
                max_epochs=int(self.max_epochs),
                min_epochs=int(self.min_epochs),
                patience=None if self.early_stopping_patience is None else int(self.early_stopping_patience),
                threshold=float(self.threshold),
                seed=seed,
                verbose=bool(self.verbose),
                sample_weight=sample_weight,
            )
        return network, history

    def _check_fitted(self) -> None:
        check_is_fitted(
            self,
            ("network_", "classes_"),
            msg="This StaticModelClassifier is not fitted yet: call fit(X, y) before predict, score or to_pipeline.",
        )

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, shape (n, n_classes)."""
        self._check_fitted()
        from distill.classifier.training import predict_logits

        texts = check_texts(X)
        return predict_logits(self.network_, self._tokenize(self.static_model_, texts, self._fitted_max_length()))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax), or per-label probabilities (sigmoid) for multi-label."""
        logits = self.decision_function(X).astype(np.float64)
        if self.multilabel_:
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> Any:
        """Labels in the form ``y`` had: an array of labels, a list of label tuples, or a 0/1 indicator matrix."""
        logits = self.decision_function(X)
        if not self.multilabel_:
            return self.classes_[logits.argmax(axis=1)]
        # the decision rule, not the network: set_params(threshold=...) after fit applies at once, checked here
        # (at 1 or more no label would pass, silently)
        threshold = check_threshold(self.threshold)
        # sigmoid(z) > t  <=>  z > logit(t): no overflow, and the same rule as the numpy pipeline.
        hits = logits > np.log(threshold / (1.0 - threshold))
        if self.label_format_ == INDICATOR:
            return hits.astype(np.int64)
        labels = self.classes_.tolist()
        return [tuple(labels[j] for j in np.flatnonzero(row)) for row in hits]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy; for multi-label, subset accuracy (every label of a text right).

        ``y`` and ``sample_weight`` are checked as ``fit`` checks them (a missing label is a :class:`MissingLabelError`
        naming its row), ``y`` in the form the classifier was trained with; a true label the classifier does not know
        makes its text wrong."""
        self._check_fitted()
        from sklearn.metrics import accuracy_score

        texts = check_texts(X)  # y and the weights are checked before the texts are predicted, as in fit
        weights = check_sample_weight(sample_weight, len(texts), purpose="score")
        if self.label_format_ == INDICATOR:
            truth = indicator_rows(y, len(texts), len(self.classes_))
            return float(accuracy_score(truth, self.predict(texts), sample_weight=weights))
        if not self.multilabel_:
            labels = single_labels(y, len(texts), self.classes_)
            right = np.array([p == t for p, t in zip(self.predict(texts).tolist(), labels)], dtype=bool)
        else:
            # Compared as sets: a true label the model does not know makes the text wrong (a binarizer over classes_
            # dropped it with a warning, and counted the text right), and a plain string is no label list.
            truths = label_sets(y, len(texts), self.classes_)
            right = np.array([set(p) == t for p, t in zip(self.predict(texts), truths)], dtype=bool)
        return float(accuracy_score(np.ones(len(right), dtype=bool), right, sample_weight=weights))

    # ------------------------------------------------------------------ export
    def to_pipeline(self) -> Any:
        """The fine-tuned table and head as a numpy-only :class:`static_model.pipeline.StaticPipeline`."""
        self._check_fitted()
        from static_model import StaticModel
        from static_model.pipeline import StaticPipeline

        table, layers = self.network_.export()
        base = self.static_model_
        # Keep the base model's metadata; drop what describes the stored table (it is a new float32 table now).
        structural = ("normalize", "dtype", "dim", "vocab_size", "max_length", "contrast")
        config = {k: v for k, v in dict(getattr(base, "config", None) or {}).items() if k not in structural}
        config["classifier"] = {"source": "distill.classifier.StaticModelClassifier", "fine_tuned": True}
        # The network's own settings, not the estimator's parameters: set_params after fit must not export a head
        # that runs another forward pass than the one it was trained in.
        normalize, activation = bool(self.network_.normalize), str(self.network_.activation)
        # the network pools with a plain mean (EmbeddingBag), so the exported model does too
        kwargs: dict[str, Any] = {"config": config, "normalize": normalize, "contrast": 0.0}
        # The limit the texts were tokenized with in training, None included: left out, StaticModel would fall back
        # to its default (512 tokens) and the pipeline would cut long texts the network saw whole.
        kwargs["max_length"] = config["max_length"] = self._fitted_max_length()
        model = StaticModel(table, base.tokenizer, **kwargs)
        labels = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        return StaticPipeline(
            model,
            layers,
            labels=labels,
            multilabel=self.multilabel_,
            threshold=float(self.threshold),
            activation=activation,
            normalize=normalize,
            label_format=self.label_format_ if self.multilabel_ else SINGLE,
        )

    def save_pretrained(self, path: str | os.PathLike, **kwargs: Any) -> Any:
        """Save the numpy pipeline folder (see :meth:`to_pipeline`)."""
        return self.to_pipeline().save_pretrained(path, **kwargs)
