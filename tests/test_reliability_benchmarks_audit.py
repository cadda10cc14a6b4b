"""Audit of the benchmark command lines: bad options are one ``error:`` line naming the option (exit 2), no dataset
is left out without saying so, an interrupted run never replaces a finished report, and no cache keeps what a bad
or killed encoder left."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_data import write_tiny_data

from benchmarks.__main__ import main
from benchmarks.quality import data
from benchmarks.quality.cache import EmbeddingCache
from distill.cli_checks import UsageError


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return write_tiny_data(tmp_path / "data")


@pytest.fixture
def static_folder(tmp_path, tiny_model) -> Path:
    folder = tmp_path / "tiny-static"
    tiny_model.save_pretrained(folder)
    return folder


def _quality(static_folder: Path, tiny_data: Path, *extra: str) -> list[str]:
    return ["quality", "-m", f"static:{static_folder}", "--data", str(tiny_data), "--cache", "none",
            "--no-progress", *extra]


# ------------------------------------------------------------------ task and dataset selection
def test_an_unknown_task_type_is_one_error_line_naming_tasks(tiny_data, static_folder, capsys):
    assert main(_quality(static_folder, tiny_data, "--tasks", "sts,bogus")) == 2  # was a ValueError traceback
    err = capsys.readouterr().err
    assert err.startswith("error: --tasks sts,bogus: unknown task type(s) ['bogus']") and err.count("\n") == 1


def test_a_mistyped_dataset_name_is_an_error_not_a_smaller_run(tiny_data, static_folder, capsys):
    assert main(_quality(static_folder, tiny_data, "--datasets", "STSBenchmark,SICKR")) == 2  # was a 1-dataset run
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --datasets STSBenchmark,SICKR: unknown dataset name(s) 'SICKR'")
    assert "SICK-R" in captured.err and captured.out == ""
    assert main(_quality(static_folder, tiny_data, "--datasets", "STSBenchmark,")) == 2  # an empty item
    assert "unknown dataset name(s) ''" in capsys.readouterr().err


def test_select_names_unknown_names_and_reads_spaced_ones(tiny_data):
    with pytest.raises(UsageError, match=r"--dataset nope: unknown dataset name\(s\) 'nope'"):
        data.select(tiny_data, names=["nope"], names_option="--dataset")
    # a name after ", " in a comma list was silently matched to nothing
    assert [s.name for s in data.select(tiny_data, names=["STSBenchmark", " SICK-R"])] == ["STSBenchmark", "SICK-R"]
    # a known name the task filter leaves out is still left out (the filters intersect)
    assert data.select(tiny_data, tasks=["sts"], names=["SciFact-train"]) == []


def test_a_dataset_only_discover_finds_gets_a_hint(tiny_data):
    extra = tiny_data / "sts" / "mysts"
    extra.mkdir()
    (extra / "test.jsonl").write_text((tiny_data / "sts/stsbenchmark/test.jsonl").read_text())
    with pytest.raises(UsageError, match="add --discover"):
        data.select(tiny_data, names=["mysts"])
    assert [s.name for s in data.select(tiny_data, names=["mysts"], discover_extra=True)] == ["mysts"]


def test_cluster_seeds_names_its_own_option(tiny_data, static_folder, capsys):
    argv = ["cluster-seeds", "-m", f"static:{static_folder}", "--data", str(tiny_data), "--dataset", "StackOverflw"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: --dataset StackOverflw: unknown dataset name(s)")


# ------------------------------------------------------------------ --train-cap, --reference
@pytest.mark.parametrize("cap", ["0", "-5"])
def test_a_train_cap_below_one_is_a_usage_error(tiny_data, static_folder, capsys, cap):
    # was scikit-learn's "Found array with 0 sample(s)" (or numpy's negative size) traceback mid-run
    assert main(_quality(static_folder, tiny_data, "--train-cap", cap)) == 2
    assert capsys.readouterr().err == f"error: --train-cap must be at least 1, got {cap}\n"


def test_a_reference_index_past_the_models_is_refused_before_the_run(tiny_data, static_folder, capsys, monkeypatch):
    from benchmarks.quality import suite

    def started(args):
        raise AssertionError("the run started before --reference was checked")

    monkeypatch.setattr(suite, "load_datasets", started)
    # was an IndexError after every model had been scored
    assert main(_quality(static_folder, tiny_data, "--reference", "1")) == 2
    assert capsys.readouterr().err.startswith("error: --reference 1: there are 1 models (-m)")


def test_a_reference_name_that_matches_no_model_is_said(tiny_data, static_folder, capsys):
    assert main(_quality(static_folder, tiny_data, "--datasets", "STSBenchmark", "--reference", "nope")) == 0
    captured = capsys.readouterr()
    assert "warning: --reference nope: no model of that name (models: tiny-static)" in captured.err
    assert "% of tiny-static" in captured.out


# ------------------------------------------------------------------ the embedding cache
def test_a_wrong_row_count_is_never_cached(tmp_path):
    texts = [f"text {i}" for i in range(6)]
    cache = EmbeddingCache(tmp_path, "fp")
    with pytest.raises(ValueError, match=r"shape \(5, 3\) for 6 texts; nothing cached"):
        cache.get_or_encode(texts, lambda ts: np.ones((len(ts) - 1, 3), np.float32), progress=False)
    assert not list(cache.dir.glob("chunk-*.npz"))  # was a chunk of 6 hashes and 5 rows, an IndexError ever after
    good = EmbeddingCache(tmp_path, "fp").get_or_encode(
        texts, lambda ts: np.arange(3 * len(ts), dtype=np.float32).reshape(len(ts), 3), progress=False)
    assert good.shape == (6, 3) and np.isfinite(good).all()


def test_non_finite_vectors_are_never_cached(tmp_path):
    texts = ["a", "b"]

    def nan_for_b(ts):
        out = np.ones((len(ts), 2), np.float32)
        out[[t == "b" for t in ts]] = np.nan
        return out

    cache = EmbeddingCache(tmp_path, "fp")
    with pytest.raises(ValueError, match=r"non-finite values .* for 1 of 2 texts, the first 'b'; nothing cached"):
        cache.get_or_encode(texts, nan_for_b, progress=False)
    assert not list(cache.dir.glob("chunk-*.npz"))  # was stored, and read back by every later run


def test_a_chunk_of_other_dimensions_is_never_cached(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp")
    cache.get_or_encode(["a"], lambda ts: np.ones((len(ts), 4), np.float32), progress=False, chunk_size=1)
    with pytest.raises(ValueError, match="returned 3 dimensions, the cached vectors of this model have 4"):
        EmbeddingCache(tmp_path, "fp").get_or_encode(["a", "b"], lambda ts: np.ones((len(ts), 3), np.float32),
                                                     progress=False)
    assert len(list(cache.dir.glob("chunk-*.npz"))) == 1


# ------------------------------------------------------------------ distill-speed: the report of record
def _fake_workers(monkeypatch, interrupt_after: int | None):
    """``distill-speed`` without teachers or subprocesses: each worker "run" prints one JSON line; the run after
    ``interrupt_after`` of them is a Ctrl-C."""
    import distill.resolve
    from benchmarks.speed import distill_time

    monkeypatch.setattr(distill.resolve, "resolve_teacher", lambda name: f"/nowhere/{name}")
    calls = {"workers": 0}
    real_run = subprocess.run

    def fake_run(cmd, *args, **kwargs):
        if cmd[0] != sys.executable:  # git (versions), uname (platform): the real thing
            return real_run(cmd, *args, **kwargs)
        if interrupt_after is not None and calls["workers"] == interrupt_after:
            raise KeyboardInterrupt
        calls["workers"] += 1
        line = json.dumps({"tool": cmd[3], "wall_s": 1.0, "distill_s": 0.5, "cpu_s": 1.0, "peak_rss_mib": 10.0,
                           "vm_hwm_mib": 10.0, "shape": [5, 4], "explained_variance": None, "torch_threads": 1})
        return subprocess.CompletedProcess(cmd, 0, stdout=line + "\n", stderr="")

    monkeypatch.setattr(distill_time.subprocess, "run", fake_run)
    return calls


def _old_report(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    out = tmp_path / "results" / "distill_speed.md"
    out.parent.mkdir()
    old = {out: b"# the finished report of an earlier run\n", out.with_suffix(".json"): b"[{\"tool\": \"old\"}]\n"}
    for path, content in old.items():
        path.write_bytes(content)
    return out, old


def _distill_speed(out: Path, *extra: str) -> list[str]:
    return ["distill-speed", "--teachers", "all-MiniLM-L6-v2", "--output", str(out), *extra]


def test_an_interrupted_distill_speed_leaves_the_old_report_whole(tmp_path, monkeypatch, capsys):
    out, old = _old_report(tmp_path)
    _fake_workers(monkeypatch, interrupt_after=1)  # one run done, Ctrl-C in the second
    assert main(_distill_speed(out, "--repeats", "1")) == 130
    for path, content in old.items():
        assert path.read_bytes() == content  # was replaced by a one-run report after the first run
    partial = json.loads((out.parent / "distill_speed.partial.json").read_text())
    assert [r["tool"] for r in partial] == ["distill"]


def test_a_finished_distill_speed_replaces_the_report_and_removes_the_partial_one(tmp_path, monkeypatch, capsys):
    out, _ = _old_report(tmp_path)
    calls = _fake_workers(monkeypatch, interrupt_after=None)
    assert main(_distill_speed(out, "--repeats", "2")) == 0
    assert calls["workers"] == 4
    assert [r["tool"] for r in json.loads(out.with_suffix(".json").read_text())] == [
        "distill", "model2vec", "model2vec", "distill"]
    assert "| all-MiniLM-L6-v2 | distill | 2 |" in out.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["distill_speed.json", "distill_speed.md"]


@pytest.mark.parametrize("repeats", ["0", "-1"])
def test_distill_speed_with_no_repeats_is_a_usage_error(tmp_path, monkeypatch, capsys, repeats):
    out, old = _old_report(tmp_path)
    calls = _fake_workers(monkeypatch, interrupt_after=None)
    assert main(_distill_speed(out, "--repeats", repeats)) == 2  # was an empty table written over the report
    assert capsys.readouterr().err == f"error: --repeats must be at least 1, got {repeats}\n"
    assert calls["workers"] == 0
    for path, content in old.items():
        assert path.read_bytes() == content


# ------------------------------------------------------------------ classify: the report and the teacher cache
def test_an_interrupted_classify_leaves_the_old_report_whole(tmp_path, tiny_data, static_folder, monkeypatch, capsys):
    from benchmarks.studies import classify

    out = tmp_path / "classify.md"
    old = {out: b"# finished\n", out.with_suffix(".json"): b"[]\n"}
    for path, content in old.items():
        path.write_bytes(content)

    def one_result_then_ctrl_c(args, on_result=None):
        on_result([classify.Outcome("sst2", "1000", "tfidf", 0.8, 100.0, 1.0, 1000, 10)])
        raise KeyboardInterrupt

    monkeypatch.setattr(classify, "run_benchmark", one_result_then_ctrl_c)
    argv = ["classify", "--model", str(static_folder), "--data", str(tiny_data), "--out", str(out),
            "--datasets", "sst2", "--methods", "tfidf"]
    assert main(argv) == 130
    for path, content in old.items():
        assert path.read_bytes() == content  # was rewritten with the one result
    (row,) = json.loads((tmp_path / "classify.partial.json").read_text())
    assert row["accuracy"] == 0.8  # what --from-json merges after an interrupted run

    monkeypatch.setattr(classify, "run_benchmark", lambda args, on_result=None: [
        classify.Outcome("sst2", "1000", "tfidf", 0.9, 100.0, 1.0, 1000, 10)])
    assert main(argv) == 0
    (row,) = json.loads(out.with_suffix(".json").read_text())
    assert row["accuracy"] == 0.9 and not (tmp_path / "classify.partial.json").exists()


@pytest.mark.parametrize("size", ["abc", "0", "-3"])
def test_classify_bad_train_size_is_a_usage_error(tmp_path, tiny_data, static_folder, capsys, size):
    argv = ["classify", "--model", str(static_folder), "--data", str(tiny_data), "--out", str(tmp_path / "c"),
            "--train-sizes", size]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: --train-sizes {size}: give a number of training texts")


def _runner(tmp_path: Path, impl: str, encode):
    import argparse

    from benchmarks.studies import classify

    runner = classify.Runner(argparse.Namespace(seed=0, cache_dir=str(tmp_path / "cache"), teacher="/models/t"))
    runner._teacher = object()
    runner.teacher_impl = impl
    runner._teacher_encode = encode
    return runner


def test_a_teacher_cache_write_cut_short_leaves_no_file(tmp_path, monkeypatch):
    from benchmarks.studies import classify

    def killed_mid_write(file, arr, *args, **kwargs):
        handle = open(file, "wb") if isinstance(file, (str, Path)) else file  # noqa: SIM115
        handle.write(b"\x93NUMPY\x01\x00half a header")
        handle.flush()
        raise KeyboardInterrupt

    runner = _runner(tmp_path, "sentence_transformers.SentenceTransformer", lambda ts: np.ones((len(ts), 3)))
    monkeypatch.setattr(classify.np, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        runner.teacher_encode(["a", "b"], "test")
    assert not list((tmp_path / "cache").glob("teacher-*.npy"))  # was a truncated .npy that np.load fails on


def test_a_changed_teacher_at_one_path_does_not_read_the_old_vectors(tmp_path, monkeypatch):
    import distill.refine.featurize

    fingerprint = {"value": "one"}
    monkeypatch.setattr(distill.refine.featurize, "teacher_fingerprint", lambda teacher: fingerprint["value"])
    first = _runner(tmp_path, "distill.Teacher", lambda ts: np.ones((len(ts), 3)))
    assert first.teacher_encode(["a"], "test").sum() == 3
    fingerprint["value"] = "two"  # new weights in the same --teacher folder
    second = _runner(tmp_path, "distill.Teacher", lambda ts: np.full((len(ts), 3), 2.0))
    assert second.teacher_encode(["a"], "test").sum() == 6  # was 3: the old teacher's vectors
    again = _runner(tmp_path, "distill.Teacher", lambda ts: pytest.fail("encoded although cached"))
    assert again.teacher_encode(["a"], "test").sum() == 6



# ------------------------------------------------------------------ speed commands: options checked before any work
@pytest.fixture
def no_worker(monkeypatch):
    """Fail the test if a speed command starts a worker process."""
    from benchmarks.speed import bulk, models, runtime

    def started(*args, **kwargs):
        raise AssertionError("a worker started before the options were checked")

    monkeypatch.setattr(runtime, "_one", started)
    monkeypatch.setattr(bulk, "run_mode", started)
    monkeypatch.setattr(models, "run_speed", started)


@pytest.mark.parametrize("options, message", [
    (["--n", "0"], "error: --n must be at least 1, got 0"),
    (["--repeats", "0"], "error: --repeats must be at least 1, got 0"),  # was an IndexError after every scenario
    (["--n", "500"], "error: --n 500: only 24 distinct texts under"),  # was load_texts' ValueError traceback
    (["--contrast", "abc"], "error: --contrast abc: a number or 'config'"),  # was each worker's traceback
])
def test_runtime_speed_bad_options_are_one_error_line(tiny_data, static_folder, no_worker, capsys, options, message):
    assert main(["runtime-speed", str(static_folder), "--data", str(tiny_data), *options]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_runtime_speed_on_a_missing_folder_is_one_error_line(tmp_path, tiny_data, no_worker, capsys):
    # was a RuntimeError traceback quoting the worker's traceback
    assert main(["runtime-speed", str(tmp_path / "nosuch"), "--data", str(tiny_data), "--n", "2"]) == 2
    assert capsys.readouterr().err == f"error: folder {tmp_path / 'nosuch'}: the folder does not exist\n"


@pytest.mark.parametrize("options, message", [
    (["--lines", "0"], "error: --lines must be at least 1, got 0"),  # was numpy's traceback after a worker ran
    (["--featurize", "-1"], "error: --featurize must be 0 (skip) or more, got -1"),
])
def test_scale_speed_bad_options_are_one_error_line(tmp_path, static_folder, no_worker, capsys, options, message):
    source = tmp_path / "lines.txt"
    source.write_text("one line\nanother line\n")
    assert main(["scale-speed", str(static_folder), "--source", str(source), *options]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_scale_speed_source_folder_is_not_said_to_be_missing(tmp_path, static_folder, no_worker, capsys):
    assert main(["scale-speed", str(static_folder), "--source", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: --source {tmp_path}: a folder, not a file\n"  # was "does not exist"


def _sentences(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("".join(f"hello world sentence {i}\n" for i in range(20)))
    return path


def test_a_speed_anchor_index_past_the_models_is_refused_before_measuring(tmp_path, static_folder, no_worker,
                                                                          capsys):
    argv = ["speed", "-m", f"static:{static_folder}", "--sentences", str(_sentences(tmp_path)), "--anchor", "3"]
    assert main(argv) == 2  # was an IndexError once every model had been measured
    assert capsys.readouterr().err.startswith("error: --anchor 3: there are 1 models (-m)")


def test_a_speed_anchor_name_that_matches_no_model_is_said(tmp_path, static_folder, capsys):
    argv = ["speed", "-m", f"static:{static_folder}", "--sentences", str(_sentences(tmp_path)), "--anchor", "nope",
            "--n", "10", "--repeats", "1", "--latency-calls", "2", "--slow-n", "2", "--no-progress"]
    assert main(argv) == 0
    assert "warning: --anchor nope: no model of that name (models: tiny-static); the ratios are against tiny-static" \
        in capsys.readouterr().err


# ------------------------------------------------------------------ plot: the join and odd parameter counts
def _plot_reports(tmp_path: Path, quality: dict, speed: dict) -> list[str]:
    (tmp_path / "q.json").write_text(json.dumps(quality))
    (tmp_path / "s.json").write_text(json.dumps(speed))
    return ["plot", "--quality", str(tmp_path / "q.json"), "--speed", str(tmp_path / "s.json"),
            "--out", str(tmp_path / "p.png")]


def test_plot_never_joins_two_models_by_an_empty_spec(tmp_path, capsys):
    quality = {"models": [{"name": "A", "summary": {"average": 50.0}}, {"name": "B", "summary": {"average": 40.0}}]}
    speed = {"models": [{"name": "A", "sentences_per_second": 500.0, "kind": "static"}]}  # no spec, and no B
    assert main(_plot_reports(tmp_path, quality, speed)) == 0
    err = capsys.readouterr().err
    assert "A: avg 50.0, 500 sentences/s" in err
    assert "B: avg" not in err  # was plotted at A's speed: both lack a spec, and "" matched ""
    assert "note: B is in no speed report (by name or spec); left out of the plot" in err


@pytest.mark.parametrize("params", [-5, "22M", 0, True])
def test_plot_takes_only_a_positive_parameter_count(tmp_path, capsys, params):
    quality = {"models": [{"name": "A", "spec": "static:a", "summary": {"average": 50.0},
                           "info": {"num_parameters": params}}]}
    speed = {"models": [{"name": "A", "spec": "static:a", "sentences_per_second": 500.0, "kind": "static",
                         "num_parameters": params}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a negative count was a NaN marker area (numpy's invalid-value warning)
        assert main(_plot_reports(tmp_path, quality, speed)) == 0  # "22M" was numpy's ValueError traceback
    assert "A: avg 50.0, 500 sentences/s, None params" in capsys.readouterr().err
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ an encoder's NaN output on the command line
@pytest.mark.parametrize("cache", ["none", "all"])
def test_an_encoders_nan_output_is_one_error_line_and_never_cached(tmp_path, tiny_data, static_folder, monkeypatch,
                                                                   capsys, cache):
    from benchmarks.quality import encoders

    def nan_model(spec, device=None):
        return encoders.FunctionEncoder("nan-model", lambda ts: np.full((len(ts), 4), np.nan, np.float32))

    monkeypatch.setattr(encoders, "load_encoder", nan_model)
    argv = ["quality", "-m", f"static:{static_folder}", "--data", str(tiny_data), "--datasets", "STSBenchmark",
            "--cache", cache, "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--out", str(tmp_path / "q")]
    assert main(argv) == 2  # was a ValueError traceback
    err = capsys.readouterr().err
    assert "error: " in err and "encoder returned non-finite values (NaN or infinite) for 12 of 12 texts" in err
    assert "Traceback" not in err and not (tmp_path / "q.json").exists()
    assert not list((tmp_path / "cache").rglob("chunk-*.npz"))


# ------------------------------------------------------------------ a Model2Vec hub id in the cache
def test_a_model2vec_hub_id_is_cached_by_its_content_not_its_id(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import model2vec

    from benchmarks.quality.encoders import CachedEncoder, Model2VecEncoder

    snapshot = {"table": np.eye(4, dtype=np.float32)}

    def from_pretrained(path, *args, **kwargs):  # what the hub id's snapshot holds today
        table = snapshot["table"]
        return SimpleNamespace(embedding=table, dim=table.shape[1], tokenizer=None, config={}, normalize=True,
                               weights=None, token_mapping=None,
                               encode=lambda texts, **kw: np.tile(table[0], (len(texts), 1)))

    monkeypatch.setattr(model2vec.StaticModel, "from_pretrained", from_pretrained)
    monkeypatch.chdir(tmp_path)  # "org/m2v" is no folder here: a hub id
    first = CachedEncoder(Model2VecEncoder("org/m2v"), tmp_path / "cache", enabled=True, progress=False)
    assert first.encode(["a"]).tolist() == [[1, 0, 0, 0]]
    snapshot["table"] = 2 * np.eye(4, dtype=np.float32)  # a new revision pushed under the same id
    second = CachedEncoder(Model2VecEncoder("org/m2v"), tmp_path / "cache", enabled=True, progress=False)
    assert second.encode(["a"]).tolist() == [[2, 0, 0, 0]]  # was [[1, 0, 0, 0]]: keyed by the id, the old vectors
    assert Model2VecEncoder("org/m2v").fingerprint == second.encoder.fingerprint


def test_tasks_and_datasets_that_exclude_each_other_say_so(tiny_data, static_folder, capsys):
    # was "no dataset found under DATA", as if the data folder were empty
    assert main(_quality(static_folder, tiny_data, "--tasks", "sts", "--datasets", "SST-2")) == 2
    assert capsys.readouterr().err == ("error: --tasks sts and --datasets SST-2: no named dataset is of these task "
                                       "types\n")


# ------------------------------------------------------------------ the embedding cache: a corrupted chunk
def _npz_with_raw_emb(path: Path, hashes: np.ndarray, emb_bytes: bytes) -> None:
    """A valid zip container whose ``emb.npy`` member is ``emb_bytes`` (a cut-short array, say)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    np.save(buffer, hashes)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hashes.npy", buffer.getvalue())
        archive.writestr("emb.npy", emb_bytes)


