"""Bulk encoding on Ray: every worker holds the model once and turns whole partitions into Parquet files.

The driver only plans partitions and counts rows: vectors go from a worker straight to its partition's file, so
no process ever holds the whole result. A partition's file is written beside its final name and renamed into place,
so a file that exists is complete, and a re-run skips it (resume). ``_manifest.json`` records what the folder was
made from; a re-run with other inputs, column or model is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scale.engine import check_address, connect, import_engine, progress_bar
from scale.inputs import Partition, plan_partitions, read_partition
from static_model import StaticModel
from static_model.fingerprint import model_fingerprint

MANIFEST = "_manifest.json"
DEFAULT_PARTITION_ROWS = 100_000


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
    if not isinstance(model, StaticModel):
        model = StaticModel.from_pretrained(model)
    partitions = plan_partitions(inputs, column=column, partition_rows=partition_rows)
    out = Path(output).expanduser()
    manifest = _manifest(partitions, column, partition_rows, model)
    _prepare_output(out, manifest, overwrite)
    todo = [p for p in partitions if not (out / p.name).exists()]
    started = time.perf_counter()
    rows = 0
    if todo:
        owns_cluster = connect(ray, address, workers)
        try:
            rows = _run(ray, model, todo, out, column, batch_size, workers, progress)
        finally:
            if owns_cluster:
                ray.shutdown()
    return EncodeReport(out, len(partitions), len(partitions) - len(todo), len(todo), rows,
                        time.perf_counter() - started)


def read_vectors(output: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a finished output folder, in id order (reads it all: for checks and small outputs)."""
    _, pq, _ = import_engine()
    files = sorted(Path(output).glob("part-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{output}: no part-*.parquet files")
    tables = [pq.read_table(f) for f in files]
    ids = np.concatenate([t.column("id").to_numpy() for t in tables])
    vectors = np.concatenate([_vectors_of(t) for t in tables])
    order = np.argsort(ids, kind="stable")
    return ids[order], vectors[order]


def _manifest(partitions: list[Partition], column: str, partition_rows: int, model: StaticModel) -> dict[str, Any]:
    inputs = sorted({p.path for p in partitions}, key=[p.path for p in partitions].index)
    settings = {k: model.config.get(k) for k in ("normalize", "max_length", "contrast")}
    return {
        "format": 1,
        "inputs": [{"path": p, "bytes": Path(p).stat().st_size} for p in inputs],
        "column": column,
        "partition_rows": partition_rows,
        "partitions": len(partitions),
        "rows": sum(p.n_rows for p in partitions),
        # the fingerprint covers the table, mapping, weights, tokenizer and settings; the rest is for people to read
        "model": {"sha256": model_fingerprint(model), "dim": model.dim, "dtype": model.dtype, **settings},
    }


def _prepare_output(out: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    manifest_file = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not manifest_file.is_file():
            raise FileExistsError(f"output {out} is not empty and holds no {MANIFEST}: not a bulk-encode folder")
        if overwrite:
            for f in out.iterdir():
                if f.is_file() and (f.name.startswith("part-") or f.name.startswith(".part-") or f.name == MANIFEST):
                    f.unlink()
        else:
            before = json.loads(manifest_file.read_text(encoding="utf-8"))
            if before != manifest:
                changed = sorted(k for k in manifest if before.get(k) != manifest[k])
                raise FileExistsError(f"output {out} was made from other {', '.join(changed)}; "
                                      "pass overwrite=True (--overwrite) to start over")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".part-*"):  # an interrupted run's half-written partitions
        stale.unlink()
    if not manifest_file.is_file():
        tmp = out / f".{MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(tmp, manifest_file)


class _Encoder:
    """A Ray actor body: one model per worker process, encoding partitions into their files."""

    def __init__(self, model: StaticModel, out: str, column: str, batch_size: int) -> None:
        import numba

        numba.set_num_threads(1)  # one worker per CPU: no nested thread pools (this worker process only)
        self.model, self.out, self.column, self.batch_size = model, Path(out), column, batch_size

    def encode(self, partition: Partition) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        texts = read_partition(partition, self.column)
        vectors = self.model.encode(texts, batch_size=self.batch_size)
        ids = np.arange(partition.first_id, partition.first_id + len(texts), dtype=np.int64)
        table = pa.table({"id": ids, "embedding": _vector_column(vectors)})
        tmp = self.out / f".{partition.name}.tmp-{uuid.uuid4().hex[:8]}"
        pq.write_table(table, tmp)
        os.replace(tmp, self.out / partition.name)
        return len(texts)


def _run(ray: Any, model: StaticModel, todo: list[Partition], out: Path, column: str, batch_size: int,
         workers: int | None, progress: bool) -> int:
    from ray.util import ActorPool

    n_workers = max(1, min(len(todo), workers or int(ray.cluster_resources().get("CPU", 1))))
    actor = ray.remote(num_cpus=1, max_restarts=3, max_task_retries=3)(_Encoder)
    model_ref = ray.put(model)
    pool = ActorPool([actor.remote(model_ref, str(out), column, batch_size) for _ in range(n_workers)])
    bar = progress_bar(progress, sum(p.n_rows for p in todo))
    rows = 0
    try:
        for n in pool.map_unordered(lambda a, p: a.encode.remote(p), todo):
            rows += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _vector_column(vectors: np.ndarray) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def _vectors_of(table: Any) -> np.ndarray:
    column = table.column("embedding").combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
