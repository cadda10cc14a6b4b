"""On-disk embedding cache: per (model fingerprint, text sha1), written in chunks so an interrupted run resumes.

Layout: ``<root>/<fingerprint>/chunk-<id>.npz`` with ``hashes`` (sha1 hex of each text, ``S40``) and ``emb``
(float32 (n, d)). A chunk is written whole or not at all (``static_model.atomic_file``) as soon as it is encoded.
A chunk that is readable but does not hold one hash and one finite row per text (a cut-short archive or array, a
wrong shape, NaN) is a cache miss: a warning names it once, its texts are encoded again and it is replaced. An error
of reading the file itself (permission denied) is raised as it is.

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
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from static_model.atomic_file import atomic_write, file_identity

# What ``np.load`` raises for an opened file whose content is not a whole archive of plain arrays: a cut-short or
# damaged zip (BadZipFile, zlib.error, a bad CRC), a cut-short array (ValueError, EOFError), object data (ValueError),
# a missing member (KeyError), a damaged header naming an unknown zip feature (NotImplementedError) or a seek past the
# file (OSError: EINVAL). A file that cannot be opened at all (permission denied) is an error, not a miss: it is opened
# outside this net.
CORRUPT_CHUNK_ERRORS = (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError, OSError)


class EncoderOutputError(ValueError):
    """An encoder returned something other than one finite vector of one width per text (NaN or infinite values, a
    wrong row count); ``python -m benchmarks`` prints it as one ``error:`` line (exit 2), and nothing is cached."""


class CorruptChunkError(ValueError):
    """A cache chunk file that is readable but does not hold whole, finite vectors: a cache miss, not an error."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"embedding cache chunk {path} is corrupted ({reason})")
        self.path = path


def _chunk_arrays(path: Path, names: Sequence[str]) -> list[np.ndarray]:
    """The arrays ``names`` of the chunk file ``path``; a ``CorruptChunkError`` naming it when its content cannot be
    read as such (errors of opening or reading the file itself are raised as they are)."""
    with open(path, "rb") as handle:  # closed here also when np.load fails (it leaves its own file open then)
        try:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with loaded:
                return [loaded[name] for name in names]
        except CORRUPT_CHUNK_ERRORS as exc:
            raise CorruptChunkError(path, f"{type(exc).__name__}: {exc}") from exc


def _check_hashes(path: Path, hashes: np.ndarray) -> np.ndarray:
    """``hashes`` of the chunk file ``path`` when they are one row of bytes (a sha1 hex) per text."""
    if hashes.ndim != 1 or hashes.dtype.kind != "S":
        raise CorruptChunkError(path, f"hashes of shape {hashes.shape} and dtype {hashes.dtype}")
    return hashes


def read_chunk_hashes(path: Path) -> np.ndarray:
    """The ``hashes`` of the chunk file ``path``: one 40-byte sha1 hex per text, else a ``CorruptChunkError``."""
    (hashes,) = _chunk_arrays(path, ["hashes"])
    return _check_hashes(path, hashes)


def read_chunk_vectors(path: Path) -> np.ndarray:
    """The ``emb`` of the chunk file ``path``: one finite float row per hash, else a ``CorruptChunkError``."""
    hashes, emb = _chunk_arrays(path, ["hashes", "emb"])
    rows = _check_hashes(path, hashes).shape[0]
    if emb.ndim != 2 or emb.shape[0] != rows or emb.dtype.kind != "f":
        raise CorruptChunkError(path, f"vectors of shape {emb.shape} and dtype {emb.dtype} for {rows} texts")
    if not np.isfinite(emb).all():
        raise CorruptChunkError(path, "non-finite values (NaN or infinite)")
    return emb


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
        # chunk files found corrupted (warned about once), to replace or remove, with their identity when found
        self._corrupt: dict[Path, tuple[int, int, int] | None] = {}

    # ------------------------------------------------------------------ index
    def _load_index(self) -> dict[bytes, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            if self.dir.is_dir():
                for p in sorted(self.dir.glob("chunk-*.npz")):
                    try:
                        hashes = read_chunk_hashes(p)
                    except CorruptChunkError as exc:  # its texts are not indexed: encoded again when asked for
                        self._found_corrupt(exc)
                        continue
                    for i, h in enumerate(hashes):
                        self._index[bytes(h)] = (p, i)
        return self._index

    def __len__(self) -> int:
        return len(self._load_index())

    def _chunk(self, p: Path) -> np.ndarray:
        """The vectors of chunk ``p``, read once (a ``CorruptChunkError`` if it is corrupted)."""
        if p not in self._chunks:
            self._chunks[p] = read_chunk_vectors(p)
        return self._chunks[p]

    def _found_corrupt(self, exc: CorruptChunkError) -> None:
        """Warn (once a file) that a chunk is corrupted and forget its texts: they are cache misses."""
        if exc.path not in self._corrupt:
            warnings.warn(f"{exc}; its texts are encoded again and the chunk replaced", stacklevel=3)
            self._corrupt[exc.path] = file_identity(exc.path)
        if self._index is not None:
            for h in [h for h, (q, _) in self._index.items() if q == exc.path]:
                del self._index[h]

    def _readable(self, p: Path) -> bool:
        """Whether chunk ``p``'s vectors are whole; a corrupted one is forgotten (``_found_corrupt``)."""
        try:
            self._chunk(p)
        except CorruptChunkError as exc:
            self._found_corrupt(exc)
            return False
        return True

    def _cached_width(self) -> int | None:
        """The width of this model's cached vectors (from the first whole chunk); None when none is cached."""
        for p in list(dict.fromkeys(p for p, _ in self._load_index().values())):
            if self._readable(p):
                return int(self._chunks[p].shape[1])
        return None

    def _remove_corrupt(self, written: set[Path]) -> None:
        """Remove the corrupted chunks a write of this run did not replace (their texts are misses from now on); a
        chunk another process has replaced since (a new file at that name) is its fresh copy, and is kept."""
        for p, found in sorted(self._corrupt.items()):
            if p not in written and found is not None and file_identity(p) == found:
                p.unlink(missing_ok=True)
        self._corrupt.clear()

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
        for p in sorted({index[h][0] for h in hashes if h in index}):
            self._readable(p)  # a corrupted chunk's texts become misses
        missing: dict[bytes, str] = {}
        written: set[Path] = set()
        for h, t in zip(hashes, texts):
            if h not in index and h not in missing:
                missing[h] = t
        if missing:
            order = sorted(missing, key=lambda h: -len(missing[h]))
            dim = self._cached_width()
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(order), desc=desc, unit="text", leave=False)
            for start in range(0, len(order), chunk_size):
                hs = order[start:start + chunk_size]
                emb = np.asarray(encode([missing[h] for h in hs]), dtype=np.float32)
                dim = self._check_rows(emb, [missing[h] for h in hs], dim)
                p = self._write(hs, emb)
                written.add(p)
                self._chunks[p] = emb
                for i, h in enumerate(hs):
                    index[h] = (p, i)
                if bar is not None:
                    bar.update(len(hs))
            if bar is not None:
                bar.close()
        self._remove_corrupt(written)
        first = self._chunk(index[hashes[0]][0]) if hashes else np.zeros((0, 0), np.float32)
        out = np.empty((len(texts), first.shape[1] if first.ndim == 2 else 0), dtype=np.float32)
        for i, h in enumerate(hashes):
            p, row = index[h]
            out[i] = self._chunk(p)[row]
        return out
