"""Refinement's featurize cache and corpus under misuse: a cache folder shared by two teachers, corpora that are not
UTF-8 or hold no text (each test runs in seconds on tiny teachers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.teachers import SENTENCES, make_wordpiece_teacher  # noqa: E402

LATIN1 = "café au lait\nnaïve text\n".encode("latin-1")  # not UTF-8


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Two tiny teachers of the same dims and tokenizer that differ only in their (seeded) weights."""
    from distill import Teacher

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cache_teachers")
    yield (Teacher(str(make_wordpiece_teacher(root / "a", seed=0)), device="cpu"),
           Teacher(str(make_wordpiece_teacher(root / "b", seed=1)), device="cpu"))
    torch.set_num_threads(threads)


def test_a_cache_folder_of_another_teacher_is_refused_not_read_back(teachers, tmp_path):
    from distill.refine.featurize import featurize, teacher_fingerprint

    a, b = teachers
    texts = list(SENTENCES)
    cache = tmp_path / "cache"
    featurize(a, texts, cache_dir=cache, chunk_size=4, show_progress_bar=False)
    chunks = sorted(p.name for p in cache.iterdir())
    with pytest.raises(ValueError, match="another teacher") as info:
        featurize(b, texts, cache_dir=cache, chunk_size=4, show_progress_bar=False)
    message = str(info.value)
    assert str(cache) in message and teacher_fingerprint(b) in message and teacher_fingerprint(a) in message
    assert sorted(p.name for p in cache.iterdir()) == chunks  # nothing written or removed
    np.testing.assert_allclose(featurize(b, texts, cache_dir=tmp_path / "b", chunk_size=4, show_progress_bar=False),
                               b.encode(texts), atol=1e-5)
    np.testing.assert_allclose(featurize(a, texts, cache_dir=cache, chunk_size=4, show_progress_bar=False),
                               a.encode(texts), atol=1e-5)  # its own teacher still reads the folder


def test_refine_with_a_shared_cache_dir_does_not_train_on_another_teachers_targets(teachers, tmp_path):
    from distill import distill
    from distill.refine import RefineConfig, refine

    a, b = teachers
    corpus = list(SENTENCES) * 3
    config = RefineConfig.from_options(epochs=1, chunk_size=16, device="cpu")
    base = distill(a, pca_dims=8, show_progress_bar=False)
    refine(base, a, corpus, config, cache_dir=tmp_path / "shared", show_progress_bar=False)
    with pytest.raises(ValueError, match=r"another teacher"):
        refine(base, b, corpus, config, cache_dir=tmp_path / "shared", show_progress_bar=False)


def test_an_unreadable_cache_meta_is_refused(teachers, tmp_path):
    from distill.refine.featurize import featurize

    a, _ = teachers
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "meta.json").write_text('{"teacher": ')  # cut short
    with pytest.raises(ValueError, match=r"meta.json cannot be read"):
        featurize(a, list(SENTENCES), cache_dir=cache, show_progress_bar=False)
    (cache / "meta.json").write_text(json.dumps(["not", "an", "object"]))
    with pytest.raises(ValueError, match=str(cache)):
        featurize(a, list(SENTENCES), cache_dir=cache, show_progress_bar=False)


def test_the_first_teacher_to_claim_a_fresh_folder_keeps_it(teachers, tmp_path, monkeypatch):
    """Two runs that both find no meta.json: the second one's write does not replace the first's."""
    from distill.refine import featurize as rf

    a, b = teachers
    cache = tmp_path / "cache"
    cache.mkdir()
    rf.write_meta(cache, a)
    real_is_file = type(cache).is_file
    monkeypatch.setattr(type(cache), "is_file", lambda p: False if p.name == "meta.json" else real_is_file(p))
    with pytest.raises(ValueError, match="another teacher"):
        rf.write_meta(cache, b)  # it saw no meta.json, yet the first teacher's stays
    assert json.loads((cache / "meta.json").read_text())["fingerprint"] == rf.teacher_fingerprint(a)
    assert sorted(p.name for p in cache.iterdir()) == ["meta.json"]  # no temporary file left


@pytest.mark.parametrize("name", ["corpus.txt", "corpus.jsonl"])
def test_a_corpus_that_is_not_utf8_is_an_error_naming_file_and_line(tmp_path, name):
    from distill.refine.corpus import read_corpus

    path = tmp_path / name
    good = '{"text": "fine"}\n' if name.endswith(".jsonl") else "fine\n"
    path.write_bytes(good.encode() * 2 + (b'{"text": "caf\xe9"}\n' if name.endswith(".jsonl") else LATIN1))
    with pytest.raises(ValueError, match=rf"{name}: not UTF-8 text \(line 3"):
        read_corpus(path)


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_passage(tmp_path):
    from distill.refine.corpus import read_corpus

    text = tmp_path / "bom.txt"
    text.write_bytes(b"\xef\xbb\xbffirst\nsecond\n")
    assert read_corpus(text) == ["first", "second"]
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"text": "first"}\n')
    assert read_corpus(jsonl) == ["first"]


