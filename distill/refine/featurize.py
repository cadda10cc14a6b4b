"""Featurize a corpus with the teacher, cached on disk in chunks (stage 1 of ``distill.refine``).

Each chunk of ``chunk_size`` passages is encoded (tokenized by the teacher, sorted by length, batched)
and saved as ``chunk-<index>-<content hash>.npy`` through a temporary file and an atomic rename, so an
interrupted run leaves only whole chunks behind and the next run encodes only what is missing. A chunk
is keyed by its index *and* the hash of its passages, so a stale or foreign file is never reused.
Two runs sharing a cache folder, processes or threads of one process, take turns on a chunk (``chunk_lock``): the
second waits while the first encodes it, then reads it from the folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distill.refine.corpus import unicode_text
from distill.refine.targets import TargetShards
from static_model.atomic_file import atomic_write, atomic_write_bytes, remove_abandoned_temporaries

if TYPE_CHECKING:
    from tqdm import tqdm

    from distill.teacher import Teacher

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
CACHE_VERSION = 1
DEFAULT_CACHE_ROOT = ".cache/refine"  # relative to the working folder; one subfolder a teacher
LOCK_FILE = "featurize.lock"  # in a cache folder: the advisory locks of its chunks (chunk_lock)


def teacher_fingerprint(teacher: Teacher) -> str:
    """A short id of the teacher's content: its configs, tokenizer, pooling/normalize/max length/lower-casing and the
    whole of its weight files, shards included (two fine-tunes of one size that differ only in middle layers get two
    ids).
    The name it was loaded by is not part of it: ``all-MiniLM-L6-v2``, its hub id and its folder share one cache."""
    h = hashlib.sha1()
    settings: dict[str, Any] = {"pooling": teacher.pooling, "normalize": bool(teacher.normalize),
                                "max_length": int(teacher.max_length), "v": CACHE_VERSION}
    if teacher.spec.do_lower_case:  # sentence_bert_config.json lowers texts before the tokenizer: other targets
        settings["do_lower_case"] = True  # (only when set: the ids of every other teacher stay as they were)
    h.update(json.dumps(settings).encode())
    h.update(teacher.tokenizer.to_str().encode())
    for f in weight_files(Path(teacher.spec.transformer_path)):
        h.update(f"{f.name}:{file_digest(f)}".encode())
    return h.hexdigest()[:16]


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weight_files(folder: Path) -> list[Path]:
    """The files of a transformer folder that decide its outputs besides the tokenizer: ``config.json``, then every
    weight file in name order (``model.safetensors``, ``pytorch_model.bin``, the shards of a large model and their
    ``*.index.json``)."""
    names = sorted(f.name for f in folder.iterdir() if f.is_file()
                   and (f.name.endswith(WEIGHT_SUFFIXES) or f.name.endswith(".index.json")))
    return [folder / name for name in ["config.json", *names] if (folder / name).is_file()]


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def file_digest(path: Path) -> str:
    """The SHA-1 of a whole file (about 1 s a GB), remembered while the file's inode, size and modification time
    stay the same, so a run that asks several times reads a teacher once."""
    st = path.stat()
    key = (os.fspath(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def texts_hash(texts: Sequence[str]) -> str:
    """A short SHA-1 hex digest of the texts, in order. Each text is followed by a newline; a text that holds a
    newline itself (a JSONL, Parquet or in-memory passage) is escaped behind a ``0xff`` byte, which UTF-8 never
    produces, so ``["a\\nb", "c"]`` and ``["a", "b\\nc"]`` differ while texts without one hash as they always did
    (existing caches stay valid)."""
    h = hashlib.sha1()
    for t in texts:
        data = t.encode("utf-8", "surrogatepass")
        if b"\n" in data:
            data = b"\xff" + data.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        h.update(data)
        h.update(b"\n")
    return h.hexdigest()[:16]


def default_cache_dir(teacher: Teacher, root: str | os.PathLike = DEFAULT_CACHE_ROOT) -> Path:
    """``.cache/refine/<teacher fingerprint>``: one folder a teacher. Chunks are named by their index and the hash
    of their passages, so corpora that start alike share their first chunks: on a plain file ``--max-sentences all``
    after a 100,000-passage run encodes only the passages after the first 100,000. A sample that prefers sources
    (``corpus.prefer_sources``) keeps the file's order, so another cap is another sample and shares few chunks."""
    return Path(root) / teacher_fingerprint(teacher)


