"""The refinement corpus: every format read_corpus takes, its errors, and --refine from an installed wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

from distill.refine import corpus as refine_corpus
from distill.refine.corpus import (
    HF_PREFIX,
    NoDefaultCorpusError,
    corpus_spec_error,
    read_corpus,
)

REPO = Path(__file__).resolve().parent.parent
LINES = ["first passage", "", "second passage", "  third passage  "]


def test_text_file_one_passage_a_line(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert read_corpus(p) == ["first passage", "second passage", "third passage"]
    assert read_corpus(str(p), 2) == ["first passage", "second passage"]


def test_jsonl_field_and_its_errors(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"body": t, "id": i}) + "\n" for i, t in enumerate(LINES)), encoding="utf-8")
    assert read_corpus(p, text_field="body") == ["first passage", "second passage", "third passage"]
    with pytest.raises(ValueError, match=r"no field 'text' \(fields: body, id\)"):
        read_corpus(p)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_corpus(bad)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"text": 3}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="is int, not text"):
        read_corpus(wrong)


def test_parquet_column(tmp_path):
    pa = pytest.importorskip("pyarrow")  # the parquet extra; installed with the test extra
    import pyarrow.parquet as pq

    p = tmp_path / "c.parquet"
    pq.write_table(pa.table({"passage": LINES + [None], "n": list(range(5))}), p)
    assert read_corpus(p, text_field="passage") == ["first passage", "second passage", "third passage"]
    assert read_corpus(p, 1, text_field="passage") == ["first passage"]
    with pytest.raises(ValueError, match=r"no column 'text' \(columns: passage, n\)"):
        read_corpus(p)
    with pytest.raises(ValueError, match="holds int"):
        read_corpus(p, text_field="n")
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet")
    with pytest.raises(ValueError, match="not a Parquet file"):
        read_corpus(fake)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    p = tmp_path / "c.parquet"
    p.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if not installed
    with pytest.raises(ValueError, match=r"static-embeddings\[parquet\]"):
        read_corpus(p)


def _fake_datasets(rows, calls, error=None):
    def load_dataset(name, config=None, *, split, streaming):
        calls.append((name, config, split, streaming))
        if error:
            raise error

        def stream():
            for i, r in enumerate(rows):
                calls.append(i)  # how far the stream was read
                yield r
        return stream()

    return types.SimpleNamespace(load_dataset=load_dataset)


def test_hugging_face_dataset_is_streamed_with_a_line_cap(monkeypatch):
    calls: list = []
    rows = [{"text": f"line {i}"} for i in range(50)]
    monkeypatch.setitem(sys.modules, "datasets", _fake_datasets(rows, calls))
    assert read_corpus(f"{HF_PREFIX}org/corpus:en@validation", 3) == ["line 0", "line 1", "line 2"]
    assert calls[0] == ("org/corpus", "en", "validation", True) and max(calls[1:]) == 2  # never read past the cap
    calls.clear()
    monkeypatch.setattr(refine_corpus, "HF_LINE_CAP", 5)
    assert len(read_corpus(f"{HF_PREFIX}org/corpus")) == 5  # no max_sentences: HF_LINE_CAP
    assert calls[0] == ("org/corpus", None, "train", True)
    with pytest.raises(ValueError, match="no field 'body'"):
        read_corpus(f"{HF_PREFIX}org/corpus", text_field="body")


def test_hugging_face_offline_or_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", _fake_datasets([], [], ConnectionError("no network")))
    with pytest.raises(ValueError, match="Offline") as exc:
        read_corpus(f"{HF_PREFIX}org/corpus")
    assert "text file" in str(exc.value)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ValueError, match=r"static-embeddings\[hf\]"):
        read_corpus(f"{HF_PREFIX}org/corpus")
    assert "no dataset name" in corpus_spec_error(HF_PREFIX)


def test_no_default_corpus_names_the_options(tmp_path):
    for spec in (None, "default"):
        with pytest.raises(NoDefaultCorpusError) as exc:
            read_corpus(spec)
        assert "text file" in str(exc.value) and "hf:" in str(exc.value) and ".jsonl" in str(exc.value)
        assert corpus_spec_error(spec) == str(exc.value)
    assert "does not exist" in corpus_spec_error(tmp_path / "missing.txt")
    assert corpus_spec_error(f"{HF_PREFIX}org/x") is None  # checked when streamed, not before
    # nothing is looked up beside the installed package
    assert not hasattr(refine_corpus, "DEFAULT_CORPUS") and "__file__" not in Path(refine_corpus.__file__).read_text()


def test_sidecar_sources_first_only_when_the_sidecar_names_them(tmp_path):
    p = tmp_path / "sentences.txt"
    p.write_text("a\nb\nc\nd\n")
    assert read_corpus(p, 2, None) == ["a", "b"]  # no sidecar: file order
    (tmp_path / "sentences.source.txt").write_text("x\nwikipedia_en_2015\nx\nwikipedia_en_2015\n")
    assert read_corpus(p, 2, None) == ["b", "d"]
    assert read_corpus(p, 2, ()) == ["a", "b"]
    (tmp_path / "sentences.source.txt").write_text("x\ny\nx\ny\n")
    assert read_corpus(p, 2, None) == ["a", "b"]
    j = tmp_path / "c.jsonl"
    j.write_text('{"text": "a"}\n')
    with pytest.raises(ValueError, match="text corpus file"):
        read_corpus(j, prefer_sources=("x",))


def test_cli_refine_default_and_unreachable_dataset_fail_before_work(tmp_path, capsys, monkeypatch):
    from distill.__main__ import main

    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    assert main([str(teacher), "--output", str(tmp_path / "out"), "--refine", "default"]) == 2
    err = capsys.readouterr().err
    assert "no default refinement corpus" in err and "hf:" in err
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert main([str(teacher), "--output", str(tmp_path / "out"), "--pca-dims", "8", "--quiet",
                 "--refine", "hf:org/corpus"]) == 2
    assert "static-embeddings[hf]" in capsys.readouterr().err


def test_refine_from_an_installed_wheel_outside_the_repository(tmp_path):
    """``pip wheel`` the project, install it into a fresh venv, run ``--refine`` from elsewhere: the corpus is
    the only input, nothing is found through this checkout."""
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "distill", "static_model", "benchmarks"):
        f = REPO / name
        (shutil.copytree(f, src / name, ignore=shutil.ignore_patterns("__pycache__")) if f.is_dir()
         else (src.mkdir(exist_ok=True), shutil.copy(f, src / name)))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True, env=env, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", *map(str, wheels.glob("*.whl"))],
                   check=True, env=env, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    teacher = make_wordpiece_teacher(work / "teacher")
    corpus = work / "passages.jsonl"
    corpus.write_text("".join(json.dumps({"passage": s}) + "\n" for s in SENTENCES * 20), encoding="utf-8")
    where = subprocess.run([str(py), "-c", "import distill; print(distill.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel, not this checkout
    run = subprocess.run([str(py), "-m", "distill", str(teacher), "--output", str(work / "refined"),
                          "--pca-dims", "8", "--quiet", "--refine", str(corpus), "--refine-text-field", "passage",
                          "--refine-epochs", "2", "--refine-cache-dir", str(work / "cache")],
                         cwd=work, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    cfg = json.loads((work / "refined" / "config.json").read_text())
    assert cfg["refine"]["passages"] == len(SENTENCES) * 20 and cfg["refine"]["text_field"] == "passage"
    default = subprocess.run([str(py), "-m", "distill", str(teacher), "--output", str(work / "none"),
                              "--refine", "default"], cwd=work, env=env, capture_output=True, text=True,
                             check=False)
    assert default.returncode == 2 and "no default refinement corpus" in default.stderr
