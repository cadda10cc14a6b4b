"""distill(): vocabulary pass, token order, added words, pooling, PCA/SIF, config, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers.teachers import SENTENCES, make_bpe_teacher, make_unigram_teacher, make_wordpiece_teacher

from distill import FrequencyFileError, Teacher, TeacherError, TeacherNotFoundError, distill
from distill import teacher as teacher_mod
from static_model import StaticModel

RAW = dict(pca_dims=None, sif_coefficient=None, remove_common_component=False, dtype="float32",
           show_progress_bar=False)


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("wp"))  # tokenizer.json pads to 128


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    return make_bpe_teacher(tmp_path_factory.mktemp("bpe"))


@pytest.fixture(scope="module")
def unigram_dir(tmp_path_factory):
    return make_unigram_teacher(tmp_path_factory.mktemp("unigram"))


def _forward(folder, ids: list[int]) -> torch.Tensor:
    """Last hidden state of the teacher for one id sequence (reference, straight transformers)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long))[0][0]


# --------------------------------------------------------------------------- the vocabulary pass


def test_rows_are_the_teacher_over_the_token_template(wp_dir):
    model = distill(str(wp_dir), **RAW)
    teacher = Teacher(wp_dir)
    vocab = teacher.tokenizer.get_vocab()
    assert model.tokenizer.get_vocab() == vocab  # the static model keeps the teacher's id order
    assert model.vocab_size == len(vocab) and model.dim == 32
    table = model.embedding_matrix()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    for tok in ("cat", "##ing", "a", "."):
        ref = _forward(wp_dir, [cls, vocab[tok], sep]).mean(0).numpy()
        np.testing.assert_allclose(table[vocab[tok]], ref, atol=1e-5)
    for tok in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"):
        assert not table[vocab[tok]].any(), tok  # dropped: zero row, ids stay aligned
    assert model.config["distill"]["zero_rows"] == 7


@pytest.mark.parametrize("pooling,recorded", [("token", "token"), ("cls", "first"), ("first", "first")])
def test_pooling_modes(wp_dir, pooling, recorded):
    model = distill(str(wp_dir), pooling=pooling, **RAW)
    vocab = model.tokenizer.get_vocab()
    hidden = _forward(wp_dir, [vocab["[CLS]"], vocab["dog"], vocab["[SEP]"]])
    ref = hidden[1] if pooling == "token" else hidden[0]
    np.testing.assert_allclose(model.embedding_matrix()[vocab["dog"]], ref.numpy(), atol=1e-5)
    assert model.config["pooling"] == recorded


def test_padded_and_unpadded_tokenizers_give_the_same_vectors(wp_dir, tmp_path):
    # all-MiniLM-L6-v2's tokenizer.json pads to 128; Model2Vec 0.10 averages those pad positions into
    # every custom-vocabulary word. Here the teacher tokenizer's padding must not matter.
    unpadded = tmp_path / "unpadded"
    shutil.copytree(wp_dir, unpadded)
    tok = json.loads((unpadded / "tokenizer.json").read_text())
    assert tok["padding"]["strategy"] == {"Fixed": 128}
    tok["padding"] = tok["truncation"] = None
    (unpadded / "tokenizer.json").write_text(json.dumps(tok))
    words = ["catdog", "playing", "walked", "horses"]
    a = distill(str(wp_dir), vocabulary=words, **RAW)
    b = distill(str(unpadded), vocabulary=words, **RAW)
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    np.testing.assert_array_equal(a.embedding_matrix(), b.embedding_matrix())
    # and an added word's vector is the teacher run over its word pieces, without any padding
    vocab = a.tokenizer.get_vocab()
    pieces = [vocab[p] for p in ("[CLS]", "cat", "##d", "##o", "##g", "[SEP]")]
    ref = _forward(wp_dir, pieces).mean(0).numpy()
    np.testing.assert_allclose(a.embedding_matrix()[vocab["catdog"]], ref, atol=1e-5)
    assert a.tokenizer.padding is None and a.tokenizer.truncation is None