def _corrupt(path: Path, how: str) -> None:
    """Rewrite the chunk ``path`` (readable, a valid container) with a corrupted ``emb`` array."""
    import io

    with np.load(path) as z:
        hashes, emb = z["hashes"], z["emb"]
    if how == "nan":
        emb = emb.copy()
        emb[1, 0] = np.nan
        np.savez(path, hashes=hashes, emb=emb)
    elif how == "rows":
        np.savez(path, hashes=hashes, emb=emb[:-1])
    elif how == "flat":
        np.savez(path, hashes=hashes, emb=emb.reshape(-1))
    elif how == "objects":
        np.savez(path, hashes=hashes, emb=np.array([None] * len(hashes), dtype=object))
    elif how == "no_emb":
        np.savez(path, hashes=hashes)
    elif how == "truncated_member":
        buffer = io.BytesIO()
        np.save(buffer, emb)
        _npz_with_raw_emb(path, hashes, buffer.getvalue()[:-7])
    elif how == "cut_file":
        path.write_bytes(path.read_bytes()[:50])
    elif how == "end_record":  # the zip's end record points past the file: zipfile's seek fails with EINVAL
        data = bytearray(path.read_bytes())
        data[-4] = 0xFF
        path.write_bytes(bytes(data))
    else:
        raise AssertionError(how)


