"""Refinement training (torch, stage 4 of ``distill.refine``): fit a static table and per-token weights so that the
mean of a passage's weighted rows matches the teacher's (PCA'd) vector of that passage.

A new loss goes in two places: its name in ``LOSSES`` and its formula in ``loss_function``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from distill.refine.targets import TargetShards
from static_model.validation import is_int

if TYPE_CHECKING:
    import torch

LOSSES = ("cosine", "mse")  # the names loss_function knows
INITS = ("linear-map", "table")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``train_table``; checked when built (a bad value raises naming its field)."""

    loss: str = "mse"
    init: str = "linear-map"
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    # per-token weights; default learning_rate / 10: at 10x they overfit the short corpus sentences and cost
    # SciFact nDCG@10 2 points (benchmarks/results/refine_variants.md)
    weight_learning_rate: float | None = None
    patience: int = 3
    validation_fraction: float = 0.1
    max_validation: int = 5_000
    seed: int = 0
    device: str | None = None
    max_length: int | None = None  # tokens read of each passage; None: the model's, capped at the teacher's window
    # target rows (passages) in memory at once while training (raw and projected float32 rows), whatever the
    # corpus size; a training split that fits one buffer is read once and shuffled as a whole
    buffer_passages: int = 100_000

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        for name in ("epochs", "batch_size", "patience", "buffer_passages", "max_validation"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:  # True is an int to Python, and 3.0 silently an epoch count
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not _finite_positive(self.learning_rate):
            raise ValueError(f"learning_rate must be a finite positive number, got {self.learning_rate!r}")
        if self.weight_learning_rate is not None and not _finite_positive(self.weight_learning_rate):
            raise ValueError("weight_learning_rate must be a finite positive number or None, got "
                             f"{self.weight_learning_rate!r}")
        if self.max_length is not None and (not is_int(self.max_length) or self.max_length < 1):
            raise ValueError(f"max_length must be a positive int or None, got {self.max_length!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")


def _finite_positive(value: object) -> bool:
    """``value`` is a real number (not a bool), finite and above 0: an infinite learning rate trains NaN rows."""
    return bool(isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
                and math.isfinite(value) and value > 0)


class TrainingDivergedError(ValueError):
    """Training produced a NaN or infinite loss (a learning rate too high for the data): refused, nothing is returned,
    rather than keeping the epoch before the divergence without a word."""

    def __init__(self, epoch: int, loss: float, learning_rate: float) -> None:
        self.epoch, self.loss, self.learning_rate = epoch, loss, learning_rate
        super().__init__(f"refinement training diverged: the loss became {loss} in epoch {epoch}; nothing was saved. "
                         f"Lower the learning rate (train.learning_rate / --learning-rate, now {learning_rate:g}; or "
                         "train.weight_learning_rate / --weight-learning-rate)")


@dataclass
class TrainResult:
    """What ``train_table`` fitted, and how the held-out loss and cosine went."""

    table: np.ndarray  # (vocab, dim) float32, per-token weights folded in
    weights: np.ndarray  # (vocab,) the learned per-token weights
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    initial_val_loss: float = float("nan")
    best_val_loss: float = float("nan")
    initial_val_cosine: float = float("nan")
    best_val_cosine: float = float("nan")
    train_seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0


def loss_function(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss ``(predictions, targets) -> scalar`` named ``kind`` (one of ``LOSSES``)."""
    import torch

    if kind == "cosine":
        return lambda p, y: (1.0 - torch.nn.functional.cosine_similarity(p, y, dim=-1)).mean()
    if kind == "mse":
        return lambda p, y: ((p - y) ** 2).sum(-1).mean()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def linear_map(blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], ridge: float = 1e-3
               ) -> tuple[np.ndarray, np.ndarray]:
    """Affine least squares ``x @ W + b ~ y`` (ridge-regularised, float64) over row blocks: ``blocks()`` yields
    ``(x, y)`` pairs of rows and is called twice (the means, then the centred sums), so no block is kept."""
    n, sx, sy = 0, 0.0, 0.0
    for x, y in blocks():
        n += len(x)
        sx = sx + x.astype(np.float64).sum(0)
        sy = sy + y.astype(np.float64).sum(0)
    if n == 0:
        raise ValueError("linear_map needs at least one row")
    mx, my = np.asarray(sx) / n, np.asarray(sy) / n
    gram = np.zeros((len(mx), len(mx)))
    cross = np.zeros((len(mx), len(my)))
    for x, y in blocks():
        xc, yc = x.astype(np.float64) - mx, y.astype(np.float64) - my
        gram += xc.T @ xc
        cross += xc.T @ yc
    gram[np.diag_indices_from(gram)] += ridge * max(np.trace(gram) / len(gram), 1e-12)
    w = np.linalg.solve(gram, cross)
    b = my - mx @ w
    return w.astype(np.float32), b.astype(np.float32)


def train_table(
    table: np.ndarray,
    ids: list[np.ndarray],
    targets: np.ndarray | TargetShards,
    config: TrainConfig | None = None,
    *,
    show_progress_bar: bool = True,
) -> TrainResult:
    """Fit ``table`` (vocab, dim) and per-token weights so that ``mean_t(w_t * table[t])`` matches the targets
    (n, dim) of each token-id array of ``ids``. Passages without tokens are left out.

    ``targets`` is an array or ``TargetShards`` (the featurize cache, memory-mapped): training reads at most
    ``config.buffer_passages`` target rows at a time. Each epoch shuffles the pieces of the chunks (at most a buffer
    long each), fills a buffer with pieces, shuffles its passages and steps through them; when the training split
    fits one buffer it is read once and every epoch is a shuffle of the whole split.
    """
    import torch

    cfg = config or TrainConfig()
    cfg.check()
    shards = targets if isinstance(targets, TargetShards) else TargetShards.from_array(targets)
    if len(ids) != len(shards):
        raise ValueError(f"{len(ids)} tokenized passages but {len(shards)} targets")
    if shards.dim != table.shape[1]:
        raise ValueError(f"targets have {shards.dim} dims but the table {table.shape[1]}")
    valid = np.flatnonzero(np.fromiter((len(x) > 0 for x in ids), dtype=bool, count=len(ids)))
    n = len(valid)
    if n < 2:
        raise ValueError("Refinement needs at least 2 passages with known tokens.")
    rng = np.random.default_rng(cfg.seed)
    piece_rng = np.random.default_rng([cfg.seed, 1])  # the order of the chunk pieces, apart from the passages'
    torch.manual_seed(cfg.seed)
    perm = valid[rng.permutation(n)]  # global row indices
    n_val = min(max(1, int(round(n * cfg.validation_fraction))), cfg.max_validation, n - 1)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pieces = _pieces(shards.offsets, cfg.buffer_passages, train_idx)

    table = np.asarray(table, dtype=np.float32)
    if cfg.init == "linear-map":
        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            # 4096 passages a block: their token rows (passages x tokens x dim) are the largest array held here
            for piece in pieces:
                for s in range(0, len(piece), 4096):
                    rows = piece[s : s + 4096]
                    flat, off = _flat([ids[i] for i in rows])
                    yield np.add.reduceat(table[flat], off[:-1], axis=0) / np.diff(off)[:, None], shards.read(rows)

        w_map, b_map = linear_map(blocks)
        table = table @ w_map + b_map
    emb = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(table)).to(device))
    wts = torch.nn.Parameter(torch.ones(table.shape[0], device=device))
    wlr = cfg.weight_learning_rate if cfg.weight_learning_rate is not None else cfg.learning_rate / 10
    # sparse row gradients (SparseAdam) for the table: a step costs the rows of the batch, not the vocabulary
    opt_rows = torch.optim.SparseAdam([emb], lr=cfg.learning_rate)
    opt_wts = torch.optim.Adam([wts], lr=wlr)
    loss_fn = loss_function(cfg.loss)

    def batch_tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat, off = _flat([ids[i] for i in idx])
        lens = np.diff(off)
        inv = np.repeat(1.0 / lens, lens).astype(np.float32)
        return (torch.from_numpy(flat).to(device), torch.from_numpy(off[:-1]).to(device),
                torch.from_numpy(inv).to(device))

    def forward(flat: torch.Tensor, off: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding_bag(flat, emb, off, mode="sum", per_sample_weights=wts[flat] * inv,
                                                 sparse=emb.requires_grad and torch.is_grad_enabled())

    val_batches = [val_idx[s : s + 4096] for s in range(0, n_val, 4096)]
    val_tensors = [batch_tensors(b) for b in val_batches]
    val_targets = [torch.from_numpy(shards.read(b)).to(device) for b in val_batches]

    def evaluate() -> tuple[float, float]:
        tot_loss = tot_cos = 0.0
        with torch.no_grad():
            for b, t, y in zip(val_batches, val_tensors, val_targets):
                p = forward(*t)
                tot_loss += float(loss_fn(p, y)) * len(b)
                tot_cos += float(torch.nn.functional.cosine_similarity(p, y, dim=-1).sum())
        return tot_loss / n_val, tot_cos / n_val

    whole: tuple[np.ndarray, torch.Tensor] | None = None  # the training split, when it fits one buffer

    def buffers() -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(global rows in train_idx order, their targets) of each buffer of this epoch."""
        nonlocal whole
        if len(pieces) == 1:
            if whole is None:
                whole = (pieces[0], torch.from_numpy(shards.read(pieces[0])).to(device))
            yield whole
            return
        group: list[np.ndarray] = []
        size = 0
        for p in piece_rng.permutation(len(pieces)):
            if group and size + len(pieces[p]) > cfg.buffer_passages:
                yield _buffer(group, shards, device)
                group, size = [], 0
            group.append(pieces[p])
            size += len(pieces[p])
        if group:
            yield _buffer(group, shards, device)

    init_loss, init_cos = evaluate()
    if not (math.isfinite(init_loss) and math.isfinite(init_cos)):
        raise ValueError("refinement cannot start: the initial table gives NaN or infinite predictions on the held-out "
                         "passages (a base table with NaN or huge rows?); nothing was trained or saved")
    best = (init_loss, init_cos, 0, emb.detach().clone(), wts.detach().clone())
    history: list[dict] = [{"epoch": 0, "val_loss": init_loss, "val_cosine": init_cos}]
    steps_per_epoch = (len(train_idx) + cfg.batch_size - 1) // cfg.batch_size  # +1 a buffer at most
    bar = None
    if show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps_per_epoch * cfg.epochs, desc="Refine (train)", unit=" step")
    t0 = time.perf_counter()
    bad = 0
    try:
        for epoch in range(1, cfg.epochs + 1):
            tot = 0.0
            for rows, y_buf in buffers():
                order = rng.permutation(len(rows))
                for s in range(0, len(order), cfg.batch_size):
                    b = order[s : s + cfg.batch_size]
                    p = forward(*batch_tensors(rows[b]))
                    loss = loss_fn(p, y_buf[torch.from_numpy(b).to(device)])
                    opt_rows.zero_grad(set_to_none=True)
                    opt_wts.zero_grad(set_to_none=True)
                    loss.backward()
                    step_loss = float(loss.detach())
                    if not math.isfinite(step_loss):  # else the epoch's NaN is silently 'not better' and dropped
                        raise TrainingDivergedError(epoch, step_loss, cfg.learning_rate)
                    opt_rows.step()
                    opt_wts.step()
                    tot += step_loss * len(b)
                    if bar is not None:
                        bar.update(1)
            vl, vc = evaluate()
            if not (math.isfinite(vl) and math.isfinite(vc)):
                raise TrainingDivergedError(epoch, vl, cfg.learning_rate)
            history.append({"epoch": epoch, "train_loss": tot / len(train_idx), "val_loss": vl, "val_cosine": vc,
                            "seconds": round(time.perf_counter() - t0, 2)})
            if bar is not None:
                bar.set_postfix(val_loss=f"{vl:.4f}", val_cos=f"{vc:.4f}")
            if vl < best[0] - 1e-6:
                best = (vl, vc, epoch, emb.detach().clone(), wts.detach().clone())
                bad = 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    finally:
        if bar is not None:
            bar.close()
    best_w = best[4].cpu().numpy().astype(np.float32)
    out = best[3].cpu().numpy() * best_w[:, None]
    return TrainResult(table=out.astype(np.float32), weights=best_w, history=history, best_epoch=best[2],
                       initial_val_loss=init_loss, best_val_loss=best[0], initial_val_cosine=init_cos,
                       best_val_cosine=best[1], train_seconds=time.perf_counter() - t0, n_train=len(train_idx),
                       n_val=n_val)


def _pieces(offsets: np.ndarray, buffer: int, train_idx: np.ndarray) -> list[np.ndarray]:
    """The training rows (in ``train_idx`` order) of each piece of a chunk: chunks cut into pieces of at most
    ``buffer`` rows; a split that fits one buffer is one piece."""
    if len(train_idx) <= buffer:
        return [train_idx]
    starts = [s for c in range(len(offsets) - 1) for s in range(int(offsets[c]), int(offsets[c + 1]), buffer)]
    piece_of = np.searchsorted(np.asarray(starts), train_idx, side="right") - 1
    order = np.argsort(piece_of, kind="stable")
    splits = np.cumsum(np.bincount(piece_of, minlength=len(starts)))[:-1]
    return [train_idx[np.sort(pos)] for pos in np.split(order, splits) if len(pos)]


def _buffer(group: list[np.ndarray], shards: TargetShards, device: str) -> tuple[np.ndarray, torch.Tensor]:
    import torch

    rows = np.concatenate(group)
    return rows, torch.from_numpy(shards.read(rows)).to(device)


def _flat(ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, dtype=np.int64)
    return flat, offsets
