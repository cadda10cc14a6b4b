"""The engine under scale/: importing Ray with a friendly error, checking an address, joining or starting a cluster,
starting worker actors and running jobs on them with one-line errors, and the per-folder run lock."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

Job = TypeVar("Job")
LOCK_FILE = ".lock"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class WorkerError(RuntimeError):
    """A job or a worker failed on the cluster: one line naming what failed and why. The worker's full traceback
    (Ray's text) is kept in ``worker_traceback`` for debugging."""

    def __init__(self, message: str, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.worker_traceback = worker_traceback


class FolderInUseError(RuntimeError):
    """Another run holds the folder's lock."""


INSTALL_HINT = 'this needs Ray and pyarrow: pip install "static-embeddings[scale]"'


def import_engine() -> tuple[Any, Any, Any]:
    """``(ray, pyarrow.parquet, pyarrow)``, or an ImportError saying which extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import ray
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray, pq, pa


def check_address(address: str) -> None:
    """A ConnectionError naming ``address`` unless something listens there (``auto`` is left to Ray)."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"address must be HOST:PORT, auto or ray://HOST:PORT; got {address!r}")
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address must be HOST:PORT, auto or ray://HOST:PORT; got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster answers at {address}: {exc.strerror or exc}") from exc


def connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join ``address``, or start a local cluster; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
    if address is None:
        ray.init(num_cpus=workers or os.cpu_count(), _node_ip_address="127.0.0.1", **quiet)
    else:
        ray.init(address=address, **quiet)
    return True


def progress_bar(show: bool, total: int, desc: str = "Encoding") -> Any:
    """A tqdm bar over ``total`` texts when ``show`` and tqdm is installed, else ``None``."""
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="text", desc=desc)


def worker_error(exc: BaseException, what: str) -> WorkerError:
    """A one-line WorkerError for a Ray error raised by ``what``: the worker's own exception type and message's first
    line (a task that raised), or that the worker process died."""
    from ray.exceptions import RayActorError

    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        detail = f"{type(cause).__name__}: {_first_line(cause)}"
    elif isinstance(exc, RayActorError):
        detail = f"the worker process died ({_first_line(exc)})"
    else:
        detail = f"{type(exc).__name__}: {_first_line(exc)}"
    return WorkerError(f"{what} failed: {detail}", _ANSI.sub("", str(exc)))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


@contextlib.contextmanager
def started_actors(ray: Any, actor: Any, args: tuple[Any, ...], n: int, what: str) -> Iterator[list[Any]]:
    """``n`` actors of the remote class ``actor`` (built with ``args``), each of which answered ``ready()`` (where it
    loads what it holds): a WorkerError naming ``what`` at the first that fails, before any work is sent. The actors
    are killed when the block ends, so a failed run leaves none holding the cluster's CPUs or GPUs."""
    actors = [actor.remote(*args) for _ in range(n)]
    try:
        for ref in [a.ready.remote() for a in actors]:
            try:
                ray.get(ref)
            except Exception as exc:  # Ray raises RayTaskError / RayActorError subclasses
                raise worker_error(exc, what) from None
        yield actors
    finally:
        for a in actors:
            ray.kill(a)


def run_jobs(ray: Any, actors: Sequence[Any], jobs: Sequence[Job], submit: Callable[[Any, Job], Any],
             describe: Callable[[Job], str], done: Callable[[int], None]) -> None:
    """Run every job on the next free actor (``submit(actor, job)`` returns the task's ref, whose result goes to
    ``done``); a failed job raises a WorkerError naming it (``describe(job)``)."""
    queue = list(reversed(jobs))
    idle = list(actors)
    running: dict[Any, tuple[Any, Job]] = {}
    while queue or running:
        while idle and queue:
            actor, job = idle.pop(), queue.pop()
            running[submit(actor, job)] = (actor, job)
        [ref], _ = ray.wait(list(running), num_returns=1)
        actor, job = running.pop(ref)
        try:
            result = ray.get(ref)
        except Exception as exc:  # Ray raises RayTaskError / RayActorError subclasses
            raise worker_error(exc, describe(job)) from None
        idle.append(actor)
        done(result)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` (``flock``, not waiting) while the block runs: a second run on the folder gets a
    FolderInUseError naming it. The lock goes when the block ends or the process dies."""
    import fcntl  # POSIX only: imported here so that `import scale` works everywhere

    with open(folder / LOCK_FILE, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(f"{folder} is in use by another run (it holds {folder / LOCK_FILE}); wait for "
                                   "it to finish or use another folder") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def one_numba_thread() -> None:
    """In a Ray worker: numba runs one thread (Ray runs a worker per CPU, so no nested thread pools); this process
    only."""
    import numba

    numba.set_num_threads(1)


def vector_column(vectors: Any) -> Any:
    """``(n, dim)`` vectors as a pyarrow ``fixed_size_list`` column of their dtype (what scale writes)."""
    import numpy as np
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(vectors).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