def test_added_words_become_whole_tokens_wordpiece(wp_dir):
    words = ["catdog", "Playing", "playing", "hello", "new york", "don't"]
    model = distill(str(wp_dir), vocabulary=words, **RAW)
    stats = model.config["distill"]["added_words"]
    assert stats == {"requested": 6, "added": 2, "already_single_token": 1, "split_by_pretokenizer": 2, "duplicate": 1}
    tokens = model.tokenizer.encode("the catdog is Playing", add_special_tokens=False).tokens
    assert tokens == ["the", "catdog", "is", "playing"]
    # longer unseen words still fall back to pieces
    assert model.tokenizer.encode("catdogs", add_special_tokens=False).tokens == ["catdog", "##s"]
    emb = model.encode(["catdog", "playing"])
    assert np.isfinite(emb).all() and (np.abs(emb).sum(1) > 0).all()


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_bpe_and_unigram_teachers(kind, bpe_dir, unigram_dir):
    folder = bpe_dir if kind == "bpe" else unigram_dir
    teacher = Teacher(folder)
    model = distill(str(folder), pca_dims=8, vocabulary=["catdog", "horses"], show_progress_bar=False)
    assert model.dim == 8 and model.dtype == "float16"
    base = teacher.tokenizer.get_vocab(with_added_tokens=True)
    out = model.tokenizer.get_vocab(with_added_tokens=True)
    assert {k: v for k, v in out.items() if k in base} == base  # teacher ids unchanged
    assert model.config["distill"]["added_words"]["added"] >= 1
    ids = model.tokenizer.encode("the catdog sat", add_special_tokens=False).ids
    assert model.tokenizer.token_to_id("catdog") in ids
    # an added word only matches as a whole word
    assert model.tokenizer.token_to_id("catdog") not in model.tokenizer.encode("xcatdogx", add_special_tokens=False).ids
    special = [i for i, t in teacher.tokenizer.get_added_tokens_decoder().items() if t.special]
    assert special and not model.embedding_matrix()[special].any()
    emb = model.encode(SENTENCES)
    assert emb.shape == (len(SENTENCES), 8) and np.isfinite(emb).all()


def test_bpe_template_is_s_token_slash_s(bpe_dir):
    model = distill(str(bpe_dir), **RAW)
    vocab = model.tokenizer.get_vocab()
    tok = "Ġthe"
    ref = _forward(bpe_dir, [vocab["<s>"], vocab[tok], vocab["</s>"]]).mean(0).numpy()
    np.testing.assert_allclose(model.embedding_matrix()[vocab[tok]], ref, atol=1e-5)


# --------------------------------------------------------------------------- post-processing


def test_pca_and_explained_variance(wp_dir):
    raw = distill(str(wp_dir), **RAW)
    model = distill(str(wp_dir), pca_dims=8, sif_coefficient=None, dtype="float32", remove_common_component=False,
                    show_progress_bar=False)
    info = model.config["distill"]
    assert model.dim == 8 and 0 < info["explained_variance"] < 1
    kept = np.abs(raw.embedding_matrix()).sum(1) > 0
    x = raw.embedding_matrix()[kept].astype(np.float64)
    from sklearn.decomposition import PCA

    sk = PCA(8).fit(x)
    assert info["explained_variance"] == pytest.approx(sk.explained_variance_ratio_.sum(), abs=1e-5)
    ours = model.embedding_matrix()[kept]
    ref = sk.transform(x)
    for j in range(8):  # equal up to each component's sign
        assert min(np.abs(ours[:, j] - ref[:, j]).max(), np.abs(ours[:, j] + ref[:, j]).max()) < 1e-4
    assert raw.config["distill"]["explained_variance"] == 1.0 and raw.dim == 32


