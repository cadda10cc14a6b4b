"""Second trust audit of refinement (corpus readers, the featurize cache and the command line): the cases
``test_reliability_refine.py`` does not cover. Tiny teachers built here; each test runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from helpers.teachers import make_corpus  # noqa: E402

from distill.refine.corpus import corpus_kind, corpus_spec_error, default_prefer_sources, read_corpus  # noqa: E402


@pytest.fixture(scope="module")
def base_dir(teacher_dir, tmp_path_factory):
    from distill import distill

    model = distill(str(teacher_dir), pca_dims=8, batch_size=64, dtype="float32", show_progress_bar=False,
                    remove_common_component=False, drop_components=0)
    folder = tmp_path_factory.mktemp("refine_audit_base") / "base"
    model.save_pretrained(folder)
    return folder


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def _argv(base_dir, teacher_dir, corpus, out, cache, *extra):
    return [str(base_dir), "--teacher", str(teacher_dir), "--corpus", str(corpus), "-o", str(out),
            *(["--cache-dir", str(cache)] if cache is not None else []), "--quiet", "--device", "cpu",
            "--epochs", "1", "--batch-size", "32", *extra]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def _no_featurize(monkeypatch):
    """Make any featurize fail the test: the checks under test must refuse before the teacher encodes."""
    from distill.refine import pipeline

    def fail(*args, **kwargs):
        raise AssertionError("featurize ran: the bad input was not refused before the work")

    monkeypatch.setattr(pipeline, "featurize_shards", fail)


# ---- corpora


@pytest.mark.parametrize("suffix", [".json", ".ndjson", ".JSON"])
def test_json_and_ndjson_files_are_read_as_json_lines_not_as_raw_text(tmp_path, suffix):
    # `datasets.Dataset.to_json` writes JSON Lines to a .json file; read as text, every passage was the JSON syntax
    texts = ["the cat sat on the mat", "a dog is playing in the park", "hello world"]
    path = _write_jsonl(tmp_path / f"rows{suffix}", texts)
    assert corpus_kind(path) == "jsonl"
    assert read_corpus(path) == texts


def test_a_json_array_file_is_refused_as_not_json_lines(tmp_path):
    pretty = tmp_path / "rows.json"
    pretty.write_text(json.dumps([{"text": "a"}, {"text": "b"}], indent=2), encoding="utf-8")
    with pytest.raises(ValueError, match=r"rows.json: a JSON array, not JSON Lines"):
        read_corpus(pretty)
    one_line = tmp_path / "one.json"
    one_line.write_text(json.dumps([{"text": "a"}, {"text": "b"}]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"one.json: a JSON array, not JSON Lines"):
        read_corpus(one_line)


def test_a_json_corpus_with_a_bad_field_is_refused_by_the_cli_before_the_teacher(tmp_path, base_dir, teacher_dir,
                                                                               capsys, monkeypatch):
    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    path = tmp_path / "rows.json"
    path.write_text("".join(json.dumps({"body": t}) + "\n" for t in make_corpus(60)), encoding="utf-8")
    code = main(_argv(base_dir, teacher_dir, path, tmp_path / "o", tmp_path / "c"))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "rows.json line 1: no field 'text'" in line
    assert not (tmp_path / "o").exists()


def test_a_lone_surrogate_is_refused_naming_the_line_not_a_tokenizer_traceback(tmp_path, base_dir, teacher_dir,
                                                                               capsys, monkeypatch):
    # "\ud800" is valid JSON (scraped text holds such halves of emoji pairs) but not Unicode text: the teacher's
    # tokenizer raised a bare TypeError after the teacher had loaded
    texts = make_corpus(120)
    texts[50] = "the cat \ud800 sat"
    path = _write_jsonl(tmp_path / "surrogate.jsonl", texts)
    with pytest.raises(ValueError, match=r"surrogate.jsonl line 51: .*surrogate"):
        read_corpus(path)
    with pytest.raises(ValueError, match=r"corpus item 50 holds an unpaired surrogate"):
        read_corpus(iter(texts))
    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    code = main(_argv(base_dir, teacher_dir, path, tmp_path / "o", tmp_path / "c"))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "surrogate.jsonl line 51" in line and "--corpus" in line
    assert not (tmp_path / "o").exists()


def test_a_source_sidecar_saved_with_a_bom_names_its_first_line(tmp_path):
    lines = ["alpha passage", "beta passage", "gamma passage", "delta passage", "epsilon passage"]
    corpus = _write_lines(tmp_path / "sentences.txt", lines)
    side = tmp_path / "sentences.source.txt"
    side.write_bytes(b"\xef\xbb\xbf" + b"wikipedia_en_2015\nnews\nnews\nwikipedia_en_2015\nnews\n")
    assert read_corpus(corpus, 2, ("wikipedia_en_2015",)) == ["alpha passage", "delta passage"]
    only_first = tmp_path / "only.txt"
    _write_lines(only_first, lines)
    (tmp_path / "only.source.txt").write_bytes(b"\xef\xbb\xbf" + b"wikipedia_en_2015\nnews\nnews\nnews\nnews\n")
    assert default_prefer_sources(only_first) == ("wikipedia_en_2015",)
    assert read_corpus(only_first, 1, None) == ["alpha passage"]
    from distill.refine.cli import _check_prefer_sources

    _check_prefer_sources(str(only_first), ("wikipedia_en_2015",), "--prefer-sources")  # no UsageError


def test_a_folder_named_as_the_corpus_is_called_a_folder(tmp_path):
    folder = tmp_path / "shards.parquet"
    folder.mkdir()
    problem = corpus_spec_error(folder)
    assert problem is not None and "is a folder" in problem and "does not exist" not in problem
    assert "does not exist" in (corpus_spec_error(tmp_path / "missing.txt") or "")


# ---- the featurize cache and the output


def test_a_cache_folder_equal_to_the_output_is_refused_before_any_work(tmp_path, base_dir, teacher_dir, capsys,
                                                                       monkeypatch):
    # the run featurized and trained, then the save refused the output folder the cache had filled
    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    out = tmp_path / "out"
    code = main(_argv(base_dir, teacher_dir, corpus, out, out))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--cache-dir" in line and "--output" in line
    assert not out.exists()


def test_a_cache_folder_inside_the_output_model_is_refused_and_the_model_is_kept(tmp_path, base_dir, teacher_dir,
                                                                                 capsys, monkeypatch):
    import shutil

    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    out = tmp_path / "previous"
    shutil.copytree(base_dir, out)
    before = sorted(p.name for p in out.iterdir())
    code = main(_argv(base_dir, teacher_dir, corpus, out, out / "cache", "--overwrite"))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--cache-dir" in line
    assert sorted(p.name for p in out.iterdir()) == before


def test_the_default_cache_inside_the_output_is_refused(tmp_path, base_dir, teacher_dir, capsys, monkeypatch):
    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    monkeypatch.chdir(tmp_path)
    code = main(_argv(base_dir, teacher_dir, corpus, ".cache", None))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and ".cache/refine" in line
    assert not (tmp_path / ".cache").exists()


def test_an_output_inside_the_cache_folder_is_fine(tmp_path, base_dir, teacher_dir, capsys):
    from distill.refine.cli import main
    from static_model import StaticModel

    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    cache = tmp_path / "cache"
    code = main(_argv(base_dir, teacher_dir, corpus, cache / "model", cache))
    assert code == 0, capsys.readouterr().err
    assert StaticModel.from_pretrained(cache / "model").config["refine"]["passages"] == 60
    assert list(cache.glob("chunk-*.npy")) and (cache / "meta.json").is_file()


def test_a_dataset_stream_that_breaks_midway_is_one_error_naming_the_dataset(monkeypatch):
    import sys
    import types

    def load_dataset(name, config=None, *, split, streaming):
        def stream():
            yield from ({"text": f"line {i}"} for i in range(3))
            raise RuntimeError("Response payload is not completed")  # what aiohttp raises when the network drops
        return stream()

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(ValueError, match=r"'hf:org/corpus'.*broke after 3 rows.*RuntimeError: Response payload"):
        read_corpus("hf:org/corpus", 10)
    assert read_corpus("hf:org/corpus", 3) == ["line 0", "line 1", "line 2"]  # a cap before the break reads fine


def test_a_pipe_named_as_the_corpus_is_called_what_it_is(tmp_path):
    import os

    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)
    problem = corpus_spec_error(fifo)
    assert problem is not None and "not a regular file" in problem and "does not exist" not in problem


# ---- resume and sharing: the cache gives what a clean run gives


_FEATURIZE = """
import sys
import torch
torch.set_num_threads(1)
from distill import Teacher
from distill.refine import featurize as rf
texts = sys.argv[3].split("|")
rf.featurize(Teacher(sys.argv[1], device="cpu"), texts, cache_dir=sys.argv[2], chunk_size=64, show_progress_bar=False)
"""


def test_a_resumed_featurize_and_two_runs_sharing_a_cache_give_the_clean_runs_targets_bit_for_bit(teacher_dir,
                                                                                                   tmp_path):
    import subprocess
    import sys

    import numpy as np

    from distill import Teacher
    from distill.refine import featurize as rf

    teacher = Teacher(str(teacher_dir), device="cpu")
    texts = make_corpus(150, seed=11)
    clean = rf.featurize(teacher, texts, cache_dir=tmp_path / "clean", chunk_size=64, show_progress_bar=False)
    resumed_cache = tmp_path / "resumed"
    with pytest.raises(InterruptedError):
        rf.featurize(teacher, texts, cache_dir=resumed_cache, chunk_size=64, max_new_chunks=1,
                     show_progress_bar=False)
    resumed = rf.featurize(teacher, texts, cache_dir=resumed_cache, chunk_size=64, show_progress_bar=False)
    np.testing.assert_array_equal(resumed, clean)
    # two processes featurizing the same corpus into one folder at once: both finish, the folder holds each chunk
    # once and no temporary, and what it holds is the clean run's targets
    shared = tmp_path / "shared"
    argv = [sys.executable, "-c", _FEATURIZE, str(teacher_dir), str(shared), "|".join(texts)]
    runs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert sorted(p.name for p in shared.iterdir()) == sorted(p.name for p in (tmp_path / "clean").iterdir())
    again = rf.featurize(teacher, texts, cache_dir=shared, chunk_size=64, show_progress_bar=False, max_new_chunks=0)
    np.testing.assert_array_equal(again, clean)  # every chunk came from the folder (max_new_chunks=0 encodes none)


@pytest.mark.parametrize("where", ["model", "teacher", "inside-model"])
def test_a_cache_folder_in_the_base_model_or_teacher_folder_is_refused_before_any_work(tmp_path, base_dir,
                                                                                       teacher_dir, capsys,
                                                                                       monkeypatch, where):
    # the chunks landed in the base model's folder, and a later `-o MODEL --overwrite` refused that folder after its
    # whole run ("not a model folder (it holds chunk-....npy, meta.json)")
    import shutil

    from distill.refine.cli import main

    _no_featurize(monkeypatch)
    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    model = tmp_path / "model"
    shutil.copytree(base_dir, model)
    before = {p.name for p in model.iterdir()}, {p.name for p in teacher_dir.iterdir()}
    cache = {"model": model, "teacher": teacher_dir, "inside-model": model / "cache"}[where]
    code = main(_argv(model, teacher_dir, corpus, tmp_path / "out", cache))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--cache-dir" in line and ("teacher's" if where == "teacher" else "base model's") in line
    assert ({p.name for p in model.iterdir()}, {p.name for p in teacher_dir.iterdir()}) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cap", [1.5, True, "3"])
def test_a_max_sentences_that_is_no_whole_number_is_refused(tmp_path, cap):
    """``read_corpus(path, max_sentences=1.5)`` read 2 passages (the CLI and RefineConfig check it; the function
    did not)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("a cat\na dog\nthe mat\n", encoding="utf-8")
    with pytest.raises(TypeError, match="max_sentences must be a whole number or None"):
        read_corpus(corpus, cap)
    assert read_corpus(corpus, 2) == ["a cat", "a dog"]


