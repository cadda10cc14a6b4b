"""Trust audit of ``python -m distill``: every bad teacher folder, word list, output place or interruption is one
clear ``error:`` line (exit 2) or leaves the previous model whole; nothing is lost or assumed silently."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers.teachers import make_wordpiece_teacher
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from distill import read_vocabulary_file
from distill.__main__ import main
from static_model import StaticModel


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    return make_wordpiece_teacher(tmp_path_factory.mktemp("teacher") / "wp")


def _copy(teacher: Path, dest: Path) -> Path:
    shutil.copytree(teacher, dest)
    return dest


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([*argv, "--quiet"])
    err = capsys.readouterr().err
    return code, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _tiny_model(scale: float) -> StaticModel:
    tokenizer = Tokenizer(WordLevel({f"w{i}": i for i in range(50)}, unk_token="w0"))
    table = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32) * scale
    return StaticModel(table, tokenizer)


# --------------------------------------------------------------------------- broken teacher folders

def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _truncated_pytorch_weights(folder: Path) -> None:
    """Replace the safetensors weights with a truncated ``pytorch_model.bin`` of the same tensors."""
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    _truncate(folder / "pytorch_model.bin", 5000)


BROKEN_TEACHERS = {
    "no tokenizer": (lambda d: [(d / "tokenizer.json").unlink(), (d / "tokenizer_config.json").unlink()],
                     "no fast tokenizer"),
    "truncated tokenizer.json": (lambda d: _truncate(d / "tokenizer.json", 1000), "tokenizer.json"),
    # the error names the damaged file, not only the folder
    "truncated model.safetensors": (lambda d: _truncate(d / "model.safetensors", 5000),
                                    "model.safetensors is damaged"),
    "garbage model.safetensors": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(20000)),
                                  "model.safetensors is damaged"),
    "empty model.safetensors": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors is damaged"),
    "truncated pytorch_model.bin": (lambda d: _truncated_pytorch_weights(d), "pytorch_model.bin is damaged"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors"),
    "truncated config.json": (lambda d: _truncate(d / "config.json", 100), "config.json"),
    "no config.json": (lambda d: (d / "config.json").unlink(), "config.json"),
    "modules.json not JSON": (lambda d: (d / "modules.json").write_text("{"), "modules.json"),
    "modules.json of numbers": (lambda d: (d / "modules.json").write_text("[1, 2]"), "modules.json"),
    "pooling config not JSON": (lambda d: (d / "1_Pooling" / "config.json").write_text("xx"), "1_Pooling"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_TEACHERS))
def test_a_broken_teacher_folder_is_one_error_line_and_no_output(teacher_dir, tmp_path, capsys, case):
    breaker, needle = BROKEN_TEACHERS[case]
    teacher = _copy(teacher_dir, tmp_path / "teacher")
    breaker(teacher)
    out = tmp_path / "out"
    code, err = _run([str(teacher), "--output", str(out)], capsys)
    assert code == 2
    line = _error_line(err)
    assert needle in line
    if "damaged" in needle:  # the full path of the file, and the folder it was loaded from
        assert f"{teacher / needle.split()[0]} is damaged" in line and "Cannot load the teacher" in line
    assert not out.exists()


# --------------------------------------------------------------------------- hub ids while offline

def test_a_hub_id_while_offline_says_offline_and_how_to_pass_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = _run(["some-org/some-model", "--output", str(tmp_path / "out")], capsys)
    line = _error_line(err)
    assert code == 2
    assert "offline" in line and "HF_HUB_OFFLINE" in line
    assert "local folder" in line and "python -m distill /path/to/some-model --output DIR" in line


def test_a_hub_id_without_network_says_offline(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_network(repo_id, local_files_only=False, **kwargs):
        if local_files_only:
            raise FileNotFoundError("not in the cache")
        try:
            raise OSError("[Errno -2] Name or service not known")
        except OSError as exc:
            raise RuntimeError("Got: ConnectError") from ConnectionError(str(exc))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    code, err = _run(["some-org/some-model", "--output", str(tmp_path / "out")], capsys)
    line = _error_line(err)
    assert code == 2
    assert "offline" in line and "no network connection" in line and "local folder" in line


def test_an_unknown_repository_online_is_not_called_offline(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def not_found(repo_id, local_files_only=False, **kwargs):
        raise FileNotFoundError("not in the cache" if local_files_only else "404 Repository Not Found")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    code, err = _run(["some-org/some-model", "--output", str(tmp_path / "out")], capsys)
    line = _error_line(err)
    assert code == 2
    assert "404 Repository Not Found" in line and "offline" not in line.split("could not be fetched")[1]


# --------------------------------------------------------------------------- not a sentence-transformer

def test_a_plain_hugging_face_folder_says_its_pooling_is_assumed(teacher_dir, tmp_path, capsys, caplog):
    plain = _copy(teacher_dir, tmp_path / "plain")
    for name in ("modules.json", "sentence_bert_config.json"):
        (plain / name).unlink()
    shutil.rmtree(plain / "1_Pooling")
    shutil.rmtree(plain / "2_Normalize")
    out = tmp_path / "out"
    assert main([str(plain), "--output", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "not a sentence-transformers folder (no modules.json)" in caplog.text
    assert "assumed: the teacher folder has no sentence-transformers modules.json" in captured.out
    info = json.loads((out / "config.json").read_text())["distill"]
    assert info["teacher_pooling_assumed"] is True and info["teacher_pooling"] == "mean"


def test_a_sentence_transformers_teacher_records_no_assumption(teacher_dir):
    from distill.plan import prepare

    plan = prepare(str(teacher_dir))
    assert plan.teacher.spec.sentence_transformers


# --------------------------------------------------------------------------- --vocabulary files

def _words(tmp_path: Path, data: bytes, limit: int | None = None) -> list[str]:
    path = tmp_path / "words.txt"
    path.write_bytes(data)
    return read_vocabulary_file(path, limit)


def test_vocabulary_byte_order_mark_is_no_part_of_the_first_word(tmp_path):
    assert _words(tmp_path, "\ufeffplaying\nwalked\n".encode()) == ["playing", "walked"]
    assert _words(tmp_path, "\ufeffword\tfrequency\nplaying\t3\n".encode()) == ["playing"]


def test_vocabulary_first_row_is_a_header_only_above_frequency_rows(tmp_path):
    # word<TAB>tag rows: the first is a word like the others (it was dropped as a "header")
    assert _words(tmp_path, b"playing\tverb\nwalked\tverb\n") == ["playing", "walked"]
    assert _words(tmp_path, b"word\tfrequency\nplaying\t3\nwalked\t2\n") == ["playing", "walked"]
    assert _words(tmp_path, b"word\tfrequency\n\n  \nplaying\t3\n") == ["playing"]  # blank lines decide nothing
    assert _words(tmp_path, b"word\tfrequency\n") == []  # a header alone: no words (the CLI says so)
    assert _words(tmp_path, b"playing\tverb\nwalked\tverb\ncats\tnoun\n", limit=2) == ["playing", "walked"]
    assert _words(tmp_path, b"playing\tverb\nwalked\tverb\n", limit=1) == ["playing"]


def test_a_vocabulary_of_a_header_alone_is_an_error(teacher_dir, tmp_path, capsys):
    words = tmp_path / "words.tsv"
    words.write_text("word\tfrequency\n")
    code, err = _run([str(teacher_dir), "--output", str(tmp_path / "out"), "--vocabulary", str(words)], capsys)
    assert code == 2 and "holds no words" in _error_line(err)


# --------------------------------------------------------------------------- output places

def test_output_inside_the_teacher_folder_is_refused_before_any_work(teacher_dir, tmp_path, capsys, monkeypatch):
    import distill

    monkeypatch.setattr(distill, "distill", lambda *a, **k: pytest.fail("the work started"))
    teacher = _copy(teacher_dir, tmp_path / "teacher")
    before = sorted(p.relative_to(teacher) for p in teacher.rglob("*"))
    link = tmp_path / "link"
    link.symlink_to(teacher)
    for argv in ([str(teacher), "--output", str(teacher / "static")],
                 [str(link), "--output", str(teacher / "a" / "b")],
                 [str(teacher), "--output", str(teacher / "1_Pooling"), "--overwrite"]):
        code, err = _run(argv, capsys)
        assert code == 2
        line = _error_line(err)
        assert "--output" in line
    assert sorted(p.relative_to(teacher) for p in teacher.rglob("*")) == before


def test_teacher_inside_the_output_folder_is_never_replaced(teacher_dir, tmp_path, capsys):
    out = tmp_path / "out"
    _tiny_model(1.0).save_pretrained(out)
    _copy(teacher_dir, out / "teacher")
    code, err = _run([str(out / "teacher"), "--output", str(out), "--overwrite"], capsys)
    assert code == 2 and "--output" in _error_line(err)
    assert (out / "teacher" / "model.safetensors").is_file()


# --------------------------------------------------------------------------- interrupted saves

def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_ctrl_c_during_the_save_keeps_the_previous_model_whole(tmp_path, capsys, monkeypatch):
    import distill

    out = tmp_path / "out"
    _tiny_model(1.0).save_pretrained(out)
    before = _snapshot(out)
    monkeypatch.setattr(distill, "distill", lambda *a, **k: _tiny_model(2.0))
    real_fsync = os.fsync

    def interrupted(fd):
        real_fsync(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    code = main([str(tmp_path / "anything"), "--output", str(out), "--overwrite", "--quiet"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the half-written new folder was removed


KILLED_SAVER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    import distill
    import distill.__main__ as cli
    from static_model import StaticModel

    target, call, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tokenizer = Tokenizer(WordLevel({f"w{i}": i for i in range(50)}, unk_token="w0"))
    table = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32) * 2.0
    distill.distill = lambda *a, **k: StaticModel(table, tokenizer)  # the pipeline's result; the CLI saves it
    real = getattr(os, call)
    calls = [0]

    def hook(*args, **kwargs):
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(os, call, hook)
    sys.exit(cli.main([target + "-teacher", "--output", target, "--overwrite", "--quiet"]))
    """
)