def _counting(calls: list[int]):
    def encode(ts):
        calls.append(len(ts))
        return np.arange(3 * len(ts), dtype=np.float32).reshape(len(ts), 3) + len(ts)
    return encode


@pytest.mark.parametrize("how", ["nan", "rows", "flat", "objects", "no_emb", "truncated_member", "cut_file",
                                 "end_record"])
def test_a_corrupted_cache_chunk_is_a_miss_warned_once_and_replaced(tmp_path, how):
    texts = [f"text number {i}" for i in range(5)]
    calls: list[int] = []
    good = EmbeddingCache(tmp_path, "fp").get_or_encode(texts, _counting(calls), progress=False)
    (chunk,) = EmbeddingCache(tmp_path, "fp").dir.glob("chunk-*.npz")
    _corrupt(chunk, how)
    cache = EmbeddingCache(tmp_path, "fp")
    with pytest.warns(UserWarning, match=chunk.name) as caught:  # was a ValueError/IndexError on every later run
        again = cache.get_or_encode(texts, _counting(calls), progress=False)
        cache.get_or_encode(texts[:2], _counting(calls), progress=False)
    assert len([w for w in caught if chunk.name in str(w.message)]) == 1  # once, naming the file
    assert calls == [5, 5] and np.array_equal(again, good)  # recomputed
    assert [p.name for p in cache.dir.iterdir()] == [chunk.name]  # replaced, no temporary or stray file left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(EmbeddingCache(tmp_path, "fp").get_or_encode(texts, _counting(calls),
                                                                            progress=False), good)
    assert calls == [5, 5]  # the replacement is read


