"""Issue #20, the command lines: every argument checked before any work, one-line usage errors (exit 2), Ctrl-C
(exit 130, nothing half-written), files that are not UTF-8, the teacher's public name in config.json, and the
``compare`` report in words.

Most usage errors are checked in-process through each CLI's ``main`` (the same handler ``python -m`` runs); a few
run as real subprocesses to check the exit status and that no traceback reaches the user. The teacher given to the
distill CLI in the usage-error cases does not exist: an error that names the option, not the teacher, shows the
option was checked before the teacher was even looked up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

REPO = Path(__file__).resolve().parent.parent
LATIN1 = "café\tnaïve\n".encode("latin-1")  # not UTF-8


def one_error_line(err: str, *needles: str) -> str:
    """``err`` is exactly one ``error: ...`` line that names every needle."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def run_module(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("teachers") / "tiny-wp")


@pytest.fixture(scope="module")
def static_dir(wp_dir, tmp_path_factory):
    from distill import distill

    out = tmp_path_factory.mktemp("static") / "tiny-static"
    distill(str(wp_dir), pca_dims=8, show_progress_bar=False).save_pretrained(out)
    return out


# --------------------------------------------------------------------------- python -m distill (items 5, 8)


def _distill_cases(tmp: Path) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(case, extra argv, what the error line names); the output is tmp/out unless the case sets -o."""
    words = tmp / "words.txt"
    words.write_text("catdog\nhorses\n")
    latin = tmp / "latin1.txt"
    latin.write_bytes(LATIN1)
    docs = tmp / "docs.jsonl"
    docs.write_text('{"body": "a passage", "id": 1}\n', encoding="utf-8")
    a_file = tmp / "a-file"
    a_file.write_text("precious")
    other = tmp / "other"
    other.mkdir()
    (other / "important.txt").write_text("keep me")
    return [
        ("output is a file, --overwrite", ["-o", str(a_file), "--overwrite"], ("--output", "existing file")),
        ("output is empty, --overwrite", ["-o", "", "--overwrite"], ("--output is empty",)),
        ("output is a folder of other files, --overwrite", ["-o", str(other), "--overwrite"],
         ("--output", "no model")),
        ("vocabulary size 0", ["--vocabulary", str(words), "--vocabulary-size", "0"], ("--vocabulary-size", "0")),
        ("vocabulary size -3", ["--vocabulary", str(words), "--vocabulary-size", "-3"], ("--vocabulary-size", "-3")),
        ("vocabulary not UTF-8", ["--vocabulary", str(latin)], ("--vocabulary", str(latin), "UTF-8", "line 1")),
        ("vocabulary missing", ["--vocabulary", str(tmp / "none.txt")], ("--vocabulary", "does not exist")),
        ("vocabulary is a folder", ["--vocabulary", str(other)], ("--vocabulary", "folder")),
        ("token frequencies missing", ["--token-frequencies", str(tmp / "none.tsv")],
         ("--token-frequencies", "does not exist")),
        ("token frequencies not UTF-8", ["--token-frequencies", str(latin)], ("--token-frequencies", "UTF-8")),
        ("unknown device", ["--device", "tpu9"], ("--device tpu9", "unknown device")),
        ("refine corpus missing", ["--refine", str(tmp / "none.txt")], ("--refine", "does not exist")),
        ("refine epochs 0", ["--refine", str(words), "--refine-epochs", "0"], ("--refine-epochs",)),
        ("refine learning rate inf", ["--refine", str(words), "--refine-learning-rate", "inf"],
         ("--refine-learning-rate", "finite")),
        ("refine seed -1", ["--refine", str(words), "--refine-seed", "-1"], ("--refine-seed", "-1")),
        ("refine corpus not UTF-8", ["--refine", str(latin)], ("--refine", str(latin), "UTF-8", "line 1")),
        ("refine prefers sources of a corpus without a sidecar",
         ["--refine", str(words), "--refine-prefer-sources", "wikipedia"],
         ("--refine-prefer-sources", "words.source.txt", "does not exist")),
        ("refine cache dir is a file", ["--refine", str(words), "--refine-cache-dir", str(a_file)],
         ("--refine-cache-dir", "existing file")),
        ("refine jsonl without the text field", ["--refine", str(docs)],
         ("--refine", "--refine-text-field text", "no field 'text' (fields: body, id)")),
        ("refine jsonl text field misspelt", ["--refine", str(docs), "--refine-text-field", "bdy"],
         ("--refine", "no field 'bdy'")),
        ("pca dims 0", ["--pca-dims", "0"], ("--pca-dims",)),
        ("contrast out of range", ["--contrast", "99"], ("--contrast", "between 0 and 50")),
        ("contrast nan", ["--contrast", "nan"], ("--contrast",)),
        ("teacher name is a path", ["--teacher-name", "../models/mine"], ("--teacher-name", "not a path")),
    ]


def test_distill_cli_checks_every_argument_before_the_teacher(tmp_path, capsys):
    from distill.__main__ import main

    teacher = str(tmp_path / "no-such-teacher")
    for case, argv, needles in _distill_cases(tmp_path):
        if "-o" not in argv:
            argv = ["-o", str(tmp_path / "out"), *argv]
        assert main([teacher, *argv]) == 2, case
        captured = capsys.readouterr()
        line = one_error_line(captured.err, *needles)
        assert "no-such-teacher" not in line, case  # the teacher was not even looked up
        assert captured.out == "", case
        assert not (tmp_path / "out").exists(), case
    assert (tmp_path / "a-file").read_text() == "precious"
    assert (tmp_path / "other" / "important.txt").read_text() == "keep me"
    # and the teacher itself, once the arguments are fine: one line too
    assert main([teacher, "-o", str(tmp_path / "out")]) == 2
    one_error_line(capsys.readouterr().err, "no-such-teacher")


def test_distill_cli_cuda_without_cuda(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from distill.__main__ import main

    assert main([str(tmp_path / "no-such-teacher"), "-o", str(tmp_path / "out"), "--device", "cuda"]) == 2
    one_error_line(capsys.readouterr().err, "--device cuda", "not available")
    assert main([str(tmp_path / "no-such-teacher"), "-o", str(tmp_path / "out"), "--device", "cuda:1"]) == 2
    one_error_line(capsys.readouterr().err, "--device cuda:1", "not available")


def test_device_is_checked_when_a_teacher_is_made(wp_dir, monkeypatch):
    import torch

    from distill import Teacher
    from distill.teacher import check_device

    with pytest.raises(ValueError, match="unknown device 'tpu9'"):
        Teacher(wp_dir, device="tpu9")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="cuda is not available"):
        Teacher(wp_dir, device="cuda")
    assert check_device("cpu") == "cpu" and Teacher(wp_dir, device="cpu").device == "cpu"


def test_vocabulary_file_errors_name_the_file(tmp_path):
    from distill import read_vocabulary_file

    latin = tmp_path / "words.txt"
    latin.write_bytes(b"fine\nalso fine\n" + LATIN1)
    with pytest.raises(ValueError, match=r"words\.txt is not UTF-8 text \(line 3"):
        read_vocabulary_file(latin)
    good = tmp_path / "good.txt"
    good.write_text("a\nb\nc\n")
    assert read_vocabulary_file(good, 2) == ["a", "b"]
    for bad in (0, -3, True, 1.5):  # 0 used to keep one word
        with pytest.raises(ValueError, match="limit must be a positive int"):
            read_vocabulary_file(good, bad)


def test_distill_module_usage_error_is_one_line_and_exit_2(tmp_path):
    a_file = tmp_path / "model"
    a_file.write_text("not a folder")
    proc = run_module("distill", str(tmp_path / "no-such-teacher"), "--output", str(a_file), "--overwrite")
    assert proc.returncode == 2
    one_error_line(proc.stderr, "--output", "existing file")
    assert a_file.read_text() == "not a folder"


# --------------------------------------------------------------------------- Ctrl-C (item 6)


def _libtorch_loaded(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see when the distill is under way")
def test_ctrl_c_during_a_distill_exits_130_with_one_line_and_writes_nothing(wp_dir, tmp_path):
    """SIGINT once torch is loaded (which only happens inside main, on the way to the vocabulary pass): exit 130,
    one line, no output folder, no temporaries next to it."""
    work = tmp_path / "work"
    work.mkdir()
    words = tmp_path / "words.txt"  # many added words and batch size 1: a pass of thousands of forwards
    words.write_text("\n".join(f"{a}{b}{c}word" for a in "abcdefghij" for b in "klmnopqrst" for c in "uvwxyzabcd"))
    out = work / "model"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen([sys.executable, "-m", "distill", str(wp_dir), "-o", str(out), "--pca-dims", "8",
                             "--vocabulary", str(words), "--batch-size", "1", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not _libtorch_loaded(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # into the teacher load / vocabulary pass
        assert proc.poll() is None, "the distill ended before it could be interrupted: " + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr == "interrupted\n"
    assert "Saved" not in stdout
    assert list(work.iterdir()) == []  # no model, no .model.tmp-* folder


# --------------------------------------------------------------------------- distill compare (items 6, 12)


def test_compare_cli_input_errors(tmp_path, capsys):
    from distill.comparison import main

    missing = tmp_path / "no-model"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    one = tmp_path / "one.txt"
    one.write_text("the same text\nthe same text\n")
    latin = tmp_path / "pairs.tsv"
    latin.write_bytes(LATIN1)
    broken = tmp_path / "pairs.jsonl"
    broken.write_text('{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "c"\n')
    nokeys = tmp_path / "nokeys.jsonl"
    nokeys.write_text('{"sentence1": "a", "other": "b"}\n')
    score = tmp_path / "score.tsv"
    score.write_text("a\tb\tlots\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES))
    cases = [
        ([str(missing), "--pairs", str(tmp_path / "none.tsv")], ("--pairs", "none.tsv", "does not exist")),
        ([str(missing), "--pairs", str(latin)], ("--pairs", "pairs.tsv", "UTF-8")),
        ([str(missing), "--texts", str(empty)], ("--texts", "empty.txt", "empty")),
        ([str(missing), "--texts", str(one)], ("--texts", "one.txt", "1 distinct text")),
        ([str(missing), "--pairs", str(broken)], ("--pairs", "pairs.jsonl", "line 2")),
        ([str(missing), "--pairs", str(nokeys)], ("--pairs", "sentence2")),
        ([str(missing), "--pairs", str(score)], ("--pairs", "line 1", "'lots'")),
        ([str(missing), "--texts", str(texts)], ("STATIC_MODEL", "no-model", "does not exist")),
        ([str(texts), "--texts", str(texts)], ("STATIC_MODEL", "not a folder")),
        ([str(tmp_path), "--texts", str(texts)], ("STATIC_MODEL", "config.json")),
        ([str(tmp_path), "--texts", str(texts), "--k", "0"], ("--k",)),
    ]
    for argv, needles in cases:
        assert main(argv) == 2, argv
        one_error_line(capsys.readouterr().err, *needles)


def test_compare_cli_bad_device_and_unknown_recorded_teacher(static_dir, tmp_path, capsys, monkeypatch):
    from distill.comparison import main

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES))
    assert main([str(static_dir), "--texts", str(texts), "--device", "tpu9"]) == 2
    one_error_line(capsys.readouterr().err, "--device tpu9")
    # the config records the teacher's public name ("tiny-wp"), not found from here: one line that says so
    monkeypatch.chdir(tmp_path)
    assert main([str(static_dir), "--texts", str(texts)]) == 2
    one_error_line(capsys.readouterr().err, "'tiny-wp'", "pass the teacher")


def test_compare_module_missing_model_is_one_line(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tb\n")
    proc = run_module("distill", "compare", str(tmp_path / "no-model"), "--pairs", str(pairs))
    assert proc.returncode == 2
    one_error_line(proc.stderr, "no-model")


def test_compare_report_says_what_is_compared_in_words(static_dir, wp_dir, tmp_path, capsys):
    from distill.comparison import main

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(f"{a}\t{b}\t{i}" for i, (a, b) in enumerate(zip(SENTENCES, SENTENCES[1:]))))
    assert main([str(static_dir), str(wp_dir), "--pairs", str(pairs)]) == 0
    report = capsys.readouterr().out
    n = len(SENTENCES) - 1
    assert f"Static model {static_dir} compared with its teacher {wp_dir}" in report
    assert f"on {n} sentence pairs from {pairs} ({len(SENTENCES)} distinct sentences)" in report
    assert ("Spearman correlation between the static model's and the teacher's similarities over the "
            f"{n} given pairs: ") in report
    assert "Neighbour overlap@10: 0." in report or "Neighbour overlap@10: 1.000" in report
    assert "nearest neighbours by cosine are the same in both models" in report
    assert "Spearman correlation with the gold pair scores: static model" in report
    assert "Speed, both timed here on the same 15 texts: static model" in report and "the teacher" in report
    assert "spearman:" not in report and "speed_ratio" not in report  # no bare keys
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES))
    assert main([str(static_dir), str(wp_dir), "--texts", str(texts), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)  # the machine-readable output keeps its keys
    assert {"spearman", "neighbour_overlap@10", "speed_ratio", "n_texts", "n_pairs"} <= set(res)
    assert res["n_pairs"] == len(SENTENCES) * (len(SENTENCES) - 1) // 2


def test_compare_help_explains_the_metrics(capsys):
    from distill.comparison import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for words in ("Spearman correlation", "neighbour overlap@k", "nearest neighbours", "gold scores",
                  "times faster", "--json"):
        assert words in text, words


def test_compare_checks_its_input_before_loading_models(tmp_path):
    from distill import compare

    with pytest.raises(ValueError, match="at least two distinct texts"):
        compare(tmp_path / "no-model", "no-such-teacher", texts=["only one"])
    with pytest.raises(ValueError, match="pairs is empty"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=[])
    with pytest.raises(ValueError, match="one value per pair"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=[("a", "b")], scores=[1.0, 2.0])


# --------------------------------------------------------------------------- python -m distill.refine


def test_refine_cli_checks_before_loading(static_dir, tmp_path, capsys):
    from distill.refine.cli import main

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES))
    cases = [
        ([str(static_dir), "-o", str(a_file), "--overwrite"], ("--output", "existing file")),
        ([str(static_dir), "-o", " ", "--overwrite"], ("--output is empty",)),
        ([str(tmp_path / "no-model"), "-o", str(tmp_path / "out")], ("MODEL", "does not exist")),
        ([str(static_dir), "-o", str(tmp_path / "out"), "--corpus", str(tmp_path / "none.txt")],
         ("--corpus", "does not exist")),
        ([str(static_dir), "-o", str(tmp_path / "out"), "--corpus", str(corpus), "--epochs", "0"],
         ("--epochs", "at least 1")),
        ([str(static_dir), "-o", str(tmp_path / "out"), "--corpus", str(corpus), "--device", "tpu9"],
         ("--device tpu9",)),
    ]
    for argv, needles in cases:
        assert main(argv) == 2, argv
        one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "out").exists() and a_file.read_text() == "x"


# --------------------------------------------------------------------------- python -m benchmarks (item 6)


def test_benchmarks_quality_bad_spec_is_one_line(tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main(["quality", "-m", "static:nope", "--data", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, "static:nope", "No model folder at nope", "Hugging Face Hub")
    (tmp_path / "empty-folder").mkdir()
    assert main(["quality", "-m", f"static:{tmp_path / 'empty-folder'}"]) == 2
    one_error_line(capsys.readouterr().err, "holds no model")
    assert main(["quality", "-m", "static:nope", "--device", "tpu9"]) == 2  # the first bad argument is named
    one_error_line(capsys.readouterr().err, "static:nope")
    proc = run_module("benchmarks", "quality", "-m", "static:nope", cwd=tmp_path)
    assert proc.returncode == 2
    one_error_line(proc.stderr, "static:nope")


def test_benchmarks_speed_bad_spec_exits_nonzero_and_writes_nothing(tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES))
    proc = run_module("benchmarks", "speed", "-m", "static:nope", "--sentences", str(sentences),
                      "--out", str(tmp_path / "X"), cwd=tmp_path)
    assert proc.returncode == 2
    one_error_line(proc.stderr, "static:nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sentences.txt"]


def test_benchmarks_speed_failed_worker_exits_1_and_writes_nothing(tmp_path):
    """A model that passes the cheap check but fails to load in its worker: no table, exit 1."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(SENTENCES))
    proc = run_module("benchmarks", "speed", "-m", f"static:{broken}", "--sentences", str(sentences), "--n", "5",
                      "--no-progress", "--out", str(tmp_path / "X"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("error: 1 measurement(s) failed")
    assert not (tmp_path / "X.md").exists() and not (tmp_path / "X.json").exists()


# --------------------------------------------------------------------------- the teacher's public name (item 10)


def test_distilled_config_records_no_private_path(wp_dir, tmp_path, capsys, monkeypatch):
    """A teacher given as a relative path: config.json names its folder, never the path (nor teacher_path)."""
    from distill.__main__ import main

    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    relative = os.path.relpath(wp_dir, work)
    assert relative.startswith("..")
    freqs = tmp_path / "freqs.tsv"
    freqs.write_text("the\t100\ncat\t3\n")
    assert main([relative, "-o", "m", "--pca-dims", "8", "--token-frequencies", str(freqs), "--quiet"]) == 0
    capsys.readouterr()
    text = (work / "m" / "config.json").read_text()
    cfg = json.loads(text)
    assert cfg["teacher"] == cfg["tokenizer_name"] == cfg["distill"]["teacher"] == "tiny-wp"
    assert cfg["distill"]["parameters"]["teacher"] == "tiny-wp"
    assert cfg["distill"]["parameters"]["token_frequencies"] == "freqs.tsv"
    assert "teacher_path" not in text and "teacher_path" not in cfg["distill"]
    assert str(tmp_path) not in text and ".." not in text
    # an explicit public name wins
    assert main([relative, "-o", "named", "--pca-dims", "8", "--teacher-name", "my-org/tiny-wp", "--quiet"]) == 0
    named = json.loads((work / "named" / "config.json").read_text())
    assert named["teacher"] == named["tokenizer_name"] == "my-org/tiny-wp"


def test_teacher_name_option_of_the_api(wp_dir):
    from distill import distill

    model = distill(str(wp_dir), pca_dims=8, teacher_name="my-org/tiny", show_progress_bar=False)
    assert model.config["teacher"] == "my-org/tiny"
    for bad in ("/abs/path", "../rel", "~/x", "a/b/c", ""):
        with pytest.raises(ValueError, match="teacher_name must be a public model name"):
            distill(str(wp_dir), teacher_name=bad, show_progress_bar=False)


def test_public_teacher_name_rules(tmp_path, monkeypatch, minilm_folder):
    from distill.resolve import public_teacher_name

    minilm = minilm_folder
    hub_id = "sentence-transformers/all-MiniLM-L6-v2"
    # the offline package, by its short name or by its folder (whose config.json names the base MiniLM, not it)
    assert public_teacher_name("all-MiniLM-L6-v2", minilm) == hub_id
    assert public_teacher_name(str(minilm), minilm) == hub_id
    # a hub cache snapshot
    snap = tmp_path / "hub" / "models--my-org--my-model" / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    assert public_teacher_name(str(snap), snap) == "my-org/my-model"
    # a hub id that resolved through the hub
    assert public_teacher_name("my-org/other", tmp_path) == "my-org/other"
    # a plain Hugging Face folder whose config names its hub id; a path there is ignored
    plain = tmp_path / "plain-bert"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"_name_or_path": "google/bert-small"}))
    assert public_teacher_name(str(plain), plain) == "google/bert-small"
    (plain / "config.json").write_text(json.dumps({"_name_or_path": "/home/me/models/bert"}))
    assert public_teacher_name(str(plain), plain) == "plain-bert"
    # a sentence-transformers folder: its config.json names the model it was tuned from, so the folder name
    st = tmp_path / "my-st-model"
    st.mkdir()
    (st / "modules.json").write_text("[]")
    (st / "config.json").write_text(json.dumps({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    monkeypatch.chdir(tmp_path)
    assert public_teacher_name("./my-st-model", st) == "my-st-model"


def test_speed_worker_error_is_its_message(tmp_path):
    """The error recorded for a failed worker is the exception's message, not traceback lines."""
    from benchmarks.speed.workers import run_worker

    res, err = run_worker(["-c", "raise ValueError('the model folder is broken')"])
    assert res is None and err == "ValueError: the model folder is broken"


@pytest.mark.parametrize("argv", [["--help"], ["speed", "--help"]])
def test_benchmarks_help_still_exits_0(argv, capsys):
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage" in capsys.readouterr().out


def test_compare_without_a_file_uses_the_shipped_public_domain_sentences(static_dir, wp_dir, capsys):
    """The README's main job needs no data folder: with neither --texts nor --pairs the package's sample is used."""
    from distill.comparison import SAMPLE_SENTENCES, main

    assert main([str(static_dir), str(wp_dir), "--limit", "300"]) == 0
    report = capsys.readouterr().out
    assert f"on 300 distinct texts from {SAMPLE_SENTENCES}" in report
    lines = SAMPLE_SENTENCES.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == 2000 and (SAMPLE_SENTENCES.parent / "NOTICE.md").is_file()