def chunk_file(folder: Path, index: int, texts: Sequence[str]) -> Path:
    """Where chunk ``index`` of these passages is cached: named by its index and the hash of its passages."""
    return Path(folder) / f"chunk-{index:05d}-{texts_hash(texts)}.npy"


def load_chunk(path: Path, rows: int, dim: int) -> np.ndarray | None:
    """The cached chunk at ``path`` (memory-mapped) when it is whole (``(rows, dim)`` float32), else ``None``."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r")  # the header is checked without reading the data
    except (OSError, ValueError):
        logger.warning("Ignoring unreadable cache chunk %s", path)
        return None
    if arr.shape == (rows, dim) and arr.dtype == np.float32:
        if _all_finite(arr):
            return arr
        logger.warning("Ignoring cache chunk %s: it holds NaN or infinite values", path)
        return None
    logger.warning("Ignoring unreadable cache chunk %s", path)
    return None


def _all_finite(arr: np.ndarray, block: int = 4096) -> bool:
    """Every value of ``arr`` is finite (read a block of rows at a time: a mapped chunk is not loaded whole)."""
    return all(np.isfinite(arr[s : s + block]).all() for s in range(0, len(arr), block))


def save_chunk(path: Path, array: np.ndarray) -> None:
    """Write a chunk whole or not at all (``static_model.atomic_file``), so a chunk file that exists is whole. Its
    temporary name is unique per call, not only per process: two runs sharing a cache folder (threads, or containers
    on one volume whose processes have the same id) never write into one temporary file."""
    try:
        atomic_write(path, lambda handle: np.save(handle, array))
    except OSError as exc:  # numpy's short write says only "N requested and M written"
        reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
        raise OSError(f"featurize cache folder {path.parent}: could not write {path.name} ({reason}; is the disk "
                      "full?); no partial chunk is left there. Free some space or pass another cache folder "
                      "(--cache-dir; --refine-cache-dir of python -m distill)") from None


def write_meta(folder: Path, teacher: Teacher) -> None:
    """``meta.json``: which teacher (and fingerprint) the chunks in ``folder`` come from. A folder whose
    ``meta.json`` names another teacher fingerprint (or cannot be read) is refused with a ``ValueError`` naming it:
    chunks are keyed by their passages only, so another teacher's chunks would be read back as this one's targets."""
    fingerprint = teacher_fingerprint(teacher)
    meta = {"teacher": str(teacher.name), "fingerprint": fingerprint, "dim": int(teacher.dim),
            "version": CACHE_VERSION}
    meta_file = Path(folder) / "meta.json"
    if not meta_file.is_file():  # never replaced: of two runs that start together on one folder, the first one's stays
        atomic_write_bytes(meta_file, json.dumps(meta, indent=1).encode("utf-8"), keep_existing=True)
    check_meta(meta_file, fingerprint, str(teacher.name))


def check_meta(meta_file: Path, fingerprint: str, teacher_name: str) -> None:
    """``meta_file`` names the teacher ``fingerprint``; else a ``ValueError`` naming the folder and both teachers."""
    try:
        recorded = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"featurize cache {meta_file.parent}: {meta_file.name} cannot be read ({exc}), so it is "
                         "unknown which teacher its chunks come from; delete the folder or pass another cache "
                         "folder") from None
    found = recorded.get("fingerprint") if isinstance(recorded, dict) else None
    if found != fingerprint:
        other = recorded.get("teacher") if isinstance(recorded, dict) else None
        raise ValueError(f"featurize cache {meta_file.parent} holds the chunks of another teacher ({other!r}, "
                         f"fingerprint {found!r}), not of {teacher_name!r} (fingerprint {fingerprint!r}); pass "
                         "another cache folder (the default, .cache/refine/<teacher fingerprint>, is one a teacher)")


# this process's lock of each cache folder's featurize.lock -> [the lock, threads holding or waiting for it]
_PROCESS_LOCKS: dict[str, list[Any]] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _forget_process_locks() -> None:
    """In a forked child: the parent's threads are not there to release the locks they held, so none is held."""
    global _PROCESS_LOCKS_GUARD
    _PROCESS_LOCKS.clear()
    _PROCESS_LOCKS_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_process_locks)


