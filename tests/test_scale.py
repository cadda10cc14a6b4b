"""Bulk encoding on a real local Ray cluster (2 CPUs): equality with StaticModel.encode, resume, clear errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.tokenizers import random_texts

from scale import InputError, encode_files, plan_partitions
from scale.bulk_encode import read_vectors
from static_model import StaticModel


@pytest.fixture
def model(tiny_model) -> StaticModel:
    return tiny_model


def write_inputs(folder: Path, rows: list[str]) -> list[Path]:
    """The same rows split over a text file, a JSONL file and a Parquet file (two row groups)."""
    a, b = len(rows) // 3, 2 * len(rows) // 3
    txt, jsonl, parquet = folder / "a.txt", folder / "b.jsonl", folder / "c.parquet"
    txt.write_text("".join(r + "\n" for r in rows[:a]), encoding="utf-8")
    jsonl.write_text("".join(json.dumps({"text": r, "n": i}) + "\n" for i, r in enumerate(rows[a:b])), encoding="utf-8")
    pq.write_table(pa.table({"text": rows[b:], "n": list(range(len(rows) - b))}), parquet, row_group_size=97)
    return [txt, jsonl, parquet]


def test_vectors_and_ids_equal_single_process_encode(cluster, model, tmp_path):
    rows = random_texts(1000)
    inputs = write_inputs(tmp_path, rows)
    report = encode_files(model, inputs, tmp_path / "out", partition_rows=64, workers=2, progress=False)
    n_partitions = len(plan_partitions(inputs, partition_rows=64))
    assert (report.partitions, report.skipped, report.rows) == (n_partitions, 0, 1000)
    ids, vectors = read_vectors(tmp_path / "out")
    np.testing.assert_array_equal(ids, np.arange(1000))
    np.testing.assert_array_equal(vectors, model.encode(rows))
    again = encode_files(model, inputs, tmp_path / "out", partition_rows=64, workers=2, progress=False)
    assert (again.skipped, again.encoded, again.rows) == (report.partitions, 0, 0)


def test_partitions_cover_every_line_once(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes(b"a\n\nb\r\nc")  # a blank line, a CRLF line and a last line without its newline
    parts = plan_partitions([f], partition_rows=2)
    assert [(p.first_row, p.n_rows) for p in parts] == [(0, 2), (2, 2)]
    from scale.inputs import read_partition

    assert [t for p in parts for t in read_partition(p)] == ["a", "", "b", "c"]


def test_resume_after_an_interrupted_run(cluster, model, tmp_path):
    """Ctrl-C of the CLI mid-run keeps the finished partitions; the same command again encodes only the rest."""
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    rows = random_texts(200_000, seed=1)
    (tmp_path / "in.txt").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "scale", "encode", str(folder), str(tmp_path / "in.txt"), "--output", str(out),
           "--partition-rows", "2000", "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("part-*.parquet"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    done = len(list(out.glob("part-*.parquet")))
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err.strip().splitlines()[-1]
    assert 0 < done < 100 and not list(out.glob(".part-*"))
    report = encode_files(folder, [tmp_path / "in.txt"], out, partition_rows=2000, progress=False)
    assert (report.skipped, report.encoded) == (done, 100 - done)
    _, vectors = read_vectors(out)
    np.testing.assert_array_equal(vectors, model.encode(rows))


def _encoder_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_Encoder"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_killed_worker_is_replaced_and_its_partition_redone(cluster, model, tmp_path):
    rows = random_texts(200_000, seed=2)
    (tmp_path / "in.txt").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = _encoder_worker_pids()
            if pids and list(out.glob("part-*.parquet")):
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    report = encode_files(model, [tmp_path / "in.txt"], out, partition_rows=2000, workers=2, progress=False)
    killer.join()
    assert killed and report.rows == 200_000
    _, vectors = read_vectors(out)
    np.testing.assert_array_equal(vectors, model.encode(rows))


def test_bad_address_is_a_clear_error():
    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from scale.bulk_encode import check_address

    with pytest.raises(ConnectionError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_address("not an address")


def test_cli_errors_name_the_problem(model, tmp_path):
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    pq.write_table(pa.table({"body": ["a cat"]}), tmp_path / "x.parquet")
    (tmp_path / "x.jsonl").write_text('{"body": "a cat"}\n', encoding="utf-8")
    (tmp_path / "x.csv").write_text("text\na cat\n", encoding="utf-8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("a cat\n", encoding="utf-8")
    cases = {
        "x.parquet": "no column 'text' (columns: body)",
        "x.jsonl": "line 1: no field 'text'",
        "x.csv": "unknown input format .csv",
        "missing.txt": "no such file",
    }
    for name, message in cases.items():
        proc = subprocess.run([sys.executable, "-m", "scale", "encode", str(folder), str(tmp_path / name), "-o",
                               str(tmp_path / "o")], capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "scale", "encode", str(folder), str(tmp_path / "ok.txt"), "-o",
                           str(tmp_path / "full")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a bulk-encode folder" in proc.stderr
    assert (tmp_path / "full" / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_resume_with_other_inputs_is_refused(cluster, model, tmp_path):
    (tmp_path / "a.txt").write_text("a cat\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("a dog\nthe mat\n", encoding="utf-8")
    encode_files(model, [tmp_path / "a.txt"], tmp_path / "out", progress=False)
    with pytest.raises(FileExistsError, match="made from other inputs"):
        encode_files(model, [tmp_path / "b.txt"], tmp_path / "out", progress=False)
    report = encode_files(model, [tmp_path / "b.txt"], tmp_path / "out", overwrite=True, progress=False)
    assert report.rows == 2 and read_vectors(tmp_path / "out")[1].shape == (2, model.dim)


def test_a_resume_with_a_model_that_differs_only_in_its_mapping_is_refused(cluster, tiny_table, wordpiece_tokenizer,
                                                                          tmp_path):
    """Two vocabulary-quantized models with the same cluster rows and weights but another token mapping give other
    vectors: an interrupted run of one is not resumed with the other (the old manifest hashed no mapping)."""
    n = len(tiny_table)

    def mapped(shift: int) -> StaticModel:
        return StaticModel(tiny_table[:4].copy(), wordpiece_tokenizer, weights=np.ones(n, dtype=np.float32),
                           token_mapping=((np.arange(n) + shift) % 4).astype(np.int32), config={"normalize": True})

    a, b = mapped(0), mapped(1)
    rows = random_texts(40)
    (tmp_path / "in.txt").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    encode_files(a, [tmp_path / "in.txt"], out, partition_rows=10, progress=False)
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 4
    parts[1].unlink()  # as if the run had been interrupted before that partition
    with pytest.raises(FileExistsError, match="made from other model"):
        encode_files(b, [tmp_path / "in.txt"], out, partition_rows=10, progress=False)
    report = encode_files(b, [tmp_path / "in.txt"], out, partition_rows=10, overwrite=True, progress=False)
    assert report.encoded == 4
    np.testing.assert_array_equal(read_vectors(out)[1], b.encode(rows))


def test_bad_arguments_fail_before_any_work(model, tmp_path):
    (tmp_path / "a.txt").write_text("a cat\n", encoding="utf-8")
    with pytest.raises(ValueError, match="partition_rows"):
        encode_files(model, [tmp_path / "a.txt"], tmp_path / "out", partition_rows=0)
    with pytest.raises(ValueError, match="workers"):
        encode_files(model, [tmp_path / "a.txt"], tmp_path / "out", workers=0)
    with pytest.raises(InputError, match="no input files"):
        encode_files(model, [], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_featurize_on_ray_fills_refines_cache_and_resumes(cluster, tmp_path, monkeypatch):
    """The chunks the workers write are the ones single-process featurize writes; refine then encodes nothing."""
    import torch
    from helpers.teachers import make_wordpiece_teacher

    from distill import Teacher
    from distill.refine import featurize as rf
    from scale import featurize_on_ray

    torch.set_num_threads(1)
    teacher_dir = make_wordpiece_teacher(tmp_path / "teacher")
    corpus = random_texts(600, seed=3)
    report = featurize_on_ray(str(teacher_dir), corpus, cache_dir=tmp_path / "cache", chunk_size=64, workers=2,
                              progress=False)
    assert (report.chunks, report.skipped, report.encoded, report.passages) == (10, 0, 10, 600)
    teacher = Teacher(str(teacher_dir), device="cpu")
    expected = rf.featurize(teacher, corpus, cache_dir=tmp_path / "single", chunk_size=64, show_progress_bar=False)
    calls: list[int] = []
    real = rf.encode_chunk
    monkeypatch.setattr(rf, "encode_chunk", lambda t, chunk, **kw: calls.append(len(chunk)) or real(t, chunk, **kw))
    cached = rf.featurize(teacher, corpus, cache_dir=tmp_path / "cache", chunk_size=64, show_progress_bar=False)
    assert calls == []
    np.testing.assert_allclose(cached, expected, atol=1e-5)
    for victim in sorted((tmp_path / "cache").glob("chunk-*.npy"))[2:5]:
        victim.unlink()
    again = featurize_on_ray(str(teacher_dir), corpus, cache_dir=tmp_path / "cache", chunk_size=64, progress=False)
    assert (again.skipped, again.encoded) == (7, 3)
    np.testing.assert_allclose(rf.featurize(teacher, corpus, cache_dir=tmp_path / "cache", chunk_size=64,
                                            show_progress_bar=False), expected, atol=1e-5)
    assert calls == []


def test_featurize_refuses_a_cache_folder_of_another_teacher_before_any_work(tmp_path):
    """The chunks are named by their passages only: another teacher's folder once came back as all cached."""
    import torch
    from helpers.teachers import make_wordpiece_teacher

    from distill import Teacher
    from distill.refine import featurize as rf
    from scale import featurize_on_ray

    torch.set_num_threads(1)
    corpus = random_texts(40, seed=5)
    other = Teacher(str(make_wordpiece_teacher(tmp_path / "other", seed=1)), device="cpu")
    rf.featurize(other, corpus, cache_dir=tmp_path / "cache", chunk_size=16, show_progress_bar=False)
    chunks = sorted(p.name for p in (tmp_path / "cache").iterdir())
    teacher_dir = make_wordpiece_teacher(tmp_path / "teacher", seed=0)
    with pytest.raises(ValueError, match="another teacher"):
        featurize_on_ray(str(teacher_dir), corpus, cache_dir=tmp_path / "cache", chunk_size=16, progress=False)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == chunks


def test_a_worker_whose_teacher_resolves_to_other_files_is_refused(tmp_path):
    """Each worker resolves the teacher on its own node; one that finds other weights must not fill the cache."""
    import torch
    from helpers.teachers import make_wordpiece_teacher

    from distill import Teacher
    from distill.refine.featurize import teacher_fingerprint
    from scale.featurize import _Featurizer

    torch.set_num_threads(1)
    folder = make_wordpiece_teacher(tmp_path / "teacher")
    expected = teacher_fingerprint(Teacher(str(folder), device="cpu"))
    assert _Featurizer(str(folder), "cpu", 1, expected).ready()
    with pytest.raises(ValueError, match="resolves on worker .* to other files"):
        _Featurizer(str(folder), "cpu", 1, "0123456789abcdef").ready()