# ---- a text field named for a text corpus, BOMs inside a file, surrogates given to featurize directly


def test_a_text_field_given_for_a_text_corpus_is_refused_not_ignored(
    tmp_path, base_dir, teacher_dir, capsys, monkeypatch
):
    """A text file is one passage a line: ``--text-field body`` was silently ignored there (the user meant a JSONL
    field). An explicitly given field is refused, naming the option; the default still reads the file."""
    from distill.__main__ import main as distill_main
    from distill.refine import RefineConfig, refine
    from distill.refine.cli import build_parser, check_args, main
    from distill.refine.corpus import count_distinct_passages

    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60))
    assert len(read_corpus(corpus)) == 60  # no field given: read as always
    with pytest.raises(ValueError, match=r"text_field 'body'.*JSONL, Parquet .*Hugging Face.*c\.txt"):
        read_corpus(corpus, text_field="body")
    with pytest.raises(ValueError, match=r"text_field 'body'.*JSONL, Parquet"):
        count_distinct_passages(corpus, 10, text_field="body")
    with pytest.raises(ValueError, match=r"text_field 'body'.*an iterable"):
        read_corpus(iter(["a cat", "a dog"]), text_field="body")
    _no_featurize(monkeypatch)
    with pytest.raises(ValueError, match=r"text_field 'body'.*JSONL, Parquet"):
        refine(str(base_dir), str(teacher_dir), corpus, RefineConfig.from_options(text_field="body"))
    # the command lines: one error line naming the option, before any work; without the option the checks pass
    check_args(build_parser().parse_args(_argv(base_dir, teacher_dir, corpus, tmp_path / "o", tmp_path / "c")))
    code = main(_argv(base_dir, teacher_dir, corpus, tmp_path / "o", tmp_path / "c", "--text-field", "body"))
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--text-field 'body'" in line and "JSONL, Parquet" in line and "c.txt" in line
    code = distill_main(
        [str(teacher_dir), "-o", str(tmp_path / "d"), "--refine", str(corpus), "--refine-text-field", "body", "--quiet"]
    )
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "--refine-text-field 'body'" in line and "JSONL, Parquet" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