@pytest.mark.parametrize(("call", "nth", "pair"), [("fsync", 1, False), ("fsync", 2, False), ("rename", 1, True),
                                                     ("rename", 2, True), ("rename", 3, True)])
def test_kill_9_during_the_save_keeps_the_previous_model(tmp_path, call, nth, pair):
    out = tmp_path / "out"
    old = _tiny_model(1.0)
    old.save_pretrained(out)
    before = _snapshot(out)
    env = dict(os.environ, STATIC_MODEL_RENAME_PAIR="1" if pair else "0")
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVER, str(out), call, str(nth)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    loaded = StaticModel.from_pretrained(out)  # the old model, or (killed after the swap) the new one, never a mix
    scale = float(np.abs(loaded.embedding_matrix()).max() / np.abs(old.embedding_matrix()).max())
    assert scale == pytest.approx(1.0, rel=1e-3) or scale == pytest.approx(2.0, rel=1e-3)
    if out.is_dir() and scale == pytest.approx(1.0, rel=1e-3):
        assert _snapshot(out) == before
    # the next run puts everything in order and writes the new model
    env["STATIC_MODEL_RENAME_PAIR"] = "0"
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVER, str(out), "fsync", "0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    np.testing.assert_allclose(StaticModel.from_pretrained(out).embedding_matrix(), old.embedding_matrix() * 2,
                               rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------- conflicting options, before the work

