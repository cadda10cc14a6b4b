"""scale/ under failure: one-line worker errors, resume safety (edited inputs, old or corrupt manifests), the output
folder's lock, reading back unfinished or empty outputs, input checks at planning time, CLI usage errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scale import (
    FolderInUseError,
    InputError,
    OutputError,
    WorkerError,
    encode_files,
    featurize_on_ray,
    plan_partitions,
    read_vectors,
)
from scale.__main__ import main
from scale.bulk_encode import MANIFEST
from scale.engine import folder_lock, worker_error
from scale.inputs import read_partition

ROWS = ["the cat sat", "a dog runs", "", "hello world", "the bank of the river", "money and tax law"]


def write_text(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def finished_output(model, tmp_path: Path) -> tuple[Path, Path]:
    """An input file and the finished output folder of encoding it in 3 partitions."""
    source = write_text(tmp_path / "in.txt", ROWS)
    out = tmp_path / "out"
    encode_files(model, [source], out, partition_rows=2, workers=1, progress=False)
    return source, out


@pytest.fixture(scope="module")
def finished(cluster, tmp_path_factory) -> tuple[Path, Path]:
    """One finished output for the tests that only read it or its manifest (each works on a copy: see ``copied``);
    its model is conftest's ``tiny_model`` (same seed, same table)."""
    from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer

    from static_model import StaticModel

    table = np.random.default_rng(0).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
    model = StaticModel(table, make_wordpiece_tokenizer(), config={"normalize": True})
    return finished_output(model, tmp_path_factory.mktemp("finished"))


