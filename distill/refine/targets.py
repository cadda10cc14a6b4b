"""The teacher's targets as row chunks (memory-mapped cache files, or views of an array), read a few rows at a time.

Refinement never needs every target in memory: the PCA of the targets is fit in passes over the chunks
(``fit_pca``: the float64 mean, then ``distill.pca.pca_basis_from_blocks`` over 4096-row blocks, the PCA that
``distill.pca.pca_basis`` runs on a whole array), and training reads the rows of one buffer at a time
(``TargetShards.read``), projected on that basis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from distill.pca import pca_basis_from_blocks, project

PCA_BLOCK = 4096  # rows a float64 block of the PCA passes (distill.pca's chunk)


class TargetShards:
    """Rows ``(n, dim)`` float32 held as chunks (e.g. ``np.load(..., mmap_mode="r")`` of the featurize cache);
    optionally projected on a PCA basis as they are read (``projected``)."""

    def __init__(self, chunks: Sequence[np.ndarray], *, basis: tuple[np.ndarray, np.ndarray, bool] | None = None):
        if not chunks:
            raise ValueError("TargetShards needs at least one chunk of targets")
        dims = {c.shape[1] if c.ndim == 2 else -1 for c in chunks}
        if len(dims) != 1 or -1 in dims:
            raise ValueError(f"target chunks must be 2-d with one width, got shapes {[c.shape for c in chunks]}")
        self.chunks = list(chunks)
        self.offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in chunks], out=self.offsets[1:])
        self.basis = basis
        self.raw_dim = int(dims.pop())

    @classmethod
    def from_array(cls, targets: np.ndarray, chunk_rows: int = 10_000) -> TargetShards:
        """Views of an in-memory ``(n, dim)`` array, ``chunk_rows`` rows a chunk."""
        targets = np.asarray(targets, dtype=np.float32)
        if targets.ndim != 2:
            raise ValueError(f"targets must be 2-d (passages, dims), got shape {targets.shape}")
        return cls([targets[s : s + chunk_rows] for s in range(0, max(len(targets), 1), chunk_rows)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        """Width of the rows ``read`` returns (the PCA dims once projected)."""
        return self.raw_dim if self.basis is None else int(self.basis[1].shape[1])

    def projected(self, mean: np.ndarray, comps: np.ndarray, *, keep_mean: bool) -> TargetShards:
        """The same chunks, read as ``distill.pca.project(rows, mean, comps, keep_mean=keep_mean)``."""
        return TargetShards(self.chunks, basis=(mean, comps, keep_mean))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The (projected) targets of the global row indices ``rows``, float32, in the order given; only those
        rows of the chunks are read."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.raw_dim), dtype=np.float32)
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"target rows must be in [0, {len(self)})")
        for c in np.unique(which):
            at = np.flatnonzero(which == c)
            local = rows[at] - self.offsets[c]
            order = np.argsort(local, kind="stable")  # increasing offsets: sequential reads of a memory map
            out[at[order]] = self.chunks[c][local[order]]
        return self._transform(out)

    def blocks(self, size: int = PCA_BLOCK) -> Iterator[np.ndarray]:
        """Consecutive raw (unprojected) blocks of ``size`` rows over all chunks, in row order."""
        for start in range(0, len(self), size):
            yield self.read_range(start, min(start + size, len(self)), raw=True)

    def read_range(self, start: int, stop: int, *, raw: bool = False) -> np.ndarray:
        """Rows ``start:stop`` (projected unless ``raw``)."""
        parts = []
        c = int(np.searchsorted(self.offsets, start, side="right") - 1)
        while start < stop:
            end = min(stop, int(self.offsets[c + 1]))
            parts.append(np.asarray(self.chunks[c][start - self.offsets[c] : end - self.offsets[c]], dtype=np.float32))
            start, c = end, c + 1
        out = np.concatenate(parts) if parts else np.zeros((0, self.raw_dim), dtype=np.float32)
        return out if raw else self._transform(out)

    def to_array(self) -> np.ndarray:
        """Every (projected) row in memory: for small corpora and experiments."""
        return self.read_range(0, len(self))

    def _transform(self, x: np.ndarray) -> np.ndarray:
        if self.basis is None:
            return x
        mean, comps, keep_mean = self.basis
        return project(x, mean, comps, keep_mean=keep_mean)


def fit_pca(targets: TargetShards, dims: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(mean, components (d, dims), explained variance ratio)`` of the raw targets, as
    ``distill.pca.pca_basis`` computes them on the whole array, in three passes over ``PCA_BLOCK``-row blocks: the
    float64 mean here, then ``distill.pca.pca_basis_from_blocks`` (centred covariance; signs)."""
    n, d = len(targets), targets.raw_dim
    if not 1 <= dims <= d:
        raise ValueError(f"pca dims={dims} must be between 1 and the targets' width {d}.")
    if dims > n:
        raise ValueError(f"pca dims={dims} is larger than the number of targets ({n}).")
    total = np.zeros(d, dtype=np.float64)
    for block in targets.blocks():
        # one sequential float64 sum over all rows, as numpy's x.mean(axis=0, dtype=float64) adds them
        total = np.add.reduce(np.concatenate([total[None], block.astype(np.float64)]), axis=0)
    mean = total / n
    comps, ratio = pca_basis_from_blocks(targets.blocks, n, mean, dims)
    return mean, comps, ratio