def test_sif_weights_from_token_frequencies(wp_dir):
    raw = distill(str(wp_dir), **RAW)
    counts = {"the": 1000.0, "cat": 10.0, "playing": 5.0}
    a = 1e-2
    weighted = distill(str(wp_dir), pca_dims=None, sif_coefficient=a, token_frequencies=counts, frequency_weight=1.0,
                       remove_common_component=False,
                       dtype="float32", show_progress_bar=False)
    vocab = raw.tokenizer.get_vocab()
    kept = np.abs(raw.embedding_matrix()).sum(1) > 0
    # piece counts: the=1000, cat=10, play=5, ##ing=5; unseen kept tokens get half the smallest p
    total = 1020.0
    p_min = 5.0 / total
    n_unseen = kept.sum() - 4
    norm = 1.0 + n_unseen * p_min / 2
    for tok, c in (("the", 1000.0), ("cat", 10.0), ("##ing", 5.0), ("dog", None)):
        p = (c / total if c else p_min / 2) / norm
        ratio = weighted.embedding_matrix()[vocab[tok]] / raw.embedding_matrix()[vocab[tok]]
        np.testing.assert_allclose(ratio, a / (a + p), rtol=1e-4)
    assert weighted.config["distill"]["parameters"]["token_frequencies"] == "mapping"
    assert weighted.config["distill"]["parameters"]["frequency_weight"] == 1.0


def test_token_frequencies_are_pooled_with_zipf_by_default(wp_dir):
    """Without frequency_weight, p is Zipf over ids^0.75 x the counts' p^0.25, renormalized."""
    raw = distill(str(wp_dir), **RAW)
    counts = {"the": 1000.0, "cat": 10.0, "playing": 5.0}
    a = 1e-2
    pooled = distill(str(wp_dir), pca_dims=None, sif_coefficient=a, token_frequencies=counts, dtype="float32",
                     remove_common_component=False,
                     show_progress_bar=False)
    kept = np.flatnonzero(np.abs(raw.embedding_matrix()).sum(1) > 0)
    vocab = raw.tokenizer.get_vocab()
    inv = 1.0 / np.arange(2, kept.size + 2)
    zipf = inv / inv.sum()
    c = np.zeros(kept.size)
    for tok, n in (("the", 1000.0), ("cat", 10.0), ("play", 5.0), ("##ing", 5.0)):
        c[np.searchsorted(kept, vocab[tok])] = n
    q = np.where(c > 0, c, c[c > 0].min() / 2) / c.sum()
    q /= q.sum()
    p = zipf ** 0.75 * q ** 0.25
    p /= p.sum()
    ratio = pooled.embedding_matrix()[kept, 0] / raw.embedding_matrix()[kept, 0]
    np.testing.assert_allclose(ratio, a / (a + p), rtol=1e-4)
    assert pooled.config["distill"]["parameters"]["frequency_weight"] == 0.25
    # 'the' is frequent by its counts but early in id order: pooled, it weighs less than under Zipf alone
    the = np.searchsorted(kept, vocab["the"])
    assert a / (a + p[the]) < a / (a + zipf[the])


def test_default_sif_is_zipf_over_id_rank(wp_dir):
    raw = distill(str(wp_dir), **RAW)
    model = distill(str(wp_dir), pca_dims=None, sif_coefficient=1e-3, dtype="float32", remove_common_component=False,
                    show_progress_bar=False)
    kept = np.flatnonzero(np.abs(raw.embedding_matrix()).sum(1) > 0)
    inv = 1.0 / np.arange(2, kept.size + 2)
    p = inv / inv.sum()
    ratio = model.embedding_matrix()[kept, 0] / raw.embedding_matrix()[kept, 0]
    np.testing.assert_allclose(ratio, 1e-3 / (1e-3 + p), rtol=1e-4)
    assert model.config["distill"]["parameters"]["token_frequencies"] == "zipf-id-rank"


# --------------------------------------------------------------------------- config, dtype, round trip