def copied(finished: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """The shared input (left as it is) and a copy of the shared output folder, which the test may change."""
    source, out = finished
    shutil.copytree(out, tmp_path / "out")
    return source, tmp_path / "out"


# ------------------------------------------------------------------ 1. worker failures: one line naming what failed

def test_a_failing_partition_is_one_line_naming_it(cluster, tiny_model, tmp_path):
    """A string column holding a null passes planning; the worker's InputError comes back as one line that names
    the file, the rows and the partition, not Ray's traceback."""
    source = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": ["a cat", "a dog", None, "the mat"]}), source)
    with pytest.raises(WorkerError) as caught:
        encode_files(tiny_model, [source], tmp_path / "out", partition_rows=2, workers=1, progress=False)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert f"encoding {source} rows 2-3 into part-000001.parquet failed: InputError:" in message
    assert "row 2: column 'text' holds NoneType, not a string" in message
    assert "NoneType" in caught.value.worker_traceback  # the worker's own traceback stays available


def test_the_cli_prints_a_worker_failure_as_one_error_line(cluster, tiny_model, tmp_path, capsys):
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    source = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": [None, "a dog"]}), source)
    status = main(["encode", str(folder), str(source), "-o", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and err.startswith("error: encoding ") and "Traceback" not in err, err


def test_a_teacher_that_fails_to_load_on_the_workers_is_reported_before_any_work(cluster, tmp_path):
    """The driver only reads the teacher's files; a weights file the workers cannot load is reported by the
    workers' ready() check, naming the teacher, and no chunk is written."""
    import torch
    from helpers.teachers import make_wordpiece_teacher

    torch.set_num_threads(1)
    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    (teacher / "model.safetensors").write_bytes(b"not a safetensors file" * 100)
    with pytest.raises(WorkerError, match=f"loading the teacher '{teacher}' on a worker failed: ") as caught:
        featurize_on_ray(str(teacher), ["a cat", "a dog"] * 10, cache_dir=tmp_path / "cache", chunk_size=5,
                         workers=1, progress=False)
    assert "\n" not in str(caught.value)
    assert not list((tmp_path / "cache").glob("chunk-*"))


def test_a_dead_worker_process_is_named_as_such():
    from ray.exceptions import ActorDiedError

    error = worker_error(ActorDiedError(), "encoding x.txt rows 0-9 into part-000000.parquet")
    assert str(error).startswith("encoding x.txt rows 0-9 into part-000000.parquet failed: the worker process died")
    assert "\n" not in str(error)


# ------------------------------------------------------------------ 2. resume safety: inputs edited in place

def test_a_resume_refuses_an_input_edited_in_place(cluster, tiny_model, tmp_path):
    source, out = finished_output(tiny_model, tmp_path)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["bytes"] == source.stat().st_size
    assert manifest["inputs"][0]["mtime_ns"] == source.stat().st_mtime_ns
    (out / "part-000001.parquet").unlink()  # as if the first run had been interrupted
    source.write_text(source.read_text(encoding="utf-8").replace("cat", "dog"), encoding="utf-8")  # same size
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    with pytest.raises(FileExistsError, match=f"input {source.resolve()} changed since the first run"):
        encode_files(tiny_model, [source], out, partition_rows=2, progress=False)
    assert len(list(out.glob("part-*.parquet"))) == 2  # nothing was mixed in


def test_an_input_without_rows_is_in_the_manifest_and_a_resume_after_it_gained_rows_names_it(cluster, tiny_model,
                                                                                              tmp_path):
    source = write_text(tmp_path / "in.txt", ROWS)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    out = tmp_path / "out"
    encode_files(tiny_model, [source, empty], out, partition_rows=2, workers=1, progress=False)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert [entry["path"] for entry in manifest["inputs"]] == [str(source.resolve()), str(empty.resolve())]
    assert manifest["inputs"][1]["bytes"] == 0
    encode_files(tiny_model, [source, empty], out, partition_rows=2, workers=1, progress=False)  # resumes: unchanged
    empty.write_text("a new row\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match=f"input {empty.resolve()} changed since the first run"):
        encode_files(tiny_model, [source, empty], out, partition_rows=2, workers=1, progress=False)


def test_a_worker_refuses_a_file_changed_since_planning(tmp_path):
    source = write_text(tmp_path / "in.txt", ROWS)
    [partition] = plan_partitions([source], partition_rows=100)
    assert (partition.file_bytes, partition.file_mtime_ns) == (source.stat().st_size, source.stat().st_mtime_ns)
    os.utime(source, ns=(partition.file_mtime_ns, partition.file_mtime_ns + 10**9))
    with pytest.raises(InputError, match=f"{source.resolve()} changed since the run was planned"):
        read_partition(partition)


def test_a_resume_of_an_old_manifest_without_modification_times_is_refused(finished, tiny_model, tmp_path):
    """Format 1 recorded sizes only: it cannot tell an edited input, so it is not resumed; it still reads back."""
    source, out = copied(finished, tmp_path)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["format"] = 1
    for entry in manifest["inputs"]:
        del entry["mtime_ns"]
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert read_vectors(out)[1].shape == (len(ROWS), tiny_model.dim)
    with pytest.raises(FileExistsError, match="older version .* start a fresh output folder"):
        encode_files(tiny_model, [source], out, partition_rows=2, progress=False)


# ------------------------------------------------------------------ 3. one run at a time per output folder

def test_a_second_run_on_a_locked_folder_is_refused(tiny_model, tmp_path):
    """An empty input needs no cluster: the lock is taken all the same."""
    source = write_text(tmp_path / "empty.txt", [])
    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out):
        with pytest.raises(FolderInUseError, match=f"{out} is in use by another run"):
            encode_files(tiny_model, [source], out, progress=False)
    assert sorted(f.name for f in out.iterdir()) == [".lock"]
    assert encode_files(tiny_model, [source], out, progress=False).partitions == 0  # released at the block's end


def test_the_lock_of_a_killed_run_is_released(tiny_model, tmp_path):
    source = write_text(tmp_path / "empty.txt", [])
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom scale.engine import folder_lock\n"
         f"with folder_lock(Path({str(out)!r})):\n    print('locked', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderInUseError, match=str(out)):
            encode_files(tiny_model, [source], out, progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert encode_files(tiny_model, [source], out, progress=False).partitions == 0


def test_a_non_bulk_encode_folder_gets_no_lock_file(tiny_model, tmp_path):
    source = write_text(tmp_path / "empty.txt", [])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a bulk-encode folder"):
        encode_files(tiny_model, [source], out, progress=False)
    assert [f.name for f in out.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------ 4. reading an output back

def test_read_vectors_refuses_an_unfinished_folder(finished, tmp_path):
    _, out = copied(finished, tmp_path)
    (out / "part-000001.parquet").unlink()
    with pytest.raises(OutputError, match=f"{out} is unfinished: 1 of 3 partitions are missing .*part-000001"):
        read_vectors(out)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: no {MANIFEST}"):
        read_vectors(tmp_path)


def test_an_empty_input_reads_back_as_zero_rows_of_the_model_dim(tiny_model, tmp_path):
    source = write_text(tmp_path / "empty.txt", [])
    report = encode_files(tiny_model, [source], tmp_path / "out", progress=False)
    assert (report.partitions, report.rows) == (0, 0)
    ids, vectors = read_vectors(tmp_path / "out")
    assert ids.shape == (0,) and ids.dtype == np.int64
    assert vectors.shape == (0, tiny_model.dim) and vectors.dtype == np.float32


def test_a_finished_output_reads_back_with_the_same_dtypes(finished, tiny_model):
    ids, vectors = read_vectors(finished[1])
    assert ids.dtype == np.int64 and vectors.dtype == np.float32
    np.testing.assert_array_equal(ids, np.arange(len(ROWS)))
    np.testing.assert_array_equal(vectors, tiny_model.encode(ROWS))


# ------------------------------------------------------------------ 5. a corrupt manifest

@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a readable bulk-encode manifest"),
    ("[1, 2]", r"a JSON list, not an object"),
    ('{"format": 2, "inputs": [], "column": "text", "partition_rows": "2", "partitions": 3, "rows": 6, '
     '"model": {"dim": 8}}', "'partition_rows' is \"2\", not a non-negative integer"),
    ('{"format": 2, "inputs": [{"bytes": 3}], "column": "text", "partition_rows": 2, "partitions": 3, "rows": 6, '
     '"model": {"dim": 8}}', "an 'inputs' entry without a 'path'"),
    ('{"format": 2, "inputs": [], "column": "text", "partition_rows": 2, "partitions": 3, "rows": 6, '
     '"model": {}}', "'model' 'dim' is null"),
])
def test_a_corrupt_manifest_is_an_error_naming_the_file(tiny_model, tmp_path, content, problem):
    source = write_text(tmp_path / "in.txt", ROWS)
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_text(content, encoding="utf-8")
    for call in (lambda: encode_files(tiny_model, [source], out, progress=False), lambda: read_vectors(out)):
        with pytest.raises(OutputError) as caught:
            call()
        assert str(caught.value).startswith(f"{out / MANIFEST}: ") and problem in str(caught.value)
        assert "\n" not in str(caught.value)


# ------------------------------------------------------------------ 6. Parquet: the column must hold strings

def test_a_non_string_parquet_column_is_refused_at_planning(tmp_path):
    source = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3], "body": ["a", "b", "c"]}), source)
    with pytest.raises(InputError, match=r"column 'text' is of type int64, not a string column"):
        plan_partitions([source])
    categorical = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"text": pa.array(["a", "b", "a"]).dictionary_encode()}), categorical)
    [partition] = plan_partitions([categorical])  # dictionary-encoded strings are strings
    assert read_partition(partition) == ["a", "b", "a"]