BOM = "\ufeff".encode()


def test_a_bom_inside_a_concatenated_file_is_not_part_of_a_passage(tmp_path):
    """``cat a.txt b.txt`` of two files saved with a BOM puts U+FEFF at the start of b's first line: ``utf-8-sig``
    drops only the file's first one, and ``str.strip`` keeps it (it is no whitespace), so it stayed in a passage
    (a distinct passage from the same text without it, a token the teacher sees)."""
    from distill.refine.corpus import count_distinct_passages

    corpus = tmp_path / "c.txt"
    corpus.write_bytes(BOM + b"a cat\nthe mat\n" + BOM + b"a cat\n" + BOM + b"\n  " + BOM + b" a dog \n")
    assert read_corpus(corpus) == ["a cat", "the mat", "a cat", "a dog"]
    assert count_distinct_passages(corpus, 10) == 3
    assert read_corpus(["\ufeffa cat", "\ufeff"]) == ["a cat"]
    # JSON Lines concatenated the same way: the second file's first record is read, its text without the BOM
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(BOM + b'{"text": "a cat"}\n' + BOM + b'{"text": "\\ufeffa dog"}\n')
    assert read_corpus(rows) == ["a cat", "a dog"]
    # a source sidecar concatenated the same way still names its sources
    sidecar = tmp_path / "c.source.txt"
    sidecar.write_bytes(BOM + b"other\nother\n" + BOM + b"wikipedia_en_2015\n" + BOM + b"\n" + BOM + b"other\n")
    assert default_prefer_sources(corpus) == ("wikipedia_en_2015",)
    assert read_corpus(corpus, 2, None) == ["a cat", "a cat"]  # line 3, the preferred source's, then line 1
    assert read_corpus(corpus, 2, ("wikipedia_en_2015",)) == ["a cat", "a cat"]