def test_a_corrupted_chunk_leaves_the_good_ones_read(tmp_path):
    texts = [f"text number {i}" for i in range(4)]
    calls: list[int] = []
    EmbeddingCache(tmp_path, "fp").get_or_encode(texts, _counting(calls), progress=False, chunk_size=2)
    chunks = sorted(EmbeddingCache(tmp_path, "fp").dir.glob("chunk-*.npz"))
    assert len(chunks) == 2
    _corrupt(chunks[0], "nan")
    with pytest.warns(UserWarning, match=chunks[0].name):
        EmbeddingCache(tmp_path, "fp").get_or_encode(texts, _counting(calls), progress=False, chunk_size=2)
    assert calls == [2, 2, 2]  # only the corrupted chunk's two texts again


def test_a_chunk_another_process_repaired_is_not_removed_as_corrupt(tmp_path):
    """Two runs found one corrupted chunk; the other run re-encoded its texts into a fresh chunk at that name, and this
    run, which wrote its own chunk elsewhere, then removed the corrupted one it had found: the other's fresh copy."""
    texts = [f"text number {i}" for i in range(4)]
    EmbeddingCache(tmp_path, "fp").get_or_encode(texts[:2], _counting([]), progress=False)
    (chunk,) = EmbeddingCache(tmp_path, "fp").dir.glob("chunk-*.npz")
    _corrupt(chunk, "nan")
    this_run = EmbeddingCache(tmp_path, "fp")
    calls: list[int] = []

    def encode_while_the_other_run_repairs(ts):
        with pytest.warns(UserWarning, match=chunk.name):
            EmbeddingCache(tmp_path, "fp").get_or_encode(texts[:2], _counting([]), progress=False)
        return _counting(calls)(ts)

    with pytest.warns(UserWarning, match=chunk.name):
        this_run.get_or_encode(texts[1:], encode_while_the_other_run_repairs, progress=False)
    assert calls == [3] and chunk.is_file()  # the other run's fresh copy is kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmbeddingCache(tmp_path, "fp").get_or_encode(texts[:2], _counting(calls), progress=False)
    assert calls == [3]  # and read