# ------------------------------------------------------------------ 7. JSONL blank lines; CLI usage errors

def test_jsonl_blank_lines_are_no_rows_in_planning_and_in_the_workers(tmp_path):
    source = tmp_path / "x.jsonl"
    source.write_text('\n{"text": "a"}\n\n  \n{"text": "b"}\n{"text": "c"}\n\n{"text": "d"}', encoding="utf-8")
    for size in (1, 2, 3, 10):
        partitions = plan_partitions([source], partition_rows=size)
        assert sum(p.n_rows for p in partitions) == 4
        assert [t for p in partitions for t in read_partition(p)] == ["a", "b", "c", "d"]
    source.write_text('\n\n{"text": "a"}\n\n{"body": "b"}\n', encoding="utf-8")
    [partition] = plan_partitions([source])
    with pytest.raises(InputError, match=r"x.jsonl, line 5: no field 'text'"):  # the file's own line number
        read_partition(partition)


@pytest.mark.parametrize("option", ["--partition-rows", "--workers", "--batch-size"])
def test_a_non_positive_count_is_a_usage_error_naming_the_option(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["encode", "model", "in.txt", "-o", str(tmp_path / "out"), option, "0"])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert f"argument {option}: must be a positive whole number; got '0'" in err
    assert "partition_rows" not in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("output", ["", " "])
def test_an_empty_output_is_refused_by_name(tiny_model, tmp_path, monkeypatch, output):
    """``Path("")`` is the current folder: it was taken as the output and refused as 'output . is not empty'."""
    source = write_text(tmp_path / "in.txt", ["hello world"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="output is empty; pass the folder"):
        encode_files(tiny_model, [source], output, progress=False)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.txt"]