def test_featurize_called_directly_refuses_a_lone_surrogate_naming_the_passage(teacher_dir, tmp_path):
    """``featurize`` given a lone surrogate (``"\\ud800"``) raised the tokenizer's bare ``TypeError``; the corpus
    readers' check now runs there too, before the cache folder is touched."""
    from distill import Teacher
    from distill.refine import featurize as rf

    teacher = Teacher(str(teacher_dir), device="cpu")
    texts = ["a cat sat", "the cat \ud800 sat", "a dog"]
    for function in (rf.featurize, rf.featurize_shards):
        with pytest.raises(ValueError, match=r"^passage 1 holds an unpaired surrogate \('\\ud800' at character 8\)"):
            function(teacher, texts, cache_dir=tmp_path / "cache", show_progress_bar=False)
    assert not (tmp_path / "cache").exists()


def test_featurize_takes_the_parameters_of_featurize_shards_and_returns_one_array(teacher_dir, tmp_path):
    """``featurize`` is ``featurize_shards`` read into memory: the same parameters and defaults (no drift)."""
    import inspect

    import numpy as np

    from distill import Teacher
    from distill.refine import featurize as rf

    shards, array = inspect.signature(rf.featurize_shards), inspect.signature(rf.featurize)
    assert list(array.parameters.values()) == list(shards.parameters.values())
    assert rf.featurize.__name__ == "featurize" and "in-memory array" in (rf.featurize.__doc__ or "")
    teacher = Teacher(str(teacher_dir), device="cpu")
    out = rf.featurize(teacher, ["a cat", "a dog"], cache_dir=tmp_path / "c", chunk_size=1, show_progress_bar=False)
    assert isinstance(out, np.ndarray) and out.shape == (2, teacher.dim) and out.dtype == np.float32
    np.testing.assert_array_equal(
        out,
        rf.featurize_shards(
            teacher, ["a cat", "a dog"], cache_dir=tmp_path / "c", chunk_size=1, show_progress_bar=False
        ).to_array(),
    )