def test_config_records_parameters_teacher_and_version(wp_dir, tmp_path):
    model = distill(str(wp_dir), pca_dims=16, show_progress_bar=False)
    assert model.dtype == "float16" and model.normalize is True
    model.save_pretrained(tmp_path / "out")
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    info = cfg["distill"]
    assert cfg["teacher"] == cfg["tokenizer_name"] == wp_dir.name  # a local teacher: its base name, not its path
    assert "teacher_path" not in info and str(wp_dir) not in json.dumps(cfg)
    assert info["parameters"] == {
        "teacher": wp_dir.name, "pca_dims": 16, "sif_coefficient": 1e-4, "vocabulary": None,
        "token_frequencies": "zipf-id-rank", "frequency_weight": None, "device": "cpu", "batch_size": 256,
        "pooling": "mean",
        "dtype": "float16", "contrast": 0.0, "remove_common_component": True, "drop_components": "auto",
        "dropped_components": 0,
    }
    assert cfg["contrast"] == 0.0 and StaticModel.from_pretrained(tmp_path / "out").contrast == 0.0
    assert info["toolkit_version"] and info["teacher_pooling"] == "mean" and info["teacher_normalize"] is True
    assert {"torch", "transformers", "tokenizers"} <= set(info["versions"])
    loaded = StaticModel.from_pretrained(tmp_path / "out")
    np.testing.assert_allclose(loaded.encode(SENTENCES), model.encode(SENTENCES), atol=1e-6)


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_model_reads_512_tokens_whatever_the_teacher_window(kind, wp_dir, bpe_dir, tmp_path):
    from distill.assemble import DEFAULT_MAX_LENGTH

    folder = {"wordpiece": wp_dir, "bpe": bpe_dir}[kind]
    model = distill(str(folder), pca_dims=8, show_progress_bar=False)
    teacher = Teacher(folder)
    assert teacher.max_length == 64 and model.max_length == DEFAULT_MAX_LENGTH == 512
    long_text = " ".join(["cat dog sat on the mat"] * 200)  # 1200 words
    assert len(model.tokenize(long_text)[0]) == 512 and len(teacher.tokenize([long_text])[0]) == 64
    assert len(model.tokenize(long_text, max_length=62)[0]) == 62  # the limit stays per call
    model.save_pretrained(tmp_path / kind)
    assert StaticModel.from_pretrained(tmp_path / kind).max_length == 512


def test_int8_dtype(wp_dir):
    model = distill(str(wp_dir), pca_dims=16, dtype="int8", show_progress_bar=False)
    ref = distill(str(wp_dir), pca_dims=16, dtype="float32", show_progress_bar=False)
    assert model.dtype == "int8"
    cos = (model.encode(SENTENCES) * ref.encode(SENTENCES)).sum(1)
    assert cos.min() > 0.99


def test_a_teacher_object_is_accepted_and_kept(wp_dir):
    teacher = Teacher(wp_dir)
    model = distill(teacher, pca_dims=8, show_progress_bar=False)
    assert model.dim == 8 and teacher.loaded  # a teacher passed in is not unloaded


# --------------------------------------------------------------------------- bad input, before heavy work


@pytest.fixture
def no_heavy_work(monkeypatch):
    def boom(self):
        raise AssertionError("the teacher weights were loaded before the input was checked")

    monkeypatch.setattr(teacher_mod.Teacher, "model", property(boom))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(pca_dims=33), ValueError, "hidden size"),
        (dict(pca_dims=0), ValueError, "pca_dims"),
        (dict(sif_coefficient=1.5), ValueError, "sif_coefficient"),
        (dict(pooling="median"), ValueError, "pooling"),
        (dict(pca_dims=1.5), ValueError, "pca_dims"),
        (dict(pca_dims="all"), ValueError, "pca_dims"),
        (dict(dtype="bfloat16"), ValueError, "dtype"),
        (dict(vocabulary=[]), ValueError, "vocabulary is empty"),
        (dict(vocabulary=["  ", ""]), ValueError, "vocabulary is empty"),
        (dict(vocabulary=["cat", 3]), TypeError, "vocabulary item 1 is int"),
        (dict(vocabulary=b"cat"), TypeError, "not bytes"),
        (dict(token_frequencies="/nonexistent/freqs.tsv"), FrequencyFileError, "does not exist"),
        (dict(frequency_weight=0.5), ValueError, "frequency_weight applies to token_frequencies"),
        (dict(token_frequencies={"cat": 3.0}, frequency_weight=0.0), ValueError,
         r"frequency_weight must be in \(0, 1\]"),
        (dict(token_frequencies={"cat": 3.0}, frequency_weight=1.5), ValueError,
         r"frequency_weight must be in \(0, 1\]"),
        (dict(token_frequencies={"cat": 3.0}, frequency_weight="high"), TypeError, "frequency_weight must be a number"),
        (dict(contrast=-1.0), ValueError, "contrast"),
        (dict(contrast="high"), TypeError, "contrast"),
    ],
)
def test_bad_input_fails_before_heavy_work(wp_dir, no_heavy_work, kwargs, error, match):
    with pytest.raises(error, match=match):
        distill(str(wp_dir), show_progress_bar=False, **kwargs)


