"""ONNX export reliability: the graph leaves out every token a front end adds (also special tokens a tokenizer's
post-processor adds without registering them as special), non-WordPiece tokenizers and quantized / weighted tables
give ``encode``'s vectors on any text, a model too large for one ONNX file is refused up front, and the command line
answers a path the OS refuses, a full disk and a Ctrl-C with one line, never a traceback or a hidden half-written
folder."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers.onnx_graph import front_end_tokenizer, graph_feeds, run_graph, session
from helpers.paths import REPO
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE, Unigram, WordPiece

import static_model.onnx as onnx_export
from static_model import StaticModel
from static_model.interrupts import EXIT_INTERRUPTED
from static_model.onnx import export_onnx, main

TEXTS = ["the cat sat on the mat", "", "zzz qqq", "hello world", "cat dog mat " * 20, "Hello CAFé!", "😀 日本"]


def _table(tokenizer: Tokenizer, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(tokenizer.get_vocab_size(), 8)).astype(np.float32)


# --------------------------------------------------------------------------- special tokens a post-processor adds


def _unregistered_wordpiece(post_processor) -> Tokenizer:
    """A BERT-style tokenizer whose [CLS]/[SEP] are vocabulary entries the post-processor adds, never registered as
    special added tokens (a tokenizer built in code, without ``add_special_tokens``)."""
    tokenizer = Tokenizer(WordPiece({t: i for i, t in enumerate(SPECIAL + WORDS)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = post_processor
    return tokenizer


@pytest.mark.parametrize("post_processor", [
    processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                  special_tokens=[("[CLS]", 2), ("[SEP]", 3)]),
    processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2)),
    processors.Sequence([processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                 ("[SEP]", 3)])]),
], ids=["template", "bert", "sequence"])
@pytest.mark.parametrize("contrast", [0.0, 1.0])
def test_tokens_the_post_processor_adds_are_left_out_even_when_not_marked_special(tmp_path, post_processor,
                                                                                   contrast):
    """The graph left out only the added tokens marked special: with a tokenizer whose post-processor adds [CLS]
    and [SEP] without registering them, a front end's special tokens were averaged in, every vector was wrong
    (max error 1.7 unnormalized) and an empty text gave [CLS]+[SEP]'s mean instead of zeros."""
    tokenizer = _unregistered_wordpiece(post_processor)
    assert not any(t.special for t in tokenizer.get_added_tokens_decoder().values())
    assert tokenizer.encode("cat").ids == [2, 7, 3]  # what a front end feeds the graph
    model = StaticModel(_table(tokenizer), tokenizer, normalize=False, contrast=contrast, max_length=5)
    folder = export_onnx(model, tmp_path / "onnx")
    expected = model.encode(TEXTS)
    for special in (True, False):
        got = run_graph(folder, TEXTS, special_tokens=special)["sentence_embedding"]
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    assert not run_graph(folder, [""])["sentence_embedding"].any()


# --------------------------------------------------------------------------- other tokenizers, other tables

_CORPUS = ["the cat sat on the mat", "hello world", "a dog runs fast", "café 日本 😀"] * 10


def _byte_level_bpe() -> Tokenizer:
    """RoBERTa-style: byte-level BPE (no unknown token), <s> ... </s> added by RobertaProcessing."""
    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.train_from_iterator(_CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return tokenizer


def _unigram() -> Tokenizer:
    """SentencePiece-style Unigram with an unknown token, special tokens appended at the end."""
    tokenizer = Tokenizer(Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(_CORPUS, trainers.UnigramTrainer(
        vocab_size=60, special_tokens=["<pad>", "<unk>", "<cls>", "<sep>"], unk_token="<unk>", show_progress=False))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A <sep> <cls>", special_tokens=[("<cls>", tokenizer.token_to_id("<cls>")),
                                                 ("<sep>", tokenizer.token_to_id("<sep>"))])
    return tokenizer