_FEATURIZE_COUNTING = """
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
from distill import Teacher
from distill.refine import featurize as rf

teacher_dir, cache, texts, ready, name = sys.argv[1:6]
teacher = Teacher(teacher_dir, device="cpu")
encode, encoded = rf.encode_chunk, []


def slow_encode(*args, **kwargs):
    encoded.append(1)
    time.sleep(1.0)  # a chunk takes long enough that the other run reaches it while this one encodes it
    return encode(*args, **kwargs)


rf.encode_chunk = slow_encode
(Path(ready) / name).touch()
start = time.monotonic()
while len(list(Path(ready).iterdir())) < 2:  # both runs start featurizing together, their teachers loaded
    if time.monotonic() - start > 120:
        sys.exit("the other run never got ready")
    time.sleep(0.01)
rf.featurize(teacher, texts.split("|"), cache_dir=cache, chunk_size=64, show_progress_bar=False)
print(len(encoded))
"""


def test_two_runs_featurizing_into_one_cache_folder_encode_each_chunk_once(teacher_dir, tmp_path):
    """Two runs started together on one cache folder each encoded every chunk (whole files, but twice the work):
    a chunk's advisory lock makes the second wait for it and read it back from the folder."""
    import subprocess
    import sys

    import numpy as np

    from distill import Teacher
    from distill.refine import featurize as rf

    texts = make_corpus(150, seed=12)  # 3 chunks of 64
    shared, ready = tmp_path / "shared", tmp_path / "ready"
    ready.mkdir()
    argv = [sys.executable, "-c", _FEATURIZE_COUNTING, str(teacher_dir), str(shared), "|".join(texts), str(ready)]
    logs = [(tmp_path / f"run{i}.out", tmp_path / f"run{i}.err") for i in range(2)]  # files: no pipe fills up
    runs = []
    for i, (out, err) in enumerate(logs):
        with open(out, "w") as stdout, open(err, "w") as stderr:
            runs.append(subprocess.Popen([*argv, f"run{i}"], stdout=stdout, stderr=stderr))
    encoded = []
    for run, (out, err) in zip(runs, logs):
        assert run.wait(timeout=300) == 0, err.read_text()
        encoded.append(int(out.read_text().split()[-1]))
    assert sum(encoded) == 3, encoded  # each chunk encoded by one run, read back by the other
    teacher = Teacher(str(teacher_dir), device="cpu")
    clean = rf.featurize(teacher, texts, cache_dir=tmp_path / "clean", chunk_size=64, show_progress_bar=False)
    again = rf.featurize(teacher, texts, cache_dir=shared, chunk_size=64, show_progress_bar=False, max_new_chunks=0)
    np.testing.assert_array_equal(again, clean)