@pytest.mark.parametrize(("options", "needle"), [
    (["--drop-components", "50"], "--drop-components: drop_components=50 is more than the model's 32 dims"),
    (["--drop-components", "20", "--pca-dims", "16"], "--drop-components: drop_components=20 is more than the "
                                                      "model's 16 dims"),
    (["--pca-dims", "1000"], "--pca-dims: pca_dims=1000 is larger than the teacher's hidden size (32)"),
    (["--sif-coefficient", "2"], "--sif-coefficient: sif_coefficient must be in (0, 1)"),
    (["--frequency-weight", "0.5"], "--frequency-weight: frequency_weight applies to token_frequencies: pass "
                                    "--token-frequencies FILE too"),
])
def test_conflicting_options_are_refused_before_the_vocabulary_pass(teacher_dir, tmp_path, capsys, monkeypatch,
                                                                     options, needle):
    import distill.pipeline

    monkeypatch.setattr(distill.pipeline, "embed_vocabulary", lambda *a, **k: pytest.fail("the pass ran"))
    out = tmp_path / "out"
    code, err = _run([str(teacher_dir), "--output", str(out), *options], capsys)
    assert code == 2 and needle in _error_line(err)
    assert not out.exists()


def test_a_word_too_long_for_the_teachers_window_is_left_out_and_counted(tmp_path, capsys, caplog):
    from helpers.teachers import make_bpe_teacher

    teacher = make_bpe_teacher(tmp_path / "bpe")
    rng = np.random.default_rng(0)
    huge = "".join(rng.choice(list("abcdefghij"), size=3000))  # thousands of pieces: past the 64-token window
    words = tmp_path / "words.txt"
    words.write_text(f"{huge}\ncats\n")
    out = tmp_path / "out"
    # it was an IndexError traceback from the position embeddings, after the whole vocabulary pass
    assert main([str(teacher), "--output", str(out), "--vocabulary", str(words), "--quiet"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert "1 vocabulary words were left out" in caplog.text
    stats = json.loads((out / "config.json").read_text())["distill"]["added_words"]
    assert stats["too_long"] == 1 and stats["requested"] == 2
    assert huge not in StaticModel.from_pretrained(out).tokenizer.get_vocab()


def test_a_model_left_aside_by_a_killed_save_is_not_replaced_without_overwrite(tmp_path, capsys, monkeypatch):
    import distill

    out = tmp_path / "out"
    _tiny_model(1.0).save_pretrained(out)
    os.rename(out, tmp_path / ".out.old-999999999-abc")  # what a save killed between its renames leaves
    monkeypatch.setattr(distill, "distill", lambda *a, **k: _tiny_model(2.0))
    # it was refused only at the save, after all the work, with the API's "overwrite=True" and exit 1
    code, err = _run([str(tmp_path / "teacher"), "--output", str(out)], capsys)
    assert code == 2 and "--overwrite" in _error_line(err)
    assert not out.exists()
    assert main([str(tmp_path / "teacher"), "--output", str(out), "--overwrite", "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert float(np.abs(StaticModel.from_pretrained(out).embedding_matrix()).max()) == pytest.approx(
        float(np.abs(_tiny_model(2.0).embedding_matrix()).max()), rel=1e-3)


# --------------------------------------------------------------------------- words the teacher reads as unknown

def test_a_word_read_as_the_unknown_token_is_added_unless_too_many_characters(teacher_dir, tmp_path, capsys, caplog):
    emoji, huge = "\U0001f642", "a" * 101  # a character the vocabulary lacks; past max_input_chars_per_word=100
    words = tmp_path / "words.txt"
    words.write_text(f"{emoji}\n{huge}\ncat\ncatdog\n", encoding="utf-8")
    out = tmp_path / "out"
    # both were counted as already_single_token and silently not added: the teacher turns each into one [UNK]
    assert main([str(teacher_dir), "--output", str(out), "--vocabulary", str(words), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    stats = json.loads((out / "config.json").read_text())["distill"]["added_words"]
    assert stats == {"requested": 4, "added": 2, "already_single_token": 1, "split_by_pretokenizer": 0,
                     "duplicate": 0, "too_many_characters": 1}
    assert "left out words      1 over the tokenizer's characters a word" in captured.out
    assert "1 vocabulary words were left out: they are longer than" in caplog.text
    model = StaticModel.from_pretrained(out)
    assert model.tokenizer.encode(f"the {emoji} cat", add_special_tokens=False).tokens == ["the", emoji, "cat"]
    assert np.abs(model.embedding_matrix()[model.tokenizer.token_to_id(emoji)]).max() > 0
    assert huge not in model.tokenizer.get_vocab()
    assert model.tokenizer.encode(huge, add_special_tokens=False).tokens == ["[UNK]"]


def test_a_plain_run_prints_no_left_out_line(teacher_dir, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("cat\ncatdog\n", encoding="utf-8")
    assert main([str(teacher_dir), "--output", str(tmp_path / "out"), "--vocabulary", str(words), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "(1 added words" in out and "left out words" not in out


# --------------------------------------------------------------------------- --refine CORPUS too small

def _refuse_the_pass(monkeypatch) -> list[str]:
    """Make the vocabulary pass record that it ran and fail; returns the record."""
    import distill.pipeline

    calls: list[str] = []

    def pass_ran(*args, **kwargs):
        calls.append("pass")
        raise RuntimeError("the vocabulary pass ran")

    monkeypatch.setattr(distill.pipeline, "embed_vocabulary", pass_ran)
    return calls


@pytest.mark.parametrize("kind", ["text", "jsonl"])
def test_a_refine_corpus_with_too_few_distinct_passages_fails_before_the_pass(teacher_dir, tmp_path, capsys,
                                                                              monkeypatch, kind):
    calls = _refuse_the_pass(monkeypatch)
    passages = [f"passage number {i % 20}" for i in range(500)]  # 500 passages, 20 distinct; 32 dims need 33
    if kind == "text":
        corpus = tmp_path / "c.txt"
        corpus.write_text("\n".join(passages) + "\n", encoding="utf-8")
    else:
        corpus = tmp_path / "c.jsonl"
        corpus.write_text("".join(json.dumps({"text": p}) + "\n" for p in passages), encoding="utf-8")
    out = tmp_path / "out"
    code, err = _run([str(teacher_dir), "--output", str(out), "--refine", str(corpus)], capsys)
    line = _error_line(err)
    assert code == 2 and calls == [] and not out.exists()
    assert f"--refine {corpus}: the corpus has only 20 distinct passages;" in line  # the default cap is not named:
    assert "at least 33 (the model's dims + 1)" in line and "before the vocabulary pass" in line  # 500 lines are all


def test_the_refine_corpus_check_follows_pca_dims_and_max_sentences(teacher_dir, tmp_path, capsys, monkeypatch):
    calls = _refuse_the_pass(monkeypatch)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"passage number {i}" for i in range(20)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    # 8 dims need 9 distinct passages: 20 are enough, so the run goes on to the pass
    with pytest.raises(RuntimeError, match="the vocabulary pass ran"):
        main([str(teacher_dir), "--output", str(out), "--refine", str(corpus), "--pca-dims", "8", "--quiet"])
    assert calls == ["pass"]
    # but only the first 5 passages are used: too few, refused before the pass
    code, err = _run([str(teacher_dir), "--output", str(out), "--refine", str(corpus), "--pca-dims", "8",
                      "--refine-max-sentences", "5"], capsys)
    line = _error_line(err)
    assert code == 2 and calls == ["pass"] and not out.exists()
    assert "only 5 distinct passages in its first 5 passages (--refine-max-sentences)" in line
    assert "at least 9" in line


# --------------------------------------------------------------------------- --quiet

def test_quiet_distill_with_refine_prints_no_progress_bar(teacher_dir, tmp_path):
    from helpers.teachers import make_corpus

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(make_corpus(80)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    env.pop("HF_DATASETS_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run([sys.executable, "-m", "distill", str(teacher_dir), "--output", str(out), "--pca-dims", "8",
                           "--device", "cpu", "--refine", str(corpus), "--refine-epochs", "1", "--refine-cache-dir",
                           str(tmp_path / "cache"), "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "refined" in done.stdout and (out / "config.json").is_file()
    # tqdm and transformers' bars draw with carriage returns and "|" bars; --quiet leaves none
    assert "\r" not in done.stderr and "it/s]" not in done.stderr and "%|" not in done.stderr, done.stderr
    assert "Loading weights" not in done.stderr


def test_a_refine_cache_inside_the_output_or_the_teacher_is_refused_before_the_pass(teacher_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    """``python -m distill --refine`` with the featurize cache in the output folder ran the pass, featurized and
    trained, and then the save refused the folder the chunks had filled; in the teacher's folder the chunks went
    into the teacher (``python -m distill.refine`` checks the same, ``check_cache_folder``)."""
    calls = _refuse_the_pass(monkeypatch)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"passage number {i}" for i in range(50)) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    for cache, named in ((out / "cache", "--output folder"), (teacher_dir / "cache", "teacher's folder")):
        code, err = _run([str(teacher_dir), "--output", str(out), "--refine", str(corpus), "--pca-dims", "8",
                          "--refine-cache-dir", str(cache)], capsys)
        line = _error_line(err)
        assert code == 2 and f"--refine-cache-dir {cache}" in line and named in line, line
    assert calls == [] and not out.exists() and not (teacher_dir / "cache").exists()


# --------------------------------------------------------------------------- --revision

def test_revision_distills_the_hub_snapshot_at_that_revision(teacher_dir, tmp_path, capsys, monkeypatch):
    """``--revision`` reaches every hub call (as sentence-transformers' ``revision=``), the snapshot at that revision
    is what is distilled, and the model records the hub id given, not the snapshot folder."""
    import huggingface_hub

    calls: list[dict] = []

    def fake_snapshot_download(repo_id, local_files_only=False, **kwargs):
        calls.append({"repo_id": repo_id, "local_files_only": local_files_only, **kwargs})
        return str(teacher_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    out = tmp_path / "out"
    code, err = _run(["someone/tiny-teacher", "--revision", "v2", "--output", str(out)], capsys)
    assert code == 0, err
    assert calls and all(c["repo_id"] == "someone/tiny-teacher" and c["revision"] == "v2" for c in calls), calls
    model = StaticModel.from_pretrained(out)
    assert model.config["distill"]["teacher"] == "someone/tiny-teacher"
    direct = StaticModel.from_pretrained(_distill_folder(teacher_dir, tmp_path / "direct", capsys))
    np.testing.assert_array_equal(model.embedding_matrix(), direct.embedding_matrix())


def _distill_folder(teacher: Path, out: Path, capsys) -> Path:
    code, err = _run([str(teacher), "--output", str(out)], capsys)
    assert code == 0, err
    return out


def test_an_empty_revision_is_a_usage_error_naming_it(teacher_dir, tmp_path, capsys):
    code, err = _run(["someone/tiny-teacher", "--revision", " ", "--output", str(tmp_path / "out")], capsys)
    assert code == 2
    assert _error_line(err).startswith("error: --revision: revision must be a branch, tag or commit name")
