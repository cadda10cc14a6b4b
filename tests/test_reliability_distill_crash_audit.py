"""Audit of ``python -m distill`` and ``python -m distill.refine`` for lost files and unclear failures: a disk that
fills during the save or the featurize cache, a compressed corpus, a typo in an option, and
``python -m distill refine`` (the refine command under the distill one)."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.stalled import stalled_featurize_script
from helpers.teachers import make_corpus

from distill.__main__ import main
from distill.refine.cli import main as refine_main
from static_model import StaticModel

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(make_corpus(120)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def base_model(teacher_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "model"
    assert main([str(teacher_dir), "--output", str(out), "--quiet"]) == 0
    return out


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- a full disk


def _full_disk(monkeypatch, module, name: str, message: str | None = None) -> None:
    """``module.name`` (a writer given a path or a handle: ``save_file(tensors, path)``, ``np.save(handle, array)``)
    writes a part, then fails as a full disk does: ``OSError(ENOSPC)``, or ``OSError(message)`` (numpy's short
    write, which has no errno)."""

    def part_then_full(*args, **kwargs):
        target = next(a for a in args if isinstance(a, (str, os.PathLike)) or hasattr(a, "write"))
        if isinstance(target, (str, os.PathLike)):
            Path(target).write_bytes(b"\0" * 100)
        else:
            target.write(b"\0" * 100)
        raise OSError(message) if message is not None else OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(module, name, part_then_full)


def test_a_disk_that_fills_during_the_save_names_the_output_and_keeps_the_old_model(
        teacher_dir, base_model, tmp_path, capsys, monkeypatch):
    import static_model.persistence as persistence

    out = tmp_path / "out"
    shutil.copytree(base_model, out)
    before = _files(out)
    _full_disk(monkeypatch, persistence, "save_file")
    code = main([str(teacher_dir), "--output", str(out), "--overwrite", "--quiet", "--dtype", "float32"])
    line = _error_line(capsys.readouterr().err)
    assert code == 1
    assert line.startswith(f"error: --output {out}: the model could not be saved (No space left on device)"), line
    assert _files(out) == before  # the old model, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no half-written folder beside it


def test_a_save_that_another_save_overtook_is_not_called_a_disk_problem(teacher_dir, tmp_path, capsys, monkeypatch):
    """A save without --overwrite that finds a model put there meanwhile was reported as 'could not be saved ...; the
    folder holds what it held before. Fix that (free space, permissions)', naming overwrite=True: none of it true."""
    import static_model.persistence as persistence

    out = tmp_path / "out"
    write = persistence.write_model_files

    def another_save_first(folder, contents):
        write(folder, contents)
        if not saved:  # another run saves its model to the same new folder meanwhile
            saved.append(True)
            StaticModel.from_pretrained(folder).save_pretrained(out)

    saved: list[bool] = []

    monkeypatch.setattr(persistence, "write_model_files", another_save_first)
    code = main([str(teacher_dir), "--output", str(out), "--quiet"])
    line = _error_line(capsys.readouterr().err)
    assert code != 0 and (out / "config.json").is_file()
    assert line.startswith(f"error: --output {out}: {out} was filled by another save"), line
    assert "--overwrite" in line and "overwrite=True" not in line and "free space" not in line, line


def test_a_disk_that_fills_during_featurize_names_the_cache_folder_and_leaves_no_partial_chunk(
        teacher_dir, base_model, corpus, tmp_path, capsys, monkeypatch):
    cache, out = tmp_path / "cache", tmp_path / "refined"
    with monkeypatch.context() as m:
        _full_disk(m, np, "save", message="9600 requested and 2016 written")
        code = refine_main([str(base_model), "--corpus", str(corpus), "--output", str(out), "--cache-dir", str(cache),
                            "--teacher", str(teacher_dir), "--quiet"])
    line = _error_line(capsys.readouterr().err)
    assert code == 1 and not out.exists()
    assert line.startswith(f"error: featurize cache folder {cache}: could not write chunk-00000-"), line
    assert "9600 requested and 2016 written; is the disk full?" in line and "--cache-dir" in line, line
    assert not list(cache.glob("chunk-*")), list(cache.iterdir())
    # with space again the rerun encodes the chunk and gives the model of a clean run
    assert refine_main([str(base_model), "--corpus", str(corpus), "--output", str(out), "--cache-dir", str(cache),
                        "--teacher", str(teacher_dir), "--quiet"]) == 0
    clean = tmp_path / "clean"
    assert refine_main([str(base_model), "--corpus", str(corpus), "--output", str(clean), "--cache-dir",
                        str(tmp_path / "cache2"), "--teacher", str(teacher_dir), "--quiet"]) == 0
    np.testing.assert_array_equal(StaticModel.from_pretrained(out).embedding_matrix(),
                                  StaticModel.from_pretrained(clean).embedding_matrix())