def test_refine_clis_check_the_corpus_encoding_and_content_before_the_teacher(tmp_path, capsys):
    from distill.__main__ import main as distill_main
    from distill.refine.cli import main as refine_main

    latin = tmp_path / "latin1.txt"
    latin.write_bytes(LATIN1)
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n   \n\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    for corpus, needle in ((latin, "not UTF-8 text (line 1"), (blank, "empty")):
        assert distill_main([str(tmp_path / "no-such-teacher"), "-o", str(tmp_path / "out"),
                             "--refine", str(corpus)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --refine") and str(corpus) in err and needle in err, err
        assert "no-such-teacher" not in err  # refused before the teacher was looked up
        assert refine_main([str(model), "-o", str(tmp_path / "out"), "--corpus", str(corpus)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --corpus") and needle in err, err
    assert not (tmp_path / "out").exists()


def test_two_writers_of_one_chunk_in_processes_with_the_same_id_both_succeed(tmp_path, monkeypatch):
    """Two runs sharing a cache folder whose processes have the same id (threads of one process, or containers on one
    volume): the second writer's rename once found its temporary file already renamed away (FileNotFoundError)."""
    from distill.refine import featurize as rf

    target = tmp_path / "chunk-00000-0123456789abcdef.npy"
    first, second = np.ones((3, 4), np.float32), np.full((3, 4), 2.0, np.float32)
    real_save = np.save
    nested = []

    def save_then_let_the_other_writer_finish(file, array):
        real_save(file, array)
        if not nested:  # the other run writes the same chunk meanwhile and renames it into place first
            nested.append(True)
            rf.save_chunk(target, second)

    monkeypatch.setattr(rf.np, "save", save_then_let_the_other_writer_finish)
    rf.save_chunk(target, first)
    monkeypatch.undo()
    assert np.array_equal(rf.load_chunk(target, 3, 4), first)  # whole: the last rename wins
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file left


def test_a_chunk_write_that_fails_leaves_no_temporary_file(tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    def disk_full(file, array):  # save_chunk hands np.save an open file
        file.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rf.np, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        rf.save_chunk(tmp_path / "chunk-00000-0123456789abcdef.npy", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_passages_that_move_a_newline_between_them_are_another_chunk(teachers, tmp_path):
    """A JSONL or in-memory passage may hold a newline: ["a\\nb", "c"] once shared a chunk name with ["a", "b\\nc"],
    so the second corpus was trained on the first one's targets."""
    from distill.refine.featurize import featurize, texts_hash

    a, _ = teachers
    first = ["the cat sat\non the mat", "a man plays music"]
    second = ["the cat sat", "on the mat\na man plays music"]
    assert texts_hash(first) != texts_hash(second)
    assert texts_hash(["the cat", "sat"]) == "707ece720bb901da"  # texts without a newline keep their old names
    featurize(a, first, cache_dir=tmp_path, chunk_size=2, show_progress_bar=False)
    np.testing.assert_allclose(featurize(a, second, cache_dir=tmp_path, chunk_size=2, show_progress_bar=False),
                               a.encode(second), atol=1e-5)


def test_a_cached_chunk_of_nan_is_encoded_again_not_trained_on(teachers, tmp_path):
    from distill.refine.featurize import chunk_file, featurize

    a, _ = teachers
    texts = list(SENTENCES)[:8]
    featurize(a, texts, cache_dir=tmp_path, chunk_size=4, show_progress_bar=False)
    victim = chunk_file(tmp_path, 1, texts[4:])
    poisoned = np.load(victim)
    poisoned[2, 3] = np.nan
    np.save(victim, poisoned)  # right name, shape and dtype; a value is NaN
    again = featurize(a, texts, cache_dir=tmp_path, chunk_size=4, show_progress_bar=False)
    assert np.isfinite(again).all()
    np.testing.assert_allclose(again, a.encode(texts), atol=1e-5)


def test_a_teacher_that_gives_nan_is_an_error_naming_the_passage_and_caches_nothing(teachers, tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    a, _ = teachers
    texts = list(SENTENCES)[:8]
    real = rf.encode_chunk

    def overflowing(teacher, chunk, **kw):  # float16 overflow on a GPU, say, in passage 6 (chunk 1, row 2)
        out = real(teacher, chunk, **kw)
        if chunk == texts[4:]:
            out[2] = np.inf
        return out

    monkeypatch.setattr(rf, "encode_chunk", overflowing)
    with pytest.raises(ValueError, match=r"NaN or infinite embeddings for 1 passage\(s\), the first passage 6 of"):
        rf.featurize(a, texts, cache_dir=tmp_path, chunk_size=4, show_progress_bar=False)
    assert rf.load_chunk(rf.chunk_file(tmp_path, 0, texts[:4]), 4, a.dim) is not None  # the good chunk is kept
    assert not rf.chunk_file(tmp_path, 1, texts[4:]).exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_targets_with_nan_are_refused_naming_the_row_before_training(teachers, bad):
    """They were once trained on, and only the finished table was refused ("embeddings hold NaN")."""
    from distill import distill
    from distill.refine import RefineConfig, refine

    a, _ = teachers
    corpus = list(SENTENCES) * 2
    targets = a.encode(corpus)
    targets[7, 1] = bad
    base = distill(a, pca_dims=8, show_progress_bar=False)
    with pytest.raises(ValueError, match=r"targets hold NaN or infinite values in 1 row\(s\), the first row 7"):
        refine(base, "teacher", corpus, RefineConfig.from_options(epochs=1, device="cpu"), targets=targets,
               show_progress_bar=False)