def test_an_unreadable_cache_chunk_is_still_an_error_naming_it(tmp_path, monkeypatch):
    import benchmarks.quality.cache as cache_module

    EmbeddingCache(tmp_path, "fp").get_or_encode(["a", "b"], _counting([]), progress=False)
    (chunk,) = EmbeddingCache(tmp_path, "fp").dir.glob("chunk-*.npz")

    def denied(source, *args, **kwargs):  # as reading a file this user may not read fails
        raise PermissionError(13, "Permission denied", str(getattr(source, "name", source)))

    monkeypatch.setattr(cache_module, "open", denied, raising=False)  # the cache opens its chunks itself
    with pytest.raises(PermissionError, match=chunk.name):  # not taken for a corrupted chunk and re-encoded
        EmbeddingCache(tmp_path, "fp").get_or_encode(["a", "b"], _counting([]), progress=False)
    assert chunk.is_file()


# ------------------------------------------------------------------ distill-speed: a worker that fails
def test_a_failed_distill_speed_worker_is_an_error_line_and_exit_1_not_a_system_exit(tmp_path, monkeypatch, capsys):
    """A worker's failure raised ``SystemExit(message)`` out of ``main`` (no exit status returned, no ``error:``
    line); it is now the worker's own last line in one ``error:`` line, exit 1, the old report left whole."""
    import distill.resolve
    from benchmarks.speed import distill_time

    out, old = _old_report(tmp_path)
    monkeypatch.setattr(distill.resolve, "resolve_teacher", lambda name: f"/nowhere/{name}")
    real_run = subprocess.run

    def failing(cmd, *args, **kwargs):
        if cmd[0] != sys.executable:
            return real_run(cmd, *args, **kwargs)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Traceback (most recent call last):\n"
                                           "  File \"<string>\", line 1\nRuntimeError: the teacher broke\n")

    monkeypatch.setattr(distill_time.subprocess, "run", failing)
    assert main(_distill_speed(out, "--repeats", "1")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: distill on all-MiniLM-L6-v2 failed (exit 1): RuntimeError: the teacher broke")
    assert f"{out} left as it was" in err[-1] and sum(line.startswith("error:") for line in err) == 1
    for path, content in old.items():
        assert path.read_bytes() == content