def _quantized_weighted_half() -> StaticModel:
    """Vocabulary quantization (6 shared float16 rows), signed per-token weights, contrast pooling, max_length 4."""
    tokenizer = make_wordpiece_tokenizer()
    rng = np.random.default_rng(5)
    vocab = tokenizer.get_vocab_size()
    return StaticModel(rng.normal(size=(6, 8)).astype(np.float16), tokenizer,
                       weights=rng.uniform(-2, 2, size=vocab).astype(np.float32),
                       token_mapping=rng.integers(0, 6, size=vocab), normalize=True, contrast=0.7, max_length=4)


@pytest.fixture(scope="module")
def exported_models(tmp_path_factory):
    """(model, exported tokenizer with padding, session) for models the other ONNX tests do not export."""
    bpe, unigram = _byte_level_bpe(), _unigram()
    models = [StaticModel(_table(bpe, 1), bpe, normalize=False, contrast=1.0, max_length=6),
              StaticModel(_table(unigram, 2), unigram, normalize=True, max_length=5),
              _quantized_weighted_half(),
              _quantized_weighted_half().quantize("int8")]
    out = []
    for model in models:
        folder = export_onnx(model, tmp_path_factory.mktemp("onnx") / "export")
        out.append((model, front_end_tokenizer(folder, "<pad>"), session(folder)))
    return out


_PIECES = ["the ", "cat ", "dog", " ", "hello", "world", "café", "日本", "😀", "zzz", "Q", ".", "!", "\t", "e\u0301"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.lists(st.sampled_from(_PIECES), max_size=16).map("".join)
                      | st.text(st.characters(blacklist_categories=["Cs"]), max_size=30), min_size=1, max_size=5),
       special=st.booleans())