def test_pca_dims_larger_than_vocabulary(tmp_path, no_heavy_work):
    folder = make_wordpiece_teacher(tmp_path / "t")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["hidden_size"] == 32
    tok = json.loads((folder / "tokenizer.json").read_text())
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##a", "##b"]
    tok["model"]["vocab"] = {t: i for i, t in enumerate(keep)}
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ValueError, match=r"larger than the vocabulary \(5 tokens\)"):
        distill(str(folder), pca_dims=8, show_progress_bar=False)


def test_unknown_teacher_fails_fast(monkeypatch, no_heavy_work):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TeacherNotFoundError, match="Unknown teacher"):
        distill("nobody/no-such-teacher", show_progress_bar=False)


def test_wrong_frequency_file_fails_fast(wp_dir, tmp_path, no_heavy_work):
    bad = tmp_path / "freqs.tsv"
    bad.write_text("word\tfrequency\nthe\tlots\n")
    with pytest.raises(FrequencyFileError, match="word<TAB>frequency"):
        distill(str(wp_dir), token_frequencies=bad, show_progress_bar=False)


def test_teacher_without_fast_tokenizer_fails_fast(wp_dir, tmp_path, no_heavy_work):
    folder = tmp_path / "slow"
    shutil.copytree(wp_dir, folder)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    with pytest.raises(TeacherError, match="no fast tokenizer"):
        distill(str(folder), show_progress_bar=False)


def test_pca_keep_mean_keeps_the_inputs_cosines():
    """``keep_mean=True`` projects ``x`` itself (not ``x - mean``): with every dim kept, the cosines between the
    outputs are the inputs' (a rotation); plain PCA centres them."""
    from distill.pca import pca

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 6)) + 3.0).astype(np.float32)
    kept, ratio = pca(x, 6, keep_mean=True)
    centred, ratio_c = pca(x, 6)
    assert ratio == ratio_c == pytest.approx(1.0)

    def cos(a):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        return a @ a.T

    np.testing.assert_allclose(cos(kept), cos(x), atol=1e-5)
    np.testing.assert_allclose(kept - centred, np.broadcast_to(kept.mean(0) - centred.mean(0), kept.shape), atol=1e-5)
    assert np.abs(centred.mean(0)).max() < 1e-4 and np.abs(kept.mean(0)).max() > 1.0


def test_read_vocabulary_file_takes_the_first_column_skips_a_header_and_stops_at_the_limit(tmp_path):
    from distill import read_vocabulary_file

    tsv = tmp_path / "words.tsv"
    tsv.write_text("word\tfrequency\tzipf\nthe\t0.05\t7.7\n\nguitar\t0.001\t6.0\nfootball\t0.001\t6.0\n")
    assert read_vocabulary_file(tsv) == ["the", "guitar", "football"]
    assert read_vocabulary_file(tsv, limit=2) == ["the", "guitar"]
    plain = tmp_path / "words.txt"
    plain.write_text("zebra\n  quantum  \n")
    assert read_vocabulary_file(plain) == ["zebra", "quantum"]
    with pytest.raises(ValueError, match="does not exist"):
        read_vocabulary_file(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is a folder"):
        read_vocabulary_file(tmp_path)