@contextmanager
def process_folder_lock(lock_file: Path) -> Iterator[None]:
    """Hold this process's ``threading.Lock`` of ``lock_file`` (a cache folder's ``featurize.lock``): threads of one
    process take turns on a folder, one chunk at a time. A lock per folder, not per chunk: a thread closing its
    descriptor of ``lock_file`` releases every ``fcntl`` lock the process holds on it, another thread's included.
    An entry is dropped once no thread holds or waits for it, so the table never outgrows the threads."""
    key = os.fspath(lock_file.resolve())
    with _PROCESS_LOCKS_GUARD:
        entry = _PROCESS_LOCKS.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _PROCESS_LOCKS_GUARD:
            entry[1] -= 1
            if entry[1] == 0 and _PROCESS_LOCKS.get(key) is entry:  # a forked child starts with an empty table
                del _PROCESS_LOCKS[key]


@contextmanager
def chunk_lock(chunk: Path) -> Iterator[None]:
    """Hold an advisory lock on the cache chunk file ``chunk``, so that another run about to encode the same chunk
    waits for this one and then reads it back: between processes a POSIX ``fcntl`` lock on one byte of its folder's
    ``featurize.lock`` (the byte a hash of the chunk's name), between threads of this process the folder's
    ``process_folder_lock``, taken first (POSIX record locks belong to a process: two threads both held one). Best
    effort between processes: without ``fcntl`` (Windows) or where the lock cannot be had (a read-only folder, a
    file system without locks), nothing is held and two runs may encode one chunk twice, each writing it whole
    (through its own temporary file and an atomic rename: never a mixed file). A process that dies releases its
    locks with it."""
    with process_folder_lock(chunk.parent / LOCK_FILE), _fcntl_chunk_lock(chunk):
        yield


