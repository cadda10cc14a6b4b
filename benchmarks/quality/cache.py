"""On-disk embedding cache: per (model fingerprint, text sha1), written in chunks so an interrupted run resumes.

Layout: ``<root>/<fingerprint>/chunk-<id>.npz`` with ``hashes`` (sha1 hex of each text, ``S40``) and ``emb``
(float32 (n, d)). A chunk is written whole or not at all (``static_model.atomic_file``) as soon as it is encoded.

A teacher's fingerprint is refinement's (``teacher-<distill.refine.featurize.teacher_fingerprint>``: its configs,
tokenizer, pooling and weights, not the name or folder it was loaded by), so two different teachers at one path
never share embeddings. An ``st:`` model is keyed the same way (``st-<teacher fingerprint>``), or, when distill
cannot read its folder (a Dense module, sharded weights, no local folder), by a hash of the model as loaded
(``benchmarks.quality.encoders.st_fingerprint``); never by its name. Caches made before 2026-12-04
(``teacher-<name>-<file hash>``, ``st-<name>-<file hash>``) are not read: each such model is encoded once more, and
the old folders can be deleted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from static_model.atomic_file import atomic_write


class EncoderOutputError(ValueError):
    """An encoder returned something other than one finite vector of one width per text (NaN or infinite values, a
    wrong row count); ``python -m benchmarks`` prints it as one ``error:`` line (exit 2), and nothing is cached."""


def text_hash(text: str) -> str:
    """The sha1 hex digest of ``text`` (UTF-8): its key in the cache."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    """``$BENCHMARKS_CACHE``, else ``.cache/benchmarks`` in the working directory."""
    env = os.environ.get("BENCHMARKS_CACHE")
    return Path(env) if env else Path.cwd() / ".cache" / "benchmarks"


class EmbeddingCache:
    """One model's embeddings on disk under ``root/<fingerprint>``, by text hash (see the module docstring)."""
    def __init__(self, root: str | os.PathLike, fingerprint: str):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in fingerprint)
        self.dir = Path(root) / safe
        self._index: dict[bytes, tuple[Path, int]] | None = None
        self._chunks: dict[Path, np.ndarray] = {}

    # ------------------------------------------------------------------ index
    def _load_index(self) -> dict[bytes, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            if self.dir.is_dir():
                for p in sorted(self.dir.glob("chunk-*.npz")):
                    try:
                        with np.load(p) as z:
                            hashes = z["hashes"]
                    except Exception:  # a truncated file from a killed run: ignore it, it gets re-encoded
                        continue
                    for i, h in enumerate(hashes):
                        self._index[bytes(h)] = (p, i)
        return self._index

    def __len__(self) -> int:
        return len(self._load_index())

    def _chunk(self, p: Path) -> np.ndarray:
        if p not in self._chunks:
            with np.load(p) as z:
                self._chunks[p] = z["emb"]
        return self._chunks[p]

    def _write(self, hashes: list[bytes], emb: np.ndarray) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        cid = hashlib.sha1(b"".join(hashes)).hexdigest()[:16]
        final = self.dir / f"chunk-{cid}.npz"
        atomic_write(final, lambda handle: np.savez(handle, hashes=np.asarray(hashes, dtype="S40"),
                                                    emb=np.asarray(emb, dtype=np.float32)))
        return final

    @staticmethod
    def _check_rows(emb: np.ndarray, texts: list[str], dim: int | None) -> int:
        """``emb`` is one finite row of ``dim`` numbers (any, for the first chunk) per text, before it is stored: a
        ``EncoderOutputError`` otherwise, and nothing written (a stored chunk is read back by every later run)."""
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise EncoderOutputError(f"encoder returned shape {emb.shape} for {len(texts)} texts; nothing cached")
        if dim is not None and emb.shape[1] != dim:
            raise EncoderOutputError(f"encoder returned {emb.shape[1]} dimensions, the cached vectors of this model "
                                     f"have {dim}; nothing cached")
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise EncoderOutputError(f"encoder returned non-finite values (NaN or infinite) for {int(bad.sum())} "
                                     f"of {len(texts)} texts, the first {texts[first]!r:.80}; nothing cached")
        return int(emb.shape[1])

    # ------------------------------------------------------------------ main entry
    def get_or_encode(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray], *,
                      chunk_size: int = 512, progress: bool = True, desc: str = "encode") -> np.ndarray:
        """Embeddings for ``texts`` (duplicates allowed): cached ones are read, the rest encoded chunk by chunk
        (longest texts first, so batches pad little) and stored after each chunk."""
        index = self._load_index()
        hashes = [text_hash(t).encode("ascii") for t in texts]
        missing: dict[bytes, str] = {}
        for h, t in zip(hashes, texts):
            if h not in index and h not in missing:
                missing[h] = t
        if missing:
            order = sorted(missing, key=lambda h: -len(missing[h]))
            dim = self._chunk(next(iter(index.values()))[0]).shape[1] if index else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(order), desc=desc, unit="text", leave=False)
            for start in range(0, len(order), chunk_size):
                hs = order[start:start + chunk_size]
                emb = np.asarray(encode([missing[h] for h in hs]), dtype=np.float32)
                dim = self._check_rows(emb, [missing[h] for h in hs], dim)
                p = self._write(hs, emb)
                self._chunks[p] = emb
                for i, h in enumerate(hs):
                    index[h] = (p, i)
                if bar is not None:
                    bar.update(len(hs))
            if bar is not None:
                bar.close()
        first = self._chunk(index[hashes[0]][0]) if hashes else np.zeros((0, 0), np.float32)
        out = np.empty((len(texts), first.shape[1] if first.ndim == 2 else 0), dtype=np.float32)
        for i, h in enumerate(hashes):
            p, row = index[h]
            out[i] = self._chunk(p)[row]
        return out