# --------------------------------------------------------------------------- compressed corpora


def _gzip(path: Path, dest: Path) -> Path:
    dest.write_bytes(gzip.compress(path.read_bytes()))
    return dest


@pytest.mark.parametrize("name", ["corpus.txt.gz", "corpus.jsonl.gz", "corpus.txt"])
def test_a_gzip_corpus_is_refused_as_compressed_naming_the_file_and_how_to_unpack_it(
        teacher_dir, base_model, corpus, tmp_path, capsys, name):
    """A gzip'd corpus (whatever its name) was called 'not UTF-8 text ... save it as UTF-8'."""
    source = corpus
    if ".jsonl" in name:
        source = tmp_path / "plain.jsonl"
        source.write_text("".join(json.dumps({"text": line}) + "\n" for line in corpus.read_text().splitlines()))
    gz = _gzip(source, tmp_path / name)
    out = tmp_path / "out"
    expected = f"a gzip-compressed file, which is read as plain text only; decompress it first (gunzip -k {gz})"
    assert main([str(teacher_dir), "--output", str(out), "--refine", str(gz), "--quiet"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --refine {gz}: {expected}"), line
    assert refine_main([str(base_model), "--corpus", str(gz), "--output", str(out), "--quiet"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --corpus {gz}: {expected}"), line
    assert not out.exists()


def test_compressed_word_lists_and_corpora_are_refused_as_compressed(teacher_dir, corpus, tmp_path, capsys):
    from distill.refine.corpus import read_corpus

    gz = _gzip(corpus, tmp_path / "words.gz")
    for option in ("--vocabulary", "--token-frequencies"):
        assert main([str(teacher_dir), "--output", str(tmp_path / "out"), option, str(gz), "--quiet"]) == 2
        line = _error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {option} {gz}: ") and "a gzip-compressed file" in line, line
    with pytest.raises(ValueError, match=f"corpus file {gz}: a gzip-compressed file"):
        read_corpus(gz)
    for data, kind in ((b"BZh91AY&SY", "bzip2"), (b"\xfd7zXZ\x00\x00", "xz"), (b"\x28\xb5\x2f\xfd\x00", "zstd"),
                       (b"PK\x03\x04\x14\x00", "zip")):
        packed = tmp_path / f"corpus.{kind}"
        packed.write_bytes(data + bytes(range(128, 256)))
        assert main([str(teacher_dir), "--output", str(tmp_path / "out"), "--refine", str(packed), "--quiet"]) == 2
        assert f"a {kind}-compressed file" in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- option typos


@pytest.mark.parametrize(("argv", "expected"), [
    (["--outptu", "OUT"], "unknown option --outptu (did you mean --output?); the following arguments are required"),
    (["--output", "OUT", "--overwirte"], "unknown option --overwirte (did you mean --overwrite?)"),
    (["--output", "OUT", "--refine-epoch=2", "--pca-dmis", "8"], "unknown option --pca-dmis (did you mean "
     "--pca-dims?)"),
    (["--output", "OUT", "--frobnicate"], "unknown option --frobnicate; unrecognized arguments: --frobnicate"),
])
def test_a_typo_in_an_option_is_one_line_naming_it_and_the_option_meant(teacher_dir, tmp_path, capsys, argv,
                                                                         expected):
    """The typo was not named (argparse: '--output is required' for --outptu) after a 25-line usage block."""
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main([str(teacher_dir), *argv])
    line = _error_line(capsys.readouterr().err)
    assert exc.value.code == 2
    assert line.startswith(f"python -m distill: error: {expected}"), line
    assert line.endswith("(see python -m distill --help)")
    assert not (tmp_path / "out").exists()


def test_a_typo_in_a_refine_option_names_it(base_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        refine_main([str(base_model), "--output", str(tmp_path / "out"), "--corpsu", "c.txt"])
    line = _error_line(capsys.readouterr().err)
    assert exc.value.code == 2
    assert line.startswith("python -m distill.refine: error: unknown option --corpsu (did you mean --corpus?)"), line


def test_a_typo_in_a_compare_option_names_it(base_model, capsys):
    from distill.comparison import main as compare_main

    with pytest.raises(SystemExit) as exc:
        compare_main([str(base_model), "--pair", "p.jsonl", "--jsno"])
    line = _error_line(capsys.readouterr().err)
    assert exc.value.code == 2
    assert line.startswith("python -m distill compare: error: unknown option --jsno (did you mean --json?)"), line


def test_a_ctrl_c_after_the_save_says_the_model_was_saved(teacher_dir, base_model, corpus, tmp_path, capsys,
                                                         monkeypatch):
    """A Ctrl-C while the summary was printed said only 'interrupted' (exit 130), though the new model was in place."""
    import distill.refine.cli as refine_cli

    def interrupted(model, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(refine_cli, "print_summary", interrupted)
    out = tmp_path / "out"
    code = refine_main([str(base_model), "--corpus", str(corpus), "--output", str(out), "--teacher",
                        str(teacher_dir), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 130 and (out / "config.json").is_file()
    assert capsys.readouterr().err.strip().endswith(f"interrupted (after the model was saved to {out})")
    monkeypatch.setattr(refine_cli, "check_args", lambda args: interrupted(None, None))
    code = refine_main([str(base_model), "--corpus", str(corpus), "--output", str(tmp_path / "o2")])
    assert code == 130  # the next command line in the same process starts with nothing saved
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


# --------------------------------------------------------------------------- python -m distill refine


def test_distill_refine_runs_the_refine_command(teacher_dir, base_model, corpus, tmp_path, capsys):
    """``python -m distill refine MODEL ...`` read ``refine`` as a teacher name and MODEL as an extra argument."""
    out = tmp_path / "out"
    code = main(["refine", str(base_model), "--corpus", str(corpus), "--output", str(out), "--cache-dir",
                 str(tmp_path / "cache"), "--teacher", str(teacher_dir), "--quiet"])
    assert code == 0, capsys.readouterr().err
    direct = tmp_path / "direct"
    assert refine_main([str(base_model), "--corpus", str(corpus), "--output", str(direct), "--cache-dir",
                        str(tmp_path / "cache"), "--teacher", str(teacher_dir), "--quiet"]) == 0
    assert "refine" in StaticModel.from_pretrained(out).config
    np.testing.assert_array_equal(StaticModel.from_pretrained(out).embedding_matrix(),
                                  StaticModel.from_pretrained(direct).embedding_matrix())


def test_a_teacher_folder_named_refine_is_still_a_teacher(teacher_dir, tmp_path, capsys, monkeypatch):
    shutil.copytree(teacher_dir, tmp_path / "refine")
    monkeypatch.chdir(tmp_path)
    assert main(["refine", "--output", "out", "--quiet"]) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "config.json").is_file()


def test_a_folder_named_refine_that_is_no_teacher_leaves_the_command_alone(base_model, tmp_path, capsys, monkeypatch):
    """Any folder named refine in the working folder (the repository's distill/ has one) sent the command to the
    distill parser; its errors named python -m distill.refine, not the command typed."""
    (tmp_path / "refine").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["refine", str(base_model), "--output", "out", "--corpsu", "c.txt"])
    line = _error_line(capsys.readouterr().err)
    assert exc.value.code == 2
    assert line.startswith("python -m distill refine: error: unknown option --corpsu (did you mean --corpus?)"), line


# --------------------------------------------------------------------------- a teacher that is a file


def test_a_teacher_path_that_is_a_file_is_called_a_file(corpus, tmp_path, capsys):
    """It was called a 'Teacher folder ... holds neither modules.json nor config.json'."""
    code = main([str(corpus), "--output", str(tmp_path / "out"), "--quiet"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and not (tmp_path / "out").exists()
    assert line.startswith(f"error: Teacher '{corpus}' is a file, not a model folder; pass the folder"), line


# --------------------------------------------------------------------------- a featurize cache that cannot be written


def test_a_cache_dir_that_cannot_be_made_is_refused_before_the_vocabulary_pass(teacher_dir, corpus, tmp_path, capsys,
                                                                               monkeypatch):
    """A --refine-cache-dir under a file (or on a read-only disk) failed with '[Errno 20] Not a directory' only after
    the vocabulary pass and the teacher's load."""
    import distill.pipeline

    def no_pass(*args, **kwargs):
        raise AssertionError("the vocabulary pass ran")

    monkeypatch.setattr(distill.pipeline, "embed_vocabulary", no_pass)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = tmp_path / "out"
    code = main([str(teacher_dir), "--output", str(out), "--refine", str(corpus), "--refine-cache-dir",
                 str(blocker / "cache"), "--quiet"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and not out.exists() and blocker.read_text() == "x"
    assert line == f"error: --refine-cache-dir {blocker / 'cache'}: {blocker} is a file, so no folder can be created " \
                   "under it", line


def test_a_default_cache_that_cannot_be_made_is_refused_before_the_teacher_loads(teacher_dir, base_model, corpus,
                                                                                  tmp_path, capsys, monkeypatch):
    """The default cache .cache/refine in a working folder where it cannot be made (here .cache is a file) failed
    with '[Errno 20] Not a directory: .cache/refine' once the teacher had loaded."""
    (tmp_path / ".cache").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    code = refine_main([str(base_model), "--corpus", str(corpus), "--output", "out", "--teacher", str(teacher_dir),
                        "--quiet"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and not (tmp_path / "out").exists()
    assert line.startswith("error: the default featurize cache .cache/refine (--cache-dir): "), line
    assert f"{tmp_path / '.cache'} is a file" in line, line


def test_a_filled_cache_that_cannot_be_written_is_still_read(teacher_dir, base_model, corpus, tmp_path, capsys,
                                                            monkeypatch):
    """A shared read-only cache whose chunks hold every passage: the run writes nothing there, and worked; the
    write probe refused it up front."""
    import distill.cli_checks

    cache, argv = tmp_path / "cache", [str(base_model), "--corpus", str(corpus), "--teacher", str(teacher_dir),
                                       "--quiet"]
    assert refine_main([*argv, "--output", str(tmp_path / "a"), "--cache-dir", str(cache)]) == 0
    probe = distill.cli_checks.check_writable_place

    def read_only_cache(target, label):
        if target.parent == cache:  # as a read-only folder (the sandbox is root: chmod does not stop it)
            raise distill.cli_checks.UsageError(f"{label}: cannot write in {cache} (Read-only file system)")
        return probe(target, label)

    monkeypatch.setattr(distill.cli_checks, "check_writable_place", read_only_cache)
    assert refine_main([*argv, "--output", str(tmp_path / "b"), "--cache-dir", str(cache)]) == 0, \
        capsys.readouterr().err
    code = refine_main([*argv, "--output", str(tmp_path / "c"), "--cache-dir", str(tmp_path / "new")])
    assert code == 0  # a new folder is probed where it will be made: here writable
    (tmp_path / "empty").mkdir()
    cache = tmp_path / "empty"
    assert refine_main([*argv, "--output", str(tmp_path / "d"), "--cache-dir", str(cache)]) == 2  # empty: probed


# --------------------------------------------------------------------------- kill -9 in featurize, corpus edited

# python -m distill with chunks of 64 passages, stalled (then killed) while it encodes the third chunk
_STALLED = stalled_featurize_script("distill", one_torch_thread=True)


def test_kill_9_in_featurize_then_an_edited_corpus_reencodes_the_changed_chunk_and_gives_the_clean_model(
        teacher_dir, base_model, tmp_path, capsys, monkeypatch):
    """``python -m distill --refine`` killed while it featurizes keeps the old model; the corpus is edited; the rerun
    reads back only the chunk whose passages did not change and gives the model of a clean run on the edited corpus."""
    from dataclasses import replace

    from distill.refine import cli
    from distill.refine import featurize as rf
    from distill.refine.config import FeaturizeConfig

    lines = make_corpus(200)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, cache = tmp_path / "models" / "out", tmp_path / "cache"
    shutil.copytree(base_model, out)
    before = _files(out)
    argv = [str(teacher_dir), "--output", str(out), "--overwrite", "--refine", str(corpus), "--refine-cache-dir",
            str(cache), "--refine-epochs", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _STALLED, *argv], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "stalled"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _files(out) == before and sorted(p.name for p in out.parent.iterdir()) == ["out"]
    assert len(list(cache.glob("chunk-*.npy"))) == 2
    lines[100] = "an edited passage the first run never saw"  # in the second chunk (passages 64 to 127)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")

    calls: list[int] = []
    real_encode, real_config = rf.encode_chunk, cli.config_from_args
    monkeypatch.setattr(rf, "encode_chunk", lambda t, chunk, **kw: calls.append(len(chunk)) or real_encode(t, chunk,
                                                                                                            **kw))
    monkeypatch.setattr(cli, "config_from_args", lambda *a, **kw: replace(real_config(*a, **kw),
                                                                          featurize=FeaturizeConfig(chunk_size=64)))
    assert main(argv) == 0, capsys.readouterr().err
    assert calls == [64, 64, 8]  # the first chunk read back; the edited one and the two never written encoded
    clean = tmp_path / "clean"
    assert main([*argv[:2], str(clean), *argv[4:6], "--refine-cache-dir", str(tmp_path / "fresh"), *argv[8:]]) == 0
    np.testing.assert_array_equal(StaticModel.from_pretrained(out).embedding_matrix(),
                                  StaticModel.from_pretrained(clean).embedding_matrix())
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


# --------------------------------------------------------------------------- ~ in options the shell does not expand


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """$HOME at ``tmp_path/home`` with a corpus and a word list in it; the working folder ``tmp_path/work``."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (home / "corpus.txt").write_text("\n".join(make_corpus(120)) + "\n", encoding="utf-8")
    (home / "words.txt").write_text("zebrafish\nquokka\n", encoding="utf-8")
    return home


def test_a_tilde_cache_dir_is_under_home_not_a_folder_named_tilde(teacher_dir, home, capsys):
    """``--refine-cache-dir=~/cache`` (the shell leaves ``~`` after ``=``) was checked under $HOME but written to a
    folder named ``~`` in the working folder, one ``rm -rf ~`` away from deleting the home folder."""
    code = main([str(teacher_dir), "--output=~/out", "--refine=~/corpus.txt", "--refine-cache-dir=~/cache", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in Path.cwd().iterdir()) == []  # no folder named ~ here
    assert list((home / "cache").glob("chunk-*.npy")) and (home / "out" / "config.json").is_file()


def test_a_tilde_vocabulary_is_read_from_home(teacher_dir, home, capsys):
    """``--vocabulary=~/words.txt`` passed its check and then failed: 'Vocabulary file ~/words.txt does not exist'."""
    assert main([str(teacher_dir), "--output", "out", "--vocabulary=~/words.txt", "--quiet"]) == 0, \
        capsys.readouterr().err
    assert StaticModel.from_pretrained("out").config["distill"]["added_words"]["added"] == 2


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_corpus_is_called_utf16(teacher_dir, corpus, tmp_path, capsys, encoding):
    """Notepad's "Unicode" (UTF-16 with a byte-order mark) was 'not UTF-8 text (line 1: invalid start byte)'."""
    from distill.refine.corpus import read_corpus

    wide = tmp_path / "wide.txt"
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")  # utf-16 and utf-32 write their own mark
    wide.write_text(bom + corpus.read_text(encoding="utf-8"), encoding=encoding)
    name = encoding.split("-be")[0].upper()
    expected = f"{name} text (it starts with a {name} byte-order mark), not UTF-8; save it as UTF-8"
    assert main([str(teacher_dir), "--output", str(tmp_path / "out"), "--refine", str(wide), "--quiet"]) == 2
    assert _error_line(capsys.readouterr().err) == f"error: --refine {wide}: {expected}"
    with pytest.raises(ValueError, match=re.escape(f"corpus file {wide}: {expected}")):
        read_corpus(wide)
