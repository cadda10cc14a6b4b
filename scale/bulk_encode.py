"""Bulk encoding on Ray: every worker holds the model once and turns whole partitions into Parquet files.

The driver only plans partitions and counts rows: vectors go from a worker straight to its partition's file, so
no process ever holds the whole result. A partition's file is written beside its final name and renamed into place,
so a file that exists is complete, and a re-run skips it (resume). ``_manifest.json`` records what the folder was
made from (each input's path, size, modification time and SHA-256, the column, the partitioning and the model); a
re-run with other inputs, an input edited in place (even one that kept its size and time), another column or model
is refused rather than mixed in; an input only touched (same size and content) resumes. Within a run, a worker
checks the bytes it reads against the SHA-256 planning took of its partition's bytes (carried by the Partition it is
sent, not in the manifest), so an input replaced after planning keeping its size and time (``cp -p``) fails the run
naming the partition instead of being encoded under the planned ids. A run holds the folder's ``.lock``
(``flock``): a second run on the same folder at the same time is refused.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scale.engine import (
    LOCK_FILE,
    check_address,
    connect,
    folder_lock,
    import_engine,
    one_numba_thread,
    progress_bar,
    run_jobs,
    started_actors,
    vector_column,
)
from scale.inputs import (
    Partition,
    file_sha256,
    file_stat,
    local_path,
    partition_name,
    plan_partitions,
    read_partition,
)
from static_model import StaticModel
from static_model.atomic_file import atomic_write, atomic_write_bytes
from static_model.fingerprint import model_fingerprint

MANIFEST = "_manifest.json"
# 2: each input's modification time too (format 1 had its size only); 3: each input's SHA-256 too, and partition
# names as wide as the last one's number (format 2 named them part-{index:06d}, unpadded past 999,999)
MANIFEST_FORMAT = 3
DEFAULT_PARTITION_ROWS = 100_000
_MANIFEST_FIELDS: dict[str, type] = {
    "format": int,
    "inputs": list,
    "column": str,
    "partition_rows": int,
    "partitions": int,
    "rows": int,
    "model": dict,
}
_JSON_KINDS = {int: "a non-negative integer", list: "a list", str: "a string", dict: "an object"}
# What a resume compares of each input: its size and content. The modification time is recorded but does not decide:
# an input only touched (copied without -p, synced) holds the same rows, and the SHA-256 says so.
_ENTRY_FIELDS = (("bytes", "size"), ("sha256", "content (SHA-256)"))


class OutputError(ValueError):
    """An output folder that cannot be used as asked: an unreadable manifest, or an unfinished folder read back."""


@dataclass(frozen=True)
class EncodeReport:
    """What one run did: partitions found already done (resumed), partitions and rows encoded now, and the time."""

    output: Path
    partitions: int
    skipped: int
    encoded: int
    rows: int
    seconds: float


def encode_files(
    model: StaticModel | str | os.PathLike,
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    *,
    column: str = "text",
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 4096,
    overwrite: bool = False,
    progress: bool = True,
) -> EncodeReport:
    """Encode every text of ``inputs`` with ``model`` on Ray and write ``(id, embedding)`` Parquet partitions.

    ``model`` is a :class:`StaticModel` or its folder. ``ids`` number the rows across the inputs in the order given.
    ``address``: a running cluster (``HOST:PORT``, ``auto`` or ``ray://HOST:PORT``); ``None`` starts a local one
    with ``workers`` CPUs (default: all). An ``output`` folder from an earlier, interrupted run with the same inputs
    and model is resumed; ``overwrite=True`` starts over. The vectors equal ``model.encode(texts)``.
    """
    ray, pq, pa = import_engine()
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer; got {workers!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    if address is not None:
        check_address(address)
    if not os.fspath(output).strip():  # Path("") is the current folder: never a place to write partitions to
        raise ValueError("output is empty; pass the folder to write the partitions to")
    out = local_path(output, "output")  # absolute: a remote worker's working folder is not the driver's
    if not isinstance(model, StaticModel):
        model = StaticModel.from_pretrained(model)
    # once, as a list: a generator (Path.glob) would be used up by planning and leave the manifest without inputs
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    partitions = plan_partitions(inputs, column=column, partition_rows=partition_rows)
    manifest = _manifest(inputs, partitions, column, partition_rows, model)
    _check_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with folder_lock(out):
        _prepare_output(out, manifest, overwrite)
        todo = [p for p in partitions if not (out / p.name).exists()]
        rows = 0
        if todo:
            owns_cluster = connect(ray, address, workers)
            try:
                rows = _run(ray, model, todo, out, column, batch_size, workers, progress)
            finally:
                if owns_cluster:
                    ray.shutdown()
    return EncodeReport(
        out, len(partitions), len(partitions) - len(todo), len(todo), rows, time.perf_counter() - started
    )


def read_vectors(output: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a finished output folder, in id order (reads it all: for checks and small outputs).

    An unfinished folder (a partition missing) is an OutputError naming it; no rows read back as shapes ``(0,)``
    and ``(0, dim)``, ``dim`` the model's (from the manifest)."""
    _, pq, _ = import_engine()
    folder = Path(output).expanduser()
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"{folder}: no {MANIFEST}: not a bulk-encode output folder")
    manifest = load_manifest(folder / MANIFEST)
    count = manifest["partitions"]
    names = [partition_name(i, count if manifest["format"] >= 3 else 0) for i in range(count)]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise OutputError(
            f"{folder} is unfinished: {len(missing)} of {len(names)} partitions are missing (first: "
            f"{missing[0]}); run the same encode again to finish it"
        )
    if not names:
        return np.zeros(0, dtype=np.int64), np.zeros((0, manifest["model"]["dim"]), dtype=np.float32)
    tables = [pq.read_table(folder / name) for name in names]
    ids = np.concatenate([t.column("id").to_numpy() for t in tables])
    vectors = np.concatenate([_vectors_of(t) for t in tables])
    return ids, vectors


