"""Refinement's featurization on Ray: the teacher in a pool of worker actors, chunks written to refine's cache.

Each missing chunk of the corpus (``distill.refine.featurize``'s chunking and names) is encoded by a worker that
holds the teacher once and written there with an atomic rename, so ``refine`` (or this function run again) finds
it cached: a run resumes per chunk, and the targets are the ones single-process featurization writes. Workers take
one GPU each where the cluster has GPUs, else one CPU each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scale.engine import check_address, connect, import_engine, progress_bar, run_jobs, started_actors
from scale.inputs import local_path

if TYPE_CHECKING:
    from distill.teacher import Teacher


@dataclass(frozen=True)
class FeaturizeReport:
    """Chunks found cached, chunks and passages encoded now, where they are, and the time."""

    cache_dir: Path
    chunks: int
    skipped: int
    encoded: int
    passages: int
    seconds: float


def featurize_on_ray(
    teacher: str | os.PathLike,
    texts: Sequence[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    batch_size: int = 64,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> FeaturizeReport:
    """Fill refine's featurize cache for ``texts`` with ``teacher``'s embeddings, on Ray workers.

    ``teacher`` is a name or folder every worker can resolve. ``cache_dir`` defaults to refine's own
    (``.cache/refine/<teacher fingerprint>``), so a later ``refine`` with the same corpus trains at once. Relative
    folders (the cache, a teacher folder) are made absolute here, as the workers are given them.
    """
    from distill.refine.featurize import (
        DEFAULT_CHUNK_SIZE,
        chunk_file,
        default_cache_dir,
        load_chunk,
        teacher_fingerprint,
        write_meta,
    )
    from distill.teacher import Teacher

    ray, _, _ = import_engine()
    chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    for name, value in (("chunk_size", chunk_size), ("batch_size", batch_size), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if address is not None:
        check_address(address)
    texts = list(texts)
    local = Teacher(teacher, device="cpu")  # reads the teacher's files only: the weights load in the workers
    folder = local_path(cache_dir if cache_dir is not None else default_cache_dir(local), "cache_dir")
    folder.mkdir(parents=True, exist_ok=True)
    write_meta(folder, local)
    chunks = [texts[start : start + chunk_size] for start in range(0, len(texts), chunk_size)]
    todo = []
    for index, chunk in enumerate(chunks):
        path = chunk_file(folder, index, chunk)
        if not path.is_file() or load_chunk(path, len(chunk), local.dim) is None:
            todo.append((str(path), chunk))
    started = time.perf_counter()
    if todo:
        owns_cluster = connect(ray, address, workers)
        try:
            _run(ray, worker_teacher(teacher), teacher_fingerprint(local), todo, batch_size, workers, progress)
        finally:
            if owns_cluster:
                ray.shutdown()
    return FeaturizeReport(
        folder,
        len(chunks),
        len(chunks) - len(todo),
        len(todo),
        sum(len(c) for _, c in todo),
        time.perf_counter() - started,
    )


def worker_teacher(teacher: str | os.PathLike) -> str:
    """What the workers are told to load: a teacher folder that exists here as an absolute path (a relative one
    would resolve against a remote worker's working folder), else the name as given (a hub or package name)."""
    name = os.fspath(teacher)
    return str(local_path(name, "teacher")) if Path(name).expanduser().exists() else name


class _Featurizer:
    """A Ray actor body: the teacher loaded once per worker (by ``ready()``, which the driver awaits before sending
    work), encoding whole chunks into their cache files. A worker whose ``teacher`` resolves to other files than the
    driver's (another package version or folder on its node) is refused: its chunks would go into the driver's
    teacher's cache under the same names."""

    def __init__(self, teacher: str, device: str, threads: int, fingerprint: str) -> None:
        self.name, self.device, self.threads, self.fingerprint = teacher, device, threads, fingerprint
        self._teacher: Teacher | None = None

    def ready(self) -> bool:
        """Load the teacher (its weights too) and check it is the driver's; True, or the loading error."""
        _ = self.teacher.model  # the property loads the weights: a broken teacher fails here, at once
        return True

    @property
    def teacher(self) -> Teacher:
        """The worker's teacher, resolved and checked on first use."""
        if self._teacher is None:
            import socket

            import torch

            from distill.refine.featurize import teacher_fingerprint
            from distill.teacher import Teacher

            if self.device == "cpu":
                torch.set_num_threads(self.threads)  # this worker process only
            teacher = Teacher(self.name, device=self.device)
            found = teacher_fingerprint(teacher)
            if found != self.fingerprint:
                raise ValueError(
                    f"teacher {self.name!r} resolves on worker {socket.gethostname()} to other files "
                    f"(fingerprint {found}) than on the driver ({self.fingerprint}); install the same "
                    "teacher on every node or pass a folder they all read"
                )
            self._teacher = teacher
        return self._teacher

    def encode(self, path: str, texts: list[str], batch_size: int) -> int:
        """Encode one chunk's passages into its cache file; the number of passages."""
        from distill.refine.featurize import check_finite_targets, encode_chunk, save_chunk

        arr = encode_chunk(self.teacher, texts, batch_size=batch_size)
        check_finite_targets(arr, self.teacher, where=f"the chunk {Path(path).name}")
        save_chunk(Path(path), arr)
        return len(texts)


def _run(
    ray: Any,
    teacher: str,
    fingerprint: str,
    todo: list[tuple[str, list[str]]],
    batch_size: int,
    workers: int | None,
    progress: bool,
) -> None:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    slots = gpus if gpus else int(resources.get("CPU", 1))
    n_workers = max(1, min(len(todo), workers or slots))
    threads = max(1, int(resources.get("CPU", 1)) // n_workers)
    options: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": threads}
    actor = ray.remote(max_restarts=3, max_task_retries=3, **options)(_Featurizer)
    device = "cuda" if gpus else "cpu"
    what = f"loading the teacher {teacher!r} on a worker"
    bar = progress_bar(progress, sum(len(c) for _, c in todo), "Featurize")
    try:
        with started_actors(ray, actor, (teacher, device, threads, fingerprint), n_workers, what) as actors:
            run_jobs(
                ray,
                actors,
                todo,
                lambda a, job: a.encode.remote(job[0], job[1], batch_size),
                lambda job: f"featurizing {Path(job[0]).name} ({len(job[1])} passages)",
                lambda n: bar.update(n) if bar is not None else None,
            )
    finally:
        if bar is not None:
            bar.close()