@contextmanager
def _fcntl_chunk_lock(chunk: Path) -> Iterator[None]:
    """The ``fcntl`` half of ``chunk_lock``: one byte of ``featurize.lock``, between processes."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = os.open(chunk.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        logger.debug("featurize: no lock for %s (%s)", chunk.name, exc)
        yield
        return
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, zlib.crc32(chunk.name.encode()))
        except OSError as exc:  # ENOLCK: a file system without locks
            logger.debug("featurize: no lock for %s (%s)", chunk.name, exc)
        yield
    finally:
        os.close(fd)  # releases the lock


def encode_chunk(teacher: Teacher, texts: Sequence[str], *, batch_size: int, bar: tqdm | None = None) -> np.ndarray:
    """Teacher sentence embeddings of ``texts`` (float32), length-sorted batches, no grad."""
    import torch

    out = np.zeros((len(texts), teacher.dim), dtype=np.float32)
    if not texts:
        return out
    ids = teacher.tokenize(texts)
    order = np.argsort([-len(x) for x in ids], kind="stable")
    # batches hold at most batch_size passages and about batch_size * 64 tokens (long passages: smaller batches)
    token_budget = batch_size * 64
    with torch.inference_mode():
        start = 0
        while start < len(order):
            width = len(ids[order[start]])
            n = max(1, min(batch_size, token_budget // max(width, 1)))
            idx = order[start : start + n]
            hidden, mask = teacher.forward_ids([ids[i] for i in idx])
            pooled = teacher.pool(hidden, mask, teacher.pooling).float()
            if teacher.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.cpu().numpy()
            if bar is not None:
                bar.update(len(idx))
            start += n
    return out


def check_finite_targets(arr: np.ndarray, teacher: Teacher, first: int = 0, where: str = "the corpus") -> None:
    """A ``ValueError`` naming the teacher and the first bad passage when ``arr`` (the embeddings of passages
    ``first, first + 1, ...`` of ``where``) holds NaN or infinity (float16 overflow on a GPU, broken weights): such a
    chunk is never cached, and targets of NaN would train a table of NaN."""
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"teacher {teacher.name!r} gave NaN or infinite embeddings for {len(rows)} passage(s), the "
                         f"first passage {first + int(rows[0])} of {where}; nothing was cached for them (on a GPU, "
                         "try device='cpu')")


def featurize_shards(
    teacher: Teacher,
    texts: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = 64,
    show_progress_bar: bool = True,
    max_new_chunks: int | None = None,
) -> TargetShards:
    """Teacher embeddings ``(len(texts), teacher.dim)`` float32, chunk-cached under ``cache_dir``, as the
    memory-mapped cache chunks (``TargetShards``): a chunk encoded now is saved and mapped back, so memory holds
    one chunk's targets at most, whatever the corpus size.

    :param teacher: a ``distill.Teacher``.
    :param cache_dir: folder for the chunks (default ``.cache/refine/<teacher fingerprint>``); ``False``-y
        values other than ``None`` are not accepted: pass a folder, or ``None`` for the default.
    :param max_new_chunks: stop after encoding this many new chunks (raises ``InterruptedError``; used by the
        tests to simulate an interrupted run).

    A passage holding an unpaired surrogate (``"\\ud800"``) is refused with a ``ValueError`` naming its index before
    the cache folder is touched (the tokenizer raised a bare ``TypeError``), as the corpus readers refuse it.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    texts = list(texts)
    for i, text in enumerate(texts):
        unicode_text(text, f"passage {i}")
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(teacher)
    folder.mkdir(parents=True, exist_ok=True)
    write_meta(folder, teacher)
    if removed := remove_abandoned_temporaries(folder, "chunk-*"):
        logger.info("featurize: removed %d temporary chunk file(s) left by an interrupted run in %s", removed, folder)

    n_chunks = (len(texts) + chunk_size - 1) // chunk_size
    parts: list[np.ndarray | None] = [None] * n_chunks
    names = []
    todo = []
    for c in range(n_chunks):
        chunk = texts[c * chunk_size : (c + 1) * chunk_size]
        names.append(chunk_file(folder, c, chunk))
        parts[c] = load_chunk(names[c], len(chunk), teacher.dim)
        if parts[c] is None:
            todo.append(c)
    n_todo = sum(min(chunk_size, len(texts) - c * chunk_size) for c in todo)
    logger.info("featurize: %d passages, %d cached, %d to encode (%s)", len(texts), len(texts) - n_todo, n_todo, folder)
    bar = None
    if show_progress_bar and n_todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_todo, desc=f"Featurize ({len(texts) - n_todo} cached)", unit=" texts", smoothing=0.1)
    t0 = time.perf_counter()
    done_new = encoded = 0
    try:
        for c in todo:
            chunk = texts[c * chunk_size : (c + 1) * chunk_size]
            with chunk_lock(names[c]):
                parts[c] = load_chunk(names[c], len(chunk), teacher.dim)  # another run may have written it meanwhile
                if parts[c] is not None:
                    logger.info("featurize: chunk %d was encoded by another run meanwhile; read from %s", c, folder)
                    if bar is not None:
                        bar.update(len(chunk))
                    continue
                if max_new_chunks is not None and done_new >= max_new_chunks:
                    raise InterruptedError(f"Stopped after {done_new} new chunks (max_new_chunks).")
                arr = encode_chunk(teacher, chunk, batch_size=batch_size, bar=bar)
                check_finite_targets(arr, teacher, c * chunk_size)
                save_chunk(names[c], arr)
                parts[c] = load_chunk(names[c], len(chunk), teacher.dim)
            done_new += 1
            encoded += len(chunk)
    finally:
        if bar is not None:
            bar.close()
    if encoded:
        dt = time.perf_counter() - t0
        logger.info("featurize: encoded %d passages in %.1f s (%.1f /s)", encoded, dt, encoded / max(dt, 1e-9))
    done = [p for p in parts if p is not None]  # every chunk, cached or encoded now
    if len(done) != n_chunks:
        raise OSError(f"featurize: a chunk written to {folder} could not be read back")
    return TargetShards(done) if done else TargetShards([np.zeros((0, teacher.dim), dtype=np.float32)])


def featurize(
    teacher: Teacher,
    texts: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = 64,
    show_progress_bar: bool = True,
    max_new_chunks: int | None = None,
) -> np.ndarray:
    """``featurize_shards`` read into one in-memory array ``(len(texts), teacher.dim)`` (small corpora, tools)."""
    return featurize_shards(teacher, texts, cache_dir=cache_dir, chunk_size=chunk_size, batch_size=batch_size,
                            show_progress_bar=show_progress_bar, max_new_chunks=max_new_chunks).to_array()
