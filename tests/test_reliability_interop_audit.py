"""Folders other libraries write, read with their vectors; folders we write, read by them; saves that fail midway."""

from __future__ import annotations

import builtins
import errno
import json
import os

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from static_model import StaticModel, persistence

TEXTS = ["the cat sat on the mat", "a dog runs fast.", "unbelievable playing!", "bank river money tax law"]
# 16 + 600 = 616 tokens of the tiny vocabulary, none unknown: past the 512 a config without max_length falls back to
LONG = " ".join(["the cat sat on the mat"] * 2 + ["bank river money tax law"] * 120)


def _st_folder(tokenizer, table, path, *, normalize):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    modules = [StaticEmbedding(tokenizer, embedding_weights=table)] + ([Normalize()] if normalize else [])
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(str(path))
    return model


@pytest.mark.parametrize("normalize", [False, True])
def test_a_sentence_transformers_folder_reads_every_token_as_sentence_transformers_does(tiny_model, tmp_path,
                                                                                        normalize):
    # StaticEmbedding's max_seq_length is infinite: it averages all 616 tokens; reading its folder with the 512-token
    # default gave the long text another vector (max abs diff 0.06 on this table)
    theirs = _st_folder(tiny_model.tokenizer, tiny_model.embedding_matrix(), tmp_path / "st", normalize=normalize)
    assert len(tiny_model.tokenizer.encode(LONG, add_special_tokens=False).ids) > 600
    ours = StaticModel.from_pretrained(tmp_path / "st")
    assert ours.max_length is None and ours.normalize is normalize
    np.testing.assert_allclose(ours.encode([LONG, *TEXTS]), theirs.encode([LONG, *TEXTS]), atol=1e-5)
    # saved again, the setting stays: Model2Vec then reads every token as well
    from model2vec import StaticModel as Model2VecModel

    ours.save_pretrained(tmp_path / "ours")
    assert StaticModel.from_pretrained(tmp_path / "ours").max_length is None
    again = np.asarray(Model2VecModel.from_pretrained(tmp_path / "ours").encode([LONG]), dtype=np.float32)
    np.testing.assert_allclose(again, theirs.encode([LONG]), atol=1e-5)


def test_a_sentence_transformers_tokenizer_that_truncates_keeps_its_length(tiny_model, wordpiece_tokenizer, tmp_path):
    # the tiny tokenizer.json truncates at 16 tokens, which StaticEmbedding keeps (it only switches padding off)
    assert wordpiece_tokenizer.truncation["max_length"] == 16
    theirs = _st_folder(wordpiece_tokenizer, tiny_model.embedding_matrix(), tmp_path / "st", normalize=True)
    ours = StaticModel.from_pretrained(tmp_path / "st")
    assert ours.max_length == 16
    np.testing.assert_allclose(ours.encode([LONG, *TEXTS]), theirs.encode([LONG, *TEXTS]), atol=1e-5)
    assert StaticModel.from_pretrained(tmp_path / "st", max_length=None).max_length is None  # the argument wins


def test_a_model2vec_folder_keeps_model2vecs_512_default(tiny_model, tmp_path):
    # the ST rule is only for folders without a config.json: Model2Vec's own default stays
    from model2vec import StaticModel as Model2VecModel

    Model2VecModel(tiny_model.embedding_matrix(), tiny_model.tokenizer, normalize=True).save_pretrained(tmp_path / "m")
    config = persistence.read_json(tmp_path / "m" / "config.json", tmp_path / "m")
    del config["max_length"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    assert StaticModel.from_pretrained(tmp_path / "m").max_length == 512
    assert Model2VecModel.from_pretrained(tmp_path / "m").max_length == 512


def _wordlevel():
    vocab = {w: i for i, w in enumerate(["[UNK]", "the", "cat", "sat", "on", "mat", "a", "dog", "runs", "fast", "."])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def _bpe():
    vocab = {"[UNK]": 0, **{c: i + 1 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz.!")}}
    merges = [("t", "h"), ("th", "e"), ("a", "t"), ("c", "at")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def _unigram():
    pieces = [("<unk>", 0.0)] + [(c, -2.0) for c in "abcdefghijklmnopqrstuvwxyz.!"] + [("▁", -1.0), ("▁the", -1.0)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    return tokenizer


@pytest.mark.parametrize("make", [_wordlevel, _bpe, _unigram], ids=["wordlevel", "bpe", "unigram"])
@pytest.mark.parametrize("normalize", [False, True])
def test_model2vec_folders_with_other_tokenizer_kinds_both_ways(tmp_path, make, normalize):
    from model2vec import StaticModel as Model2VecModel

    tokenizer = make()
    rng = np.random.default_rng(1)
    n = tokenizer.get_vocab_size()
    theirs = Model2VecModel(rng.normal(size=(n, 6)).astype(np.float32), tokenizer, normalize=normalize,
                            weights=rng.uniform(0.2, 2.0, size=n).astype(np.float32))
    theirs.save_pretrained(str(tmp_path / "m2v"))
    texts = [*TEXTS, "zzz qqq", "Über naïve café", ""]  # unknown pieces: both drop the unknown token
    ours = StaticModel.from_pretrained(tmp_path / "m2v")
    expected = np.asarray(theirs.encode(texts), dtype=np.float32)
    np.testing.assert_allclose(ours.encode(texts), expected, atol=1e-6)
    ours.save_pretrained(tmp_path / "ours")
    back = np.asarray(Model2VecModel.from_pretrained(tmp_path / "ours").encode(texts), dtype=np.float32)
    np.testing.assert_allclose(back, expected, atol=1e-6)


@pytest.mark.parametrize("below", ["file/m", "file/a/b/m"])
def test_a_path_below_a_file_names_the_file(tiny_model, tmp_path, below):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"file is a file, not a folder"):
        tiny_model.save_pretrained(tmp_path / below)
    with pytest.raises(FileNotFoundError, match="No model folder"):  # was a bare NotADirectoryError from listdir
        StaticModel.from_pretrained(tmp_path / below)
    assert sorted(os.listdir(tmp_path)) == ["file"] and (tmp_path / "file").read_text() == "x"


class _DiskFull:
    """A file whose first write puts half its data on disk, then fails as a full disk does."""

    def __init__(self, handle):
        self._handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()

    def write(self, data):
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._handle, name)


@pytest.mark.parametrize("fail_at", range(5))  # model.safetensors, tokenizer.json, config.json, modules.json, README
def test_a_full_disk_midway_leaves_the_old_folder_and_no_temporary(tiny_model, tiny_table, wordpiece_tokenizer,
                                                                   tmp_path, monkeypatch, fail_at):
    target = tmp_path / "m"
    tiny_model.save_pretrained(target)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    real_open, real_save = builtins.open, persistence.save_file
    opened = []

    def full_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and ".tmp-" in os.fspath(path):
            opened.append(path)
            if len(opened) > fail_at:  # the first: write_tensors creating model.safetensors (save_file writes it)
                return _DiskFull(handle)
        return handle

    def full_save(tensors, path, metadata=None):  # safetensors writes from Rust: half a file, then ENOSPC
        real_save(tensors, path, metadata=metadata)
        with real_open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtins, "open", full_open)
    if fail_at == 0:
        monkeypatch.setattr(persistence, "save_file", full_save)
    with pytest.raises(OSError, match="No space left"):
        StaticModel(tiny_table * 2, wordpiece_tokenizer).save_pretrained(target, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["m"]
    np.testing.assert_allclose(StaticModel.from_pretrained(target).encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-6)