@pytest.mark.parametrize("field", ["", "  ", 3])
def test_a_text_field_that_is_no_field_name_is_refused_not_read_as_the_default(field, tmp_path):
    """``text_field=""`` used to read the default field ``text`` silently."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "a cat", "body": "a dog"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="text_field must be a field name"):
        read_corpus(corpus, None, text_field=field)


def test_a_passage_that_is_not_a_str_is_a_type_error_naming_it(teacher_dir, tmp_path):
    from distill import Teacher
    from distill.refine import featurize as rf

    teacher = Teacher(str(teacher_dir), device="cpu")
    with pytest.raises(TypeError, match=r"^passage 1 is bytes, not a str; decode bytes first"):
        rf.featurize(teacher, ["a cat", b"a dog"], cache_dir=tmp_path / "c", show_progress_bar=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(TypeError, match=r"^corpus item 0 is NoneType, not a str"):
        read_corpus([None], None)


# ---- the SIF frequency corpus reads the corpus's text field


def _write_jsonl_field(path: Path, texts: list[str], field: str) -> Path:
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def _refined_table(base_dir, corpus, targets, **options):
    from distill.refine import RefineConfig, refine

    config = RefineConfig.from_options(epochs=1, batch_size=32, device="cpu", dtype="float32", **options)
    model = refine(str(base_dir), None, corpus, config, targets=targets, show_progress_bar=False)
    return model.embedding_matrix(), model.config["refine"]


def test_a_jsonl_frequency_corpus_is_read_with_the_corpus_text_field(tmp_path, base_dir):
    """``output.frequency_corpus`` was read without the corpus's ``text_field``: a JSONL frequency corpus whose text
    is under ``body`` (the field the corpus names) was refused after the whole training ("no field 'text'"). It is
    read with the corpus's field, and counts the same frequencies as the same passages in a text file."""
    import numpy as np

    texts = make_corpus(60, seed=3)
    freq = make_corpus(80, seed=4)
    corpus = _write_jsonl_field(tmp_path / "c.jsonl", texts, "body")
    targets = np.random.default_rng(0).normal(size=(60, 16)).astype(np.float32)
    plain = _write_lines(tmp_path / "freq.txt", freq)
    fielded = _write_jsonl_field(tmp_path / "freq.jsonl", freq, "body")
    options = {"text_field": "body", "sif_coefficient": 1e-3}
    from_text, _ = _refined_table(base_dir, corpus, targets, frequency_corpus=plain, **options)
    from_jsonl, info = _refined_table(base_dir, corpus, targets, frequency_corpus=fielded, **options)
    assert info["frequency_source"] == "freq.jsonl"
    np.testing.assert_array_equal(from_jsonl, from_text)
    # the JSON syntax read as text (keys, braces, ids counted as words) would give another table
    raw = _write_lines(tmp_path / "raw.txt", fielded.read_text(encoding="utf-8").splitlines())
    from_raw, _ = _refined_table(base_dir, corpus, targets, frequency_corpus=raw, **options)
    assert not np.array_equal(from_raw, from_text)


