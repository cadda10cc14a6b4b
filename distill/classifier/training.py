"""The training loop: shuffled mini-batches, Adam, early stopping on the validation split, best weights restored."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from distill.classifier.data import TokenizedTexts
from distill.classifier.model import BagOfTokensClassifier


@dataclass
class History:
    """Per-epoch losses and accuracy of a training run, and the epoch kept."""
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; None when there was no validation split (the last epoch is kept)
    stopped_early: bool = False

    def as_dict(self) -> dict:
        """The history as a JSON-ready dict."""
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }


def auto_batch_size(n_train: int) -> int:
    """About 30 steps an epoch for small sets, 32..256 texts a batch."""
    return int(min(256, max(32, 32 * round(n_train / 30 / 32))))


def make_loss(multilabel: bool, class_weights: np.ndarray | None) -> nn.Module:
    """BCE-with-logits for multi-label, cross-entropy otherwise, optionally class-weighted."""
    weight = None if class_weights is None else torch.from_numpy(np.asarray(class_weights, dtype=np.float32))
    if multilabel:
        return nn.BCEWithLogitsLoss(pos_weight=weight)
    return nn.CrossEntropyLoss(weight=weight)


def weighted_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, *, multilabel: bool,
                  class_weights: np.ndarray | None) -> torch.Tensor:
    """The loss of :func:`make_loss` as a mean weighted by each text's ``weight`` (float32, one per row).

    Cross-entropy: ``sum(w * cw[y] * l) / sum(w * cw[y])``, torch's class-weighted mean with sample weights; BCE:
    ``sum(w * l) / (sum(w) * n_labels)``. Equal weights give the unweighted loss.
    """
    cw = None if class_weights is None else torch.from_numpy(np.asarray(class_weights, dtype=np.float32))
    if multilabel:
        per_label = nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=cw, reduction="none")
        return (per_label.sum(dim=1) * weight).sum() / (weight.sum() * per_label.shape[1])
    per_text = nn.functional.cross_entropy(logits, target, weight=cw, reduction="none")  # cw[y] * l
    denominator = weight if cw is None else weight * cw[target]
    return (per_text * weight).sum() / denominator.sum()


def _batch_tensors(tokens: TokenizedTexts, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    ids, offsets = tokens.batch(rows)
    return torch.from_numpy(ids), torch.from_numpy(offsets)


@torch.no_grad()
def predict_logits(module: BagOfTokensClassifier, tokens: TokenizedTexts, batch_size: int = 4096) -> np.ndarray:
    """Logits for every text, in eval mode and batches of ``batch_size``; the training mode is restored."""
    was_training = module.training
    module.eval()
    out = []
    rows = np.arange(len(tokens))
    for start in range(0, len(rows), batch_size):
        ids, offsets = _batch_tensors(tokens, rows[start : start + batch_size])
        out.append(module(ids, offsets).numpy())
    module.train(was_training)
    n_out = module.linear_layers()[-1].out_features
    return np.concatenate(out) if out else np.zeros((0, n_out), dtype=np.float32)


def _accuracy(logits: np.ndarray, y: np.ndarray, multilabel: bool, threshold: float,
              weight: np.ndarray | None = None) -> float:
    if multilabel:  # subset accuracy, the same as sklearn's accuracy_score on indicator matrices
        predicted = 1.0 / (1.0 + np.exp(-logits)) > threshold
        right = (predicted == (y > 0.5)).all(axis=1)
    else:
        right = logits.argmax(axis=1) == y
    return float(right.mean() if weight is None else np.average(right, weights=weight))


def train(
    module: BagOfTokensClassifier,
    tokens: TokenizedTexts,
    y: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray | None,
    *,
    multilabel: bool,
    class_weights: np.ndarray | None,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    min_epochs: int,
    patience: int | None,
    threshold: float,
    seed: int,
    verbose: bool,
    sample_weight: np.ndarray | None = None,
) -> History:
    """Train ``module`` in place and leave it in eval mode with the best validation weights.

    ``sample_weight`` (one positive weight per text, or None) weights the training loss and the validation loss and
    accuracy that early stopping watches.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    unweighted = make_loss(multilabel, class_weights)
    target = torch.from_numpy(y)
    weights = None if sample_weight is None else torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))

    def loss_fn(logits: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        rows_t = torch.from_numpy(rows)
        if weights is None:
            return unweighted(logits, target[rows_t])
        return weighted_loss(logits, target[rows_t], weights[rows_t], multilabel=multilabel,
                             class_weights=class_weights)

    # The table gets sparse gradients (SparseAdam: only the rows in the batch move); the head gets AdamW.
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.AdamW(module.head.parameters(), lr=learning_rate, weight_decay=weight_decay)
    ]
    if module.embedding.weight.requires_grad:
        optimizers.append(torch.optim.SparseAdam([module.embedding.weight], lr=learning_rate))
    history = History()
    best_key: tuple[float, float] | None = None
    best_state = None
    since_best = 0
    best_acc, best_loss = -math.inf, math.inf
    steps = math.ceil(len(train_rows) / batch_size)

    # the loss of an epoch: the weighted mean over all training texts (each batch's mean times its weight)
    def batch_weight(rows: np.ndarray) -> float:
        return float(len(rows)) if sample_weight is None else float(sample_weight[rows].sum())

    total_weight = batch_weight(train_rows)
    val_tokens = None
    if val_rows is not None:
        val_tokens = TokenizedTexts([tokens.ids[tokens.offsets[r] : tokens.offsets[r + 1]] for r in val_rows])
        val_y = y[val_rows]
        val_weight = None if sample_weight is None else sample_weight[val_rows]

    bar = tqdm(range(max_epochs), desc="fit", unit="epoch", disable=not verbose, leave=False)
    for epoch in bar:
        module.train()
        order = rng.permutation(train_rows)
        total = 0.0
        for step in range(steps):
            rows = order[step * batch_size : (step + 1) * batch_size]
            ids, offsets = _batch_tensors(tokens, rows)
            loss = loss_fn(module(ids, offsets), rows)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            total += float(loss.detach()) * batch_weight(rows)
        history.train_loss.append(total / total_weight)
        if not math.isfinite(history.train_loss[-1]):
            raise ValueError(
                f"Training diverged in epoch {epoch + 1}: the training loss became {history.train_loss[-1]}. "
                "Lower learning_rate (or check the static model's table) and fit again."
            )
        postfix = {"loss": f"{history.train_loss[-1]:.4f}"}

        if val_tokens is not None and val_rows is not None:
            logits = predict_logits(module, val_tokens)
            with torch.no_grad():
                val_loss = float(loss_fn(torch.from_numpy(logits), val_rows))
            val_acc = _accuracy(logits, val_y, multilabel, threshold, val_weight)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            postfix.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.4f}")
            # Kept weights: best accuracy, loss breaking ties. Patience: runs out only when neither the accuracy nor
            # the loss improved (early multi-label epochs gain loss before any subset accuracy; late single-label
            # epochs can gain accuracy while the loss grows).
            key = (val_acc, -val_loss)
            if best_key is None or key > best_key:
                best_key, best_state = key, copy.deepcopy(module.state_dict())
                history.best_epoch = epoch + 1
            if val_acc > best_acc or val_loss < best_loss:
                since_best = 0
            else:
                since_best += 1
            best_acc, best_loss = max(best_acc, val_acc), min(best_loss, val_loss)
            if patience is not None and since_best >= patience and epoch + 1 >= min_epochs:
                history.stopped_early = True
                bar.set_postfix(postfix)
                break
        bar.set_postfix(postfix)
    bar.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    with torch.no_grad():  # a last step can overflow the weights after a finite loss
        if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
            raise ValueError("Training diverged: the network's weights became NaN or infinite. Lower learning_rate "
                             "and fit again.")
    module.eval()
    return history
