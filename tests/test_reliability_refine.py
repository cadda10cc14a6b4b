"""Trust audit of refinement: every bad input is one error naming the argument or file, nothing is lost and nothing
goes silently wrong (corpora, options, the featurize cache, kill -9 and Ctrl-C, a foreign base, a diverging run).
Tiny teachers built here; each test runs in seconds."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.stalled import stalled_featurize_script  # noqa: E402
from helpers.teachers import CORPUS_WORDS, make_bpe_teacher, make_corpus  # noqa: E402

from distill.refine.corpus import read_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _corpus(n: int = 200, seed: int = 0) -> list[str]:
    return make_corpus(n, seed)


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    from distill import Teacher

    return Teacher(str(teacher_dir), device="cpu")


@pytest.fixture(scope="module")
def base_model(teacher_dir):
    from distill import distill

    return distill(str(teacher_dir), pca_dims=8, batch_size=64, dtype="float32", show_progress_bar=False,
                   remove_common_component=False, drop_components=0)


@pytest.fixture(scope="module")
def base_dir(base_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reliability_refine_base") / "base"
    base_model.save_pretrained(folder)
    return folder


def _config(**options):
    from distill.refine import RefineConfig

    options = {"epochs": 2, "batch_size": 32, "learning_rate": 1e-2, "patience": 2, "chunk_size": 64,
               "device": "cpu", **options}
    return RefineConfig.from_options(**options)


def _write_corpus(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from distill.refine.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _argv(base_dir, teacher_dir, corpus, out, cache, *extra):
    return [str(base_dir), "--teacher", str(teacher_dir), "--corpus", str(corpus), "-o", str(out),
            "--cache-dir", str(cache), "--quiet", "--device", "cpu", "--epochs", "1", "--batch-size", "32", *extra]


def _one_error_line(err: str) -> str:
    """The one ``error:`` line, the last of stderr (transformers' own weight-loading bar may come before it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


# ---- corpora users get wrong


def test_a_corpus_of_blank_lines_is_refused_naming_the_file(tmp_path, base_dir, teacher_dir, capsys):
    corpus = tmp_path / "blank.txt"
    corpus.write_bytes(b"\n   \r\n\t\n\n")
    with pytest.raises(ValueError, match="holds no non-empty passage"):
        read_corpus(corpus)
    code, err = _cli(_argv(base_dir, teacher_dir, corpus, tmp_path / "out", tmp_path / "cache"), capsys)
    assert code == 2 and "blank.txt" in _one_error_line(err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_the_cli_refuses_too_few_distinct_passages_naming_the_corpus_before_the_teacher(tmp_path, base_dir, capsys):
    """``python -m distill.refine`` counted the passages only inside ``refine`` (after reading the whole corpus),
    a ValueError that did not name the file; ``python -m distill --refine`` already refused it up front."""
    few = _write_corpus(tmp_path / "few.txt", ["a cat", "a dog", "the mat", "a hat", "the sun"] * 40)
    many = _write_corpus(tmp_path / "many.txt", _corpus(40))
    no_teacher = tmp_path / "no-such-teacher"  # never looked up: the corpus is refused first
    cases = [(few, ("--max-sentences", "all"), "only 5 distinct passages; a refinement needs at least 9 (the "
              "model's dims + 1)"),
             (many, ("--max-sentences", "6"), "only 6 distinct passages in its first 6 passages (--max-sentences)")]
    for corpus, extra, needle in cases:
        code, err = _cli(_argv(base_dir, no_teacher, corpus, tmp_path / "out", tmp_path / "cache", *extra), capsys)
        line = _one_error_line(err)
        assert code == 2 and line.startswith(f"error: --corpus {corpus}: the corpus has ") and needle in line, line
        assert "before the teacher loads" in line and "no-such-teacher" not in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_one_passage_is_refused_before_the_teacher_loads(base_model, tmp_path):
    from distill.refine import refine

    with pytest.raises(ValueError, match=r"1 passages; at least dims \+ 1 = 9"):
        refine(base_model, "no-such-teacher-is-loaded", ["just one passage"], _config(), cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_copies_of_a_few_passages_are_refused_not_trained_on_one_target(base_model, tmp_path):
    from distill.refine import refine

    with pytest.raises(ValueError, match="200 passages but only 3 distinct ones"):
        refine(base_model, "no-such-teacher-is-loaded", (["a cat", "a dog", "the mat"] * 67)[:200], _config(),
               cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_repeated_passages_are_kept_and_counted(base_model, teacher, tmp_path):
    from distill.refine import refine

    corpus = _corpus(180) + _corpus(180)[:20]
    model = refine(base_model, teacher, corpus, _config(epochs=1), cache_dir=tmp_path / "c", show_progress_bar=False)
    info = model.config["refine"]
    assert info["passages"] == 200 and info["duplicate_passages"] == 20


def test_jsonl_missing_none_and_non_string_fields(tmp_path, base_dir, teacher_dir, capsys, caplog):
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"text": "ok"}\n{"body": "no text field"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing.jsonl line 2: no field 'text' \(fields: body\)"):
        read_corpus(missing)
    nonstr = tmp_path / "nonstr.jsonl"
    nonstr.write_text('{"text": "ok"}\n{"text": ["a", "list"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="nonstr.jsonl line 2: field 'text' is list, not text"):
        read_corpus(nonstr)
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"text": null}\n{"text": "kept"}\n{"text": ""}\n', encoding="utf-8")
    with caplog.at_level("INFO", logger="distill.refine.corpus"):
        assert read_corpus(nulls) == ["kept"]  # null is an empty passage, skipped like a blank line: and said so
    assert "2 blank passage(s) skipped" in caplog.text
    only_nulls = tmp_path / "only_nulls.jsonl"
    only_nulls.write_text('{"text": null}\n{"text": "  "}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="only_nulls.jsonl holds no non-empty passage"):
        read_corpus(only_nulls)
    # the command line: one line naming the file and the option, before any model loads
    code, err = _cli(_argv(base_dir, teacher_dir, missing, tmp_path / "o", tmp_path / "c"), capsys)
    line = _one_error_line(err)
    assert code == 2 and "--corpus" in line and "missing.jsonl" in line
    first_bad = tmp_path / "first_bad.jsonl"
    first_bad.write_text('{"text": 7}\n', encoding="utf-8")
    code, err = _cli(_argv(base_dir, teacher_dir, first_bad, tmp_path / "o", tmp_path / "c"), capsys)
    assert code == 2 and "first_bad.jsonl line 1: field 'text' is int" in _one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_parquet_column_of_ints_is_refused_naming_file_and_column(tmp_path, base_dir, teacher_dir, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": list(range(50))}), p)
    with pytest.raises(ValueError, match="ints.parquet: column 'text' holds int, not text"):
        read_corpus(p)
    code, err = _cli(_argv(base_dir, teacher_dir, p, tmp_path / "o", tmp_path / "c"), capsys)
    line = _one_error_line(err)
    assert code == 2 and "ints.parquet" in line and "--corpus" in line


def test_bom_and_crlf_read_as_the_plain_file(tmp_path):
    lines = ["first passage", "second passage", "third passage"]
    plain = _write_corpus(tmp_path / "plain.txt", lines)
    dos = tmp_path / "dos.txt"
    dos.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    assert read_corpus(dos) == read_corpus(plain) == lines
    jsonl = tmp_path / "dos.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps({"text": t}).encode() for t in lines) + b"\r\n")
    assert read_corpus(jsonl) == lines


def test_mixed_encodings_are_refused_naming_file_and_line(tmp_path, base_dir, teacher_dir, capsys):
    p = tmp_path / "mixed.txt"
    p.write_bytes("caf\u00e9 in utf-8\n".encode() + b"plain\n" + "caf\u00e9 in latin-1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"mixed.txt: not UTF-8 text \(line 3"):
        read_corpus(p)
    code, err = _cli(_argv(base_dir, teacher_dir, p, tmp_path / "o", tmp_path / "c"), capsys)
    line = _one_error_line(err)
    assert code == 2 and "mixed.txt" in line and "line 3" in line


def test_a_huge_single_line_is_one_passage_read_within_the_windows(base_model, teacher, tmp_path):
    from distill.refine import refine

    huge = " ".join(random.Random(1).choice(CORPUS_WORDS) for _ in range(200_000))  # about 1 MB on one line
    corpus = _write_corpus(tmp_path / "huge.txt", [*_corpus(60), huge, *_corpus(60, seed=3)[15:]])
    texts = read_corpus(corpus, None)
    assert huge in texts and len(texts) == 106
    model = refine(base_model, teacher, corpus, _config(epochs=1, max_sentences=None), cache_dir=tmp_path / "c",
                   show_progress_bar=False)
    assert model.config["refine"]["passages"] == 106
    assert np.isfinite(model.embedding_matrix()).all()


@pytest.mark.parametrize("value", ["0", "-5", "1e5", "lots"])
def test_bad_max_sentences_is_one_usage_error_naming_the_option(tmp_path, base_dir, teacher_dir, capsys, value):
    corpus = _write_corpus(tmp_path / "c.txt", _corpus(50))
    argv = _argv(base_dir, teacher_dir, corpus, tmp_path / "o", tmp_path / "c", "--max-sentences", value)
    if value in ("0", "-5"):
        code, err = _cli(argv, capsys)
        assert code == 2 and "--max-sentences must be at least 1" in _one_error_line(err)
    else:
        from distill.refine.cli import main

        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--max-sentences: expected a whole number of passages or 'all'" in err and "<lambda>" not in err
    assert not (tmp_path / "o").exists()


def test_bad_refine_max_sentences_of_distill_fails_before_the_distill(tmp_path, teacher_dir, capsys):
    from distill.__main__ import main

    corpus = _write_corpus(tmp_path / "c.txt", _corpus(50))
    for value in ("0", "-1"):
        code = main([str(teacher_dir), "-o", str(tmp_path / "o"), "--refine", str(corpus),
                     "--refine-max-sentences", value, "--quiet"])
        assert code == 2 and "--refine-max-sentences must be at least 1" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_a_huge_max_sentences_reads_every_passage(tmp_path):
    corpus = _write_corpus(tmp_path / "c.txt", _corpus(50))
    from distill.refine.cli import build_parser

    args = build_parser().parse_args(["m", "-o", "o", "--corpus", str(corpus), "--max-sentences", str(10**18)])
    assert args.max_sentences == 10**18
    assert len(read_corpus(corpus, args.max_sentences)) == 50


# ---- the featurize cache


def _counting(monkeypatch):
    from distill.refine import featurize as rf

    calls: list[int] = []
    real = rf.encode_chunk
    monkeypatch.setattr(rf, "encode_chunk", lambda t, chunk, **kw: calls.append(len(chunk)) or real(t, chunk, **kw))
    return calls


def test_chunks_of_another_corpus_are_never_used(teacher, tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    cache = tmp_path / "cache"
    other = _corpus(128, seed=5)
    rf.featurize(teacher, other, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert len(list(cache.glob("chunk-*.npy"))) == 2
    # a corpus of the same size: chunks 0 and 1 of the same shape are in the folder, but of other passages
    texts = [f"{t} again" for t in _corpus(128, seed=9)]
    calls = _counting(monkeypatch)
    got = rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == [64, 64]  # every chunk encoded: none of the other corpus's was taken
    np.testing.assert_allclose(got, teacher.encode(texts), atol=1e-5)


def test_truncated_or_misshapen_chunks_are_re_encoded(teacher, tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    cache = tmp_path / "cache"
    texts = _corpus(150)
    full = rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    chunks = sorted(p for p in cache.glob("chunk-*.npy"))
    assert len(chunks) == 3
    data = chunks[0].read_bytes()
    chunks[0].write_bytes(data[: len(data) // 2])  # a header that promises rows the file does not hold
    np.save(chunks[1], np.zeros((64, 5), dtype=np.float32))  # whole, but not this teacher's width
    np.save(chunks[2], np.zeros((22, teacher.dim), dtype=np.float64))  # another dtype
    calls = _counting(monkeypatch)
    again = rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == [64, 64, 22]
    np.testing.assert_allclose(again, full, atol=1e-6)
    calls.clear()
    rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == []  # the re-encoded chunks replaced the bad ones


def test_ctrl_c_during_featurize_exits_130_keeps_chunks_and_resumes(base_dir, teacher_dir, tmp_path, capsys,
                                                                    monkeypatch):
    from distill.refine import featurize as rf

    corpus = _write_corpus(tmp_path / "c.txt", _corpus(200))
    cache = tmp_path / "cache"
    calls: list[int] = []
    real = rf.encode_chunk

    def interrupted_on_the_third_chunk(t, chunk, **kw):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(t, chunk, **kw)

    monkeypatch.setattr(rf, "encode_chunk", interrupted_on_the_third_chunk)
    argv = _argv(base_dir, teacher_dir, corpus, tmp_path / "out", cache)
    from dataclasses import replace

    from distill.refine import cli
    from distill.refine.config import FeaturizeConfig

    real_config = cli.config_from_args  # the command line has no chunk size option: 64-passage chunks here
    monkeypatch.setattr(cli, "config_from_args", lambda *a, **kw: replace(real_config(*a, **kw),
                                                                          featurize=FeaturizeConfig(chunk_size=64)))
    assert cli.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    kept = [p for p in cache.glob("chunk-*.npy") if ".tmp" not in p.name]
    assert len(kept) == 2 and not list(cache.glob("*.tmp*"))
    assert not (tmp_path / "out").exists()
    calls.clear()
    monkeypatch.setattr(rf, "encode_chunk", lambda t, chunk, **kw: calls.append(len(chunk)) or real(t, chunk, **kw))
    assert cli.main(argv) == 0
    assert calls == [64, 8]  # only the chunks the interrupted run had not saved
    assert json.loads((tmp_path / "out" / "config.json").read_text())["refine"]["passages"] == 200


# ---- a base from another teacher, a run that diverges


def test_a_base_distilled_from_another_teacher_is_refused(base_model, base_dir, tmp_path, capsys):
    from distill import Teacher
    from distill.refine import refine
    from distill.refine.pipeline import VocabularyMismatchError

    other_dir = make_bpe_teacher(tmp_path / "bpe")
    capsys.readouterr()  # transformers' progress output while the teacher was written
    with pytest.raises(VocabularyMismatchError, match="does not match the teacher bpe's tokenizer"):
        refine(base_model, Teacher(str(other_dir), device="cpu"), _corpus(), _config(), cache_dir=tmp_path / "c",
               show_progress_bar=False)
    assert not (tmp_path / "c").exists()  # refused before the teacher encoded anything
    corpus = _write_corpus(tmp_path / "c.txt", _corpus())
    code, err = _cli(_argv(base_dir, other_dir, corpus, tmp_path / "o", tmp_path / "c"), capsys)
    assert code == 2 and "distilled from another teacher" in _one_error_line(err)
    assert not (tmp_path / "o").exists()


def test_a_base_with_added_words_still_matches_its_teacher(base_model, teacher):
    from distill.refine.pipeline import check_vocabulary_matches
    from distill.refine.vocabulary import extend_vocabulary

    extended, added = extend_vocabulary(base_model, ["horses", "walking"])
    assert added
    check_vocabulary_matches(extended, teacher.tokenizer, teacher.public_name)  # no error


def test_training_that_diverges_is_refused_and_nothing_is_saved(base_model, base_dir, teacher, teacher_dir, tmp_path,
                                                                capsys):
    from distill.refine import refine
    from distill.refine.train import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match=r"diverged.*learning-rate, now 1e\+30"):
        refine(base_model, teacher, _corpus(), _config(learning_rate=1e30), cache_dir=tmp_path / "c",
               show_progress_bar=False)
    corpus = _write_corpus(tmp_path / "c.txt", _corpus())
    out = tmp_path / "out"
    base_model.save_pretrained(out)  # a previous model in the output folder: untouched by the failed run
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, err = _cli(_argv(base_dir, teacher_dir, corpus, out, tmp_path / "c", "--learning-rate", "1e30",
                           "--overwrite"), capsys)
    assert code == 2 and "diverged" in _one_error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_nan_targets_and_their_history_never_reach_the_config(base_model, tmp_path):
    from distill.refine import refine

    targets = np.random.default_rng(0).normal(size=(200, 32)).astype(np.float32)
    targets[17, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 row"):
        refine(base_model, None, _corpus(), _config(), targets=targets, show_progress_bar=False)


# ---- kill -9 during training and during the final save


_KILLED = textwrap.dedent(
    """
    import os, sys, time
    from static_model import StaticModel
    from distill.refine import train as rt
    from distill.refine.cli import main

    where = sys.argv[1]
    real_fsync, real_save, real_loss = os.fsync, StaticModel.save_pretrained, rt.loss_function
    state = {"saving": False, "fsyncs": 0}

    def stall(what):
        print(what, flush=True)
        time.sleep(600)

    def loss_function(kind):
        fn = real_loss(kind)
        def wrapped(p, y):
            if where == "training" and p.requires_grad:
                stall("training")
            return fn(p, y)
        return wrapped

    def save(self, *args, **kwargs):
        state["saving"] = True
        return real_save(self, *args, **kwargs)

    def fsync(fd):
        if state["saving"]:
            state["fsyncs"] += 1
            if where == "save-start" and state["fsyncs"] == 1:
                stall("saving")
        real_fsync(fd)

    rt.loss_function, StaticModel.save_pretrained, os.fsync = loss_function, save, fsync
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("where", ["training", "save-start"])
def test_kill_9_during_training_or_the_save_leaves_the_previous_output_whole(base_model, base_dir, teacher_dir,
                                                                            tmp_path, where, capsys):
    from static_model import StaticModel

    corpus = _write_corpus(tmp_path / "c.txt", _corpus())
    out = tmp_path / "models" / "out"
    base_model.save_pretrained(out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    argv = _argv(base_dir, teacher_dir, corpus, out, tmp_path / "cache", "--overwrite")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _KILLED, where, *argv], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == where.split("-")[0].replace("save", "saving")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    np.testing.assert_array_equal(StaticModel.from_pretrained(out).embedding_matrix(), base_model.embedding_matrix())
    # the next run replaces it and removes what the killed save left beside it
    code, _ = _cli(argv, capsys)
    assert code == 0
    assert StaticModel.from_pretrained(out).config["refine"]["passages"] == 200
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


_INTERRUPTED = stalled_featurize_script("refine")


def test_a_real_sigint_during_featurize_exits_130_and_the_next_run_resumes(base_dir, teacher_dir, tmp_path, capsys,
                                                                           monkeypatch):
    from dataclasses import replace

    from distill.refine import cli
    from distill.refine.config import FeaturizeConfig

    corpus = _write_corpus(tmp_path / "c.txt", _corpus(200))
    cache = tmp_path / "cache"
    argv = _argv(base_dir, teacher_dir, corpus, tmp_path / "out", cache)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTED, *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "stalled"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert len([p for p in cache.glob("chunk-*.npy") if ".tmp" not in p.name]) == 2
    assert not list(cache.glob("*.tmp*")) and not (tmp_path / "out").exists()
    calls = _counting(monkeypatch)
    real_config = cli.config_from_args
    monkeypatch.setattr(cli, "config_from_args", lambda *a, **kw: replace(real_config(*a, **kw),
                                                                          featurize=FeaturizeConfig(chunk_size=64)))
    assert cli.main(argv) == 0
    assert calls == [64, 8]


# ---- an output folder inside an input folder


@pytest.mark.parametrize("inside", ["model", "teacher"])
def test_an_output_inside_the_model_or_teacher_folder_is_refused_before_any_work(base_dir, teacher_dir, tmp_path,
                                                                                  capsys, monkeypatch, inside):
    import distill.refine.pipeline

    monkeypatch.setattr(distill.refine.pipeline, "refine", lambda *a, **k: pytest.fail("the refinement ran"))
    corpus = _write_corpus(tmp_path / "c.txt", _corpus(50))
    folder = base_dir if inside == "model" else teacher_dir
    out = folder / "refined"
    before = sorted(p.name for p in folder.iterdir())
    code, err = _cli(_argv(base_dir, teacher_dir, corpus, out, tmp_path / "cache"), capsys)
    line = _one_error_line(err)
    what = "base model's" if inside == "model" else "teacher's"
    assert code == 2 and f"--output {out}: this is inside the {what} folder {folder}" in line
    assert sorted(p.name for p in folder.iterdir()) == before and not (tmp_path / "cache").exists()


def test_an_output_inside_the_recorded_teachers_folder_is_refused(base_model, teacher_dir, tmp_path, capsys,
                                                                  monkeypatch):
    import distill.refine.pipeline

    monkeypatch.setattr(distill.refine.pipeline, "refine", lambda *a, **k: pytest.fail("the refinement ran"))
    base = tmp_path / "base"
    base_model.save_pretrained(base)
    config = json.loads((base / "config.json").read_text())
    config["teacher"] = str(teacher_dir)  # no --teacher: the run takes the one the config records
    (base / "config.json").write_text(json.dumps(config))
    corpus = _write_corpus(tmp_path / "c.txt", _corpus(50))
    out = teacher_dir / "refined"
    code, err = _cli([str(base), "--corpus", str(corpus), "-o", str(out), "--quiet"], capsys)
    assert code == 2 and "this is inside the teacher's folder" in _one_error_line(err)
    assert not out.exists()


# ---- --quiet


def _refine_stderr(argv: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "distill.refine", *argv], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Saved" in done.stdout
    return done.stderr


def test_quiet_refine_prints_no_progress_bar_of_any_kind(base_dir, teacher_dir, tmp_path):
    corpus = _write_corpus(tmp_path / "c.txt", _corpus(80))
    argv = _argv(base_dir, teacher_dir, corpus, tmp_path / "quiet", tmp_path / "cache")
    assert "--quiet" in argv
    err = _refine_stderr(argv)
    assert "\r" not in err and "%|" not in err and "it/s]" not in err, err
    assert "Loading weights" not in err
    # without --quiet the same run draws bars (transformers' weight loading, featurize, training): the check sees them
    loud = [a for a in _argv(base_dir, teacher_dir, corpus, tmp_path / "loud", tmp_path / "cache2") if a != "--quiet"]
    err = _refine_stderr(loud)
    assert "Loading weights" in err and "Refine (train)" in err and "%|" in err


# ---- integer settings


@pytest.mark.parametrize(("option", "value", "field"), [
    ("epochs", True, "epochs"), ("epochs", 3.0, "epochs"), ("batch_size", False, "batch_size"),
    ("batch_size", 32.0, "batch_size"), ("patience", True, "patience"), ("buffer_passages", 1000.0, "buffer_passages"),
    ("max_validation", True, "max_validation"), ("max_validation", 10.5, "max_validation"), ("seed", True, "seed"),
    ("seed", 1.0, "seed"), ("max_length", True, "max_length"), ("max_length", 8.0, "max_length"),
    ("max_sentences", True, "max_sentences"), ("max_sentences", 100.0, "max_sentences"),
    ("chunk_size", True, "chunk_size"), ("teacher_batch_size", 64.0, "featurize.batch_size"),
    ("vocabulary_size", True, "vocabulary_size"), ("vocabulary_size", 2.0, "vocabulary_size"),
])
def test_int_settings_refuse_bools_and_floats_naming_the_field(option, value, field):
    from distill.refine import RefineConfig

    with pytest.raises((ValueError, TypeError), match=field):
        RefineConfig.from_options(**{option: value})
    assert RefineConfig.from_options(**{option: int(value) or 1}) is not None  # the same value as an int is taken