def test_a_frequency_corpus_field_of_its_own_and_bad_ones_are_refused_before_the_teacher(tmp_path, base_dir,
                                                                                        monkeypatch):
    """``output.frequency_text_field`` names the frequency corpus's own field (a text corpus has none to share); a
    frequency corpus without its field, or a field given for a text file, is refused before any featurize, naming
    the option (it was refused after the whole training)."""
    import numpy as np

    from distill.refine import RefineConfig, refine

    texts, freq = make_corpus(60, seed=3), make_corpus(80, seed=4)
    corpus = _write_lines(tmp_path / "c.txt", texts)
    targets = np.random.default_rng(0).normal(size=(60, 16)).astype(np.float32)
    plain = _write_lines(tmp_path / "freq.txt", freq)
    fielded = _write_jsonl_field(tmp_path / "freq.jsonl", freq, "body")
    from_text, _ = _refined_table(base_dir, corpus, targets, frequency_corpus=plain, sif_coefficient=1e-3)
    own_field, _ = _refined_table(base_dir, corpus, targets, frequency_corpus=fielded, frequency_text_field="body",
                                  sif_coefficient=1e-3)
    np.testing.assert_array_equal(own_field, from_text)
    _no_featurize(monkeypatch)
    bad = [({"frequency_corpus": fielded}, r"output.frequency_corpus \(text field 'text'.*no field 'text'"),
           ({"frequency_corpus": fielded, "frequency_text_field": "title"}, r"text field 'title'.*no field 'title'"),
           ({"frequency_corpus": plain, "frequency_text_field": "body"},
            r"output.frequency_text_field 'body'.*freq.txt"),
           ({"frequency_corpus": tmp_path / "missing.jsonl"}, r"output.frequency_corpus.*missing.jsonl does not exist")]
    for options, message in bad:
        config = RefineConfig.from_options(sif_coefficient=1e-3, **options)
        with pytest.raises(ValueError, match=message):
            refine(str(base_dir), "unused-teacher", corpus, config, show_progress_bar=False)
    with pytest.raises(ValueError, match="output.frequency_text_field needs output.frequency_corpus"):
        RefineConfig.from_options(frequency_text_field="body")


# ---- threads of one process featurizing into one cache folder


def test_two_threads_featurizing_into_one_cache_folder_encode_each_chunk_once(teacher_dir, tmp_path, monkeypatch):
    """``chunk_lock``'s ``fcntl`` lock belongs to the process: two threads both held it and encoded every chunk
    twice. An in-process lock makes threads take turns as processes do: the second reads the chunk back."""
    import threading
    import time

    import numpy as np

    from distill import Teacher
    from distill.refine import featurize as rf

    teacher = Teacher(str(teacher_dir), device="cpu")
    texts = make_corpus(100, seed=13)  # 2 chunks of 64
    encode, encoded = rf.encode_chunk, []

    def slow_encode(*args, **kwargs):
        encoded.append(1)
        time.sleep(0.5)  # the other thread reaches the chunk while this one encodes it
        return encode(*args, **kwargs)

    monkeypatch.setattr(rf, "encode_chunk", slow_encode)
    start, results, errors = threading.Barrier(2), [None, None], []

    def run(i):
        try:
            start.wait(timeout=60)
            results[i] = rf.featurize(teacher, texts, cache_dir=tmp_path / "shared", chunk_size=64,
                                      show_progress_bar=False)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(encoded) == 2, f"{len(encoded)} encodes of 2 chunks"
    np.testing.assert_array_equal(results[0], results[1])


def test_a_chunk_lock_makes_other_threads_on_its_folder_wait_but_not_those_on_another(tmp_path):
    """Threads of one process take turns on a cache folder's ``featurize.lock`` (closing one thread's descriptor of
    it would release every lock the process holds there); a thread on another folder never waits for them."""
    import threading

    from distill.refine import featurize as rf

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    held, entered = threading.Event(), {}

    def enter(key, chunk):
        with rf.chunk_lock(chunk):
            entered[key] = held.is_set()

    with rf.chunk_lock(tmp_path / "a" / "chunk-00000-x.npy"):
        other_folder = threading.Thread(target=enter, args=("b", tmp_path / "b" / "chunk-00000-x.npy"))
        same_folder = threading.Thread(target=enter, args=("a", tmp_path / "a" / "chunk-00001-y.npy"))
        other_folder.start()
        same_folder.start()
        other_folder.join(timeout=30)
        assert entered == {"b": False}  # entered while the lock on folder a was held
        same_folder.join(timeout=0.3)
        assert same_folder.is_alive() and "a" not in entered  # waits for it
        held.set()
    same_folder.join(timeout=30)
    assert entered == {"b": False, "a": True}
    assert not rf._PROCESS_LOCKS  # nothing kept once no thread holds or waits for a lock