def test_graph_gives_encodes_vectors_for_other_tokenizers_and_tables(exported_models, texts, special):
    for model, tokenizer, runner in exported_models:
        special_ids = set(model.tokenizer.get_added_tokens_decoder())
        kept = [t for t in texts if not special_ids & set(tokenizer.encode(t, add_special_tokens=False).ids)]
        if not kept:  # a text that spells out a special token: the documented difference
            continue
        got = runner.run(["sentence_embedding"], graph_feeds(tokenizer, kept, special_tokens=special))[0]
        np.testing.assert_allclose(got, model.encode(kept), atol=2e-5, rtol=1e-4)


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def model_folder(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _one_error_line(err: str, *needles: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def test_cli_a_name_too_long_for_the_file_system_is_an_error_line(model_folder, tmp_path):
    """A path the OS refuses with an errno the handler did not list (ENAMETOOLONG) ended in a traceback, status 1."""
    long = "x" * 300  # past NAME_MAX (255)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args, needle in (([str(model_folder), str(tmp_path / long)], "output"),
                         ([str(tmp_path / long), str(tmp_path / "out")], "model")):
        done = subprocess.run([sys.executable, "-m", "static_model.onnx", *args], capture_output=True, text=True,
                              env=env)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        _one_error_line(done.stderr, needle, "name too long")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_cli_an_os_error_while_writing_is_one_line_naming_the_output(model_folder, tmp_path, monkeypatch, capsys):
    """A full disk (or a read-only file system) while the export is written: one line naming the output folder (not
    only the hidden staging folder), status 1 for a full disk (not bad input), 2 for a read-only place; nothing
    left behind."""
    for code, status in ((errno.ENOSPC, 1), (errno.EROFS, 2)):
        def refuse(path, data, code=code):
            raise OSError(code, os.strerror(code), str(path))

        monkeypatch.setattr(onnx_export, "_write_file", refuse)
        assert main([str(model_folder), str(tmp_path / "out")]) == status
        line = _one_error_line(capsys.readouterr().err, "output", str(tmp_path / "out"), os.strerror(code))
        assert "Traceback" not in line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


SLOW_FSYNC = """
import os, time
_fsync = os.fsync
def slow_fsync(fd):  # the export's first fsync (model.onnx) waits here for the test's Ctrl-C
    time.sleep(60)
    return _fsync(fd)
os.fsync = slow_fsync
"""


def test_cli_ctrl_c_mid_export_leaves_no_staging_folder(model_folder, tmp_path):
    """``python -m static_model.onnx`` ended a Ctrl-C with ``os._exit`` (static_model's start-up handler was never
    handed back to Python), so the hidden ``.out.tmp-*`` staging folder and its half-written model.onnx stayed."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_FSYNC, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO)]))
    process = subprocess.Popen([sys.executable, "-m", "static_model.onnx", str(model_folder), str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.tmp-*/model.onnx")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED, err
    assert err.strip() == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "site"]  # no .out.tmp-*, no out


# --------------------------------------------------------------------------- a model too large for one ONNX file


def test_an_export_without_overwrite_never_replaces_one_written_meanwhile(tiny_model, tmp_path, monkeypatch):
    """Another export filled the new folder after this one's last check and before its swap: this export replaced
    it without overwrite=True. It is now a FileExistsError, and the other export is left as it is."""
    target = tmp_path / "onnx"
    real_kind = onnx_export._target_kind
    calls = []

    def kind_then_another_export(folder, overwrite):
        kind = real_kind(folder, overwrite)
        calls.append(kind)
        if len(calls) == 2:  # the check just before the swap: another process exports right after it
            export_onnx(tiny_model.truncate_dims(4), folder)
        return kind

    monkeypatch.setattr(onnx_export, "_target_kind", kind_then_another_export)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(tiny_model, target)
    monkeypatch.undo()
    assert session(target).get_outputs()[0].shape[-1] == 4  # the other export, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


def test_a_model_past_onnx_2gb_limit_is_refused_up_front(tmp_path):
    """A 1.1 GB float16 model (its graph then held float32 rows: 2.16 GB) was built for 20 s and 7 GB of memory, then
    failed with protobuf's bare ``EncodeError: Failed to serialize proto`` (a traceback from the command line).
    The graph now keeps float16 rows, so this table is twice as wide. It is zeros (no memory is touched until
    read)."""
    tokenizer = make_wordpiece_tokenizer()
    table = np.zeros((tokenizer.get_vocab_size(), 22_000_000), dtype=np.float16)  # 49 x 22M x 2 B > 2 GiB
    model = StaticModel(table, tokenizer, normalize=True)
    with pytest.raises(ValueError, match=r"would hold 2\.16 GB .* over the 2\.15 GB one ONNX file can hold"):
        export_onnx(model, tmp_path / "onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_size_check_counts_a_quantized_table_in_its_dtype():
    """The graph keeps a float16 or int8 table in its dtype, yet the size check counted float32 rows: the 1.08 GB
    float16 model above (2.16 GB as float32) was refused though its graph fits in one ONNX file."""
    tokenizer = make_wordpiece_tokenizer()
    table = np.zeros((tokenizer.get_vocab_size(), 11_000_000), dtype=np.float16)  # 49 x 11M x 2 B < 2 GiB
    onnx_export._check_graph_size(StaticModel(table, tokenizer, normalize=True))  # no error


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_a_text_of_zero_rows_gives_zeros_with_contrast(tmp_path, dtype):
    """Contrast pooling divided each dot product by max(|row|, 1e-30) * max(|sum|, 1e-30): for a text whose rows are
    all zero that is 1e-60, zero in float32, and 0 / 0 made the graph's vector NaN where ``encode`` gives zeros. A
    distill leaves special and unembedded tokens zero rows, so with contrast an empty text (its [CLS] and [SEP] rows
    zero, though left out) or one of unknown tokens gave NaN (2 of 2,000 texts on the MiniLM distill)."""
    tokenizer = make_wordpiece_tokenizer()
    table = _table(tokenizer)
    for token in ("[CLS]", "[SEP]", "[UNK]", "cat", "dog"):
        table[tokenizer.token_to_id(token)] = 0.0
    texts = ["cat", "cat dog", "", "zzz", "cat the", "the"]
    for normalize in (True, False):
        model = StaticModel(table, tokenizer, normalize=normalize, contrast=1.0).quantize(dtype)
        folder = export_onnx(model, tmp_path / f"onnx{normalize}")
        for special in (True, False):
            got = run_graph(folder, texts, special_tokens=special)["sentence_embedding"]
            np.testing.assert_allclose(got, model.encode(texts), atol=2e-5, rtol=1e-4)
            assert not got[:4].any()