def load_manifest(path: Path) -> dict[str, Any]:
    """An output folder's manifest, or an OutputError naming the file when it is not valid JSON of the right shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputError(
            f"{path}: not a readable bulk-encode manifest ({exc}); start a fresh output folder or "
            "pass overwrite=True (--overwrite)"
        ) from None
    problem = _manifest_problem(data)
    if problem is not None:
        raise OutputError(
            f"{path}: not a valid bulk-encode manifest ({problem}); start a fresh output folder or "
            "pass overwrite=True (--overwrite)"
        )
    return data


def _manifest_problem(data: Any) -> str | None:
    """What is wrong with a parsed manifest's types, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for key, kind in _MANIFEST_FIELDS.items():
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, int) and value < 0):
            return f"{key!r} is {json.dumps(value)[:40]}, not {_JSON_KINDS[kind]}"
    if not all(isinstance(entry, dict) and isinstance(entry.get("path"), str) for entry in data["inputs"]):
        return "an 'inputs' entry without a 'path'"
    dim = data["model"].get("dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        return f"'model' 'dim' is {json.dumps(dim)[:40]}, not a positive int"
    return None


def _manifest(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    partitions: list[Partition],
    column: str,
    partition_rows: int,
    model: StaticModel,
) -> dict[str, Any]:
    settings = {k: model.config.get(k) for k in ("normalize", "max_length", "contrast")}
    return {
        "format": MANIFEST_FORMAT,
        "inputs": _input_entries(inputs, partitions),
        "column": column,
        "partition_rows": partition_rows,
        "partitions": len(partitions),
        "rows": sum(p.n_rows for p in partitions),
        # the fingerprint covers the table, mapping, weights, tokenizer and settings; the rest is for people to read
        "model": {"sha256": model_fingerprint(model), "dim": model.dim, "dtype": model.dtype, **settings},
    }


def _check_output_folder(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a folder holding other things than a bulk-encode output."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(f.name != LOCK_FILE for f in out.iterdir()):
        raise FileExistsError(f"output {out} is not empty and holds no {MANIFEST}: not a bulk-encode folder")


def _input_entries(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike, partitions: list[Partition]
) -> list[dict[str, Any]]:
    """Every input as given (a file given twice is listed twice: its place sets the ids), in order, with the size,
    modification time and SHA-256 planning saw; an input with no rows (an empty file) is listed too, so a resume after
    it gained rows names it as changed."""
    planned = {p.path: (p.file_bytes, p.file_mtime_ns, p.file_sha256) for p in reversed(partitions)}
    given = [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs
    entries = []
    for path in (str(local_path(raw, "input").resolve()) for raw in given):
        size, mtime_ns, sha256 = planned[path] if path in planned else (*file_stat(path), file_sha256(path))
        entries.append({"path": path, "bytes": size, "mtime_ns": mtime_ns, "sha256": sha256})
    return entries


def _prepare_output(out: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Under the folder's lock: start over (``overwrite``) or check a resume, drop half-written files, write the
    manifest."""
    manifest_file = out / MANIFEST
    if overwrite:
        for f in out.iterdir():
            if f.is_file() and (f.name.startswith("part-") or f.name.startswith(".part-") or f.name == MANIFEST):
                f.unlink()
    elif manifest_file.is_file():
        _check_resume(out, load_manifest(manifest_file), manifest)
    for stale in out.glob(".part-*"):  # an interrupted run's half-written partitions
        stale.unlink()
    if not manifest_file.is_file():
        atomic_write_bytes(manifest_file, json.dumps(manifest, indent=2).encode("utf-8"))


def _without_times(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` without its inputs' modification times (what a resume does not compare)."""
    inputs = [{k: v for k, v in entry.items() if k != "mtime_ns"} for entry in manifest.get("inputs", [])]
    return {**manifest, "inputs": inputs}


def _check_resume(out: Path, before: dict[str, Any], now: dict[str, Any]) -> None:
    """A FileExistsError unless ``out`` (made as ``before`` says) can be resumed for the run ``now`` plans."""
    hint = "pass overwrite=True (--overwrite) to start over"
    if before["format"] < MANIFEST_FORMAT:
        missing = "modification times and content hashes" if before["format"] < 2 else "content hashes (SHA-256)"
        raise FileExistsError(
            f"{out / MANIFEST} is from an older version (manifest format {before['format']}) that "
            f"did not record its inputs' {missing}, so a resume cannot tell an input edited since; "
            f"start a fresh output folder or {hint}"
        )
    paths = [entry["path"] for entry in before["inputs"]]
    if paths == [entry["path"] for entry in now["inputs"]]:
        for old, new in zip(before["inputs"], now["inputs"]):
            differ = [what for key, what in _ENTRY_FIELDS if old.get(key) != new[key]]
            if differ:
                raise FileExistsError(
                    f"output {out}: input {new['path']} changed since the first run (its "
                    f"{' and '.join(differ)} differ{'s' if len(differ) == 1 else ''}: edited in place?); {hint}"
                )
    if _without_times(before) != _without_times(now):
        old, new = _without_times(before), _without_times(now)
        changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))  # a key on one side only too
        raise FileExistsError(f"output {out} was made from other {', '.join(changed)}; {hint}")


class _Encoder:
    """A Ray actor body: one model per worker process, encoding partitions into their files."""

    def __init__(self, model: StaticModel, out: str, column: str, batch_size: int) -> None:
        one_numba_thread()
        self.model, self.out, self.column, self.batch_size = model, Path(out), column, batch_size

    def ready(self) -> bool:
        """True once the worker is up (the driver waits for every worker before sending work)."""
        return True

    def encode(self, partition: Partition) -> int:
        """Write ``partition``'s vectors to its file (atomically); the number of rows. A partition whose file
        changed since planning (its size, time or, with them kept, the bytes read) is an InputError, nothing written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        texts = read_partition(partition, self.column)
        vectors = self.model.encode(texts, batch_size=self.batch_size)
        ids = np.arange(partition.first_id, partition.first_id + len(texts), dtype=np.int64)
        table = pa.table({"id": ids, "embedding": vector_column(np.asarray(vectors, dtype=np.float32))})
        atomic_write(self.out / partition.name, lambda handle: pq.write_table(table, handle))
        return len(texts)


def _run(
    ray: Any,
    model: StaticModel,
    todo: list[Partition],
    out: Path,
    column: str,
    batch_size: int,
    workers: int | None,
    progress: bool,
) -> int:
    n_workers = max(1, min(len(todo), workers or int(ray.cluster_resources().get("CPU", 1))))
    actor = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)(_Encoder)
    args = (ray.put(model), str(out), column, batch_size)
    bar = progress_bar(progress, sum(p.n_rows for p in todo))
    counted: list[int] = []

    def done(n: int) -> None:
        counted.append(n)
        if bar is not None:
            bar.update(n)

    try:
        with started_actors(ray, actor, args, n_workers, "starting an encode worker") as actors:
            run_jobs(ray, actors, todo, lambda a, p: a.encode.remote(p), _describe, done)
    finally:
        if bar is not None:
            bar.close()
    return sum(counted)


def _describe(partition: Partition) -> str:
    """What a partition's job is, for an error: the file, the rows and the output file."""
    last = partition.first_row + partition.n_rows - 1
    return f"encoding {partition.path} rows {partition.first_row}-{last} into {partition.name}"


def _vectors_of(table: Any) -> np.ndarray:
    column = table.column("embedding").combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