def test_a_frequency_corpus_without_a_sif_coefficient_is_refused_not_ignored(tmp_path):
    """``output.frequency_corpus`` only feeds SIF: without ``output.sif_coefficient`` it was silently ignored (a
    model without the re-weighting the user asked a corpus for)."""
    from distill.refine import RefineConfig

    freq = _write_lines(tmp_path / "freq.txt", ["a cat", "a dog"])
    with pytest.raises(ValueError, match="output.frequency_corpus needs output.sif_coefficient"):
        RefineConfig.from_options(frequency_corpus=freq)
    assert RefineConfig.from_options(frequency_corpus=freq, sif_coefficient=1e-3).output.frequency_corpus == freq


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_process_forked_while_a_thread_holds_a_chunk_lock_can_take_it(tmp_path):
    """A child forked while a thread of its parent held a folder's in-process lock inherited it locked, with no
    thread to release it: its featurize into that folder would wait forever. The child starts with none held."""
    import os
    import threading

    from distill.refine import featurize as rf

    chunk = tmp_path / "chunk-00000-x.npy"
    holding, release = threading.Event(), threading.Event()

    def hold():
        with rf.chunk_lock(chunk):
            holding.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=30)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the parent's thread is not here, and neither is its lock
            code = 1
            try:
                taken = threading.Event()

                def take():  # the in-process half: the fcntl byte is the parent's, another process's, to wait for
                    with rf.process_folder_lock(chunk.parent / rf.LOCK_FILE):
                        taken.set()

                threading.Thread(target=take, daemon=True).start()
                code = 0 if taken.wait(timeout=5) else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the forked child could not take the folder's lock"
    finally:
        release.set()
        holder.join(timeout=30)


def test_a_bad_record_deep_in_the_frequency_corpus_is_refused_before_the_teacher(tmp_path, base_dir, monkeypatch):
    """Only the frequency corpus's first passage was checked before the work: a number in its text field on line
    3 was refused after featurize and training."""
    from distill.refine import RefineConfig, refine

    corpus = _write_lines(tmp_path / "c.txt", make_corpus(60, seed=3))
    freq = tmp_path / "freq.jsonl"
    freq.write_text('{"text": "a cat"}\n{"text": "a dog"}\n{"text": 3}\n', encoding="utf-8")
    _no_featurize(monkeypatch)
    config = RefineConfig.from_options(sif_coefficient=1e-3, frequency_corpus=freq)
    with pytest.raises(ValueError, match=r"output.frequency_corpus .*freq.jsonl line 3: field 'text' is int"):
        refine(str(base_dir), "unused-teacher", corpus, config, show_progress_bar=False)



def test_a_child_forked_inside_a_folder_lock_leaves_it_without_a_key_error(tmp_path):
    """A child forked while its parent holds a folder lock starts with no lock table; leaving the ``with`` in the
    child deleted a key that was not there (KeyError)."""
    import os

    from distill.refine import featurize as rf

    lock_file = tmp_path / rf.LOCK_FILE
    pid = None
    try:
        with rf.process_folder_lock(lock_file):
            pid = os.fork()
    except BaseException:
        if pid == 0:  # the child never returns into pytest
            os._exit(3)
        raise
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not rf._PROCESS_LOCKS


@pytest.mark.parametrize("value", [["a b", "c"], 3, b"freq.txt"])
def test_a_frequency_corpus_that_is_not_a_path_is_refused_naming_it(value):
    """A list of passages was a raw ``expected str, bytes or os.PathLike`` TypeError from deep in the corpus
    reader (after training, before the check moved up)."""
    from distill.refine import RefineConfig

    with pytest.raises(TypeError, match="output.frequency_corpus must be a file path"):
        RefineConfig.from_options(frequency_corpus=value, sif_coefficient=1e-3)
