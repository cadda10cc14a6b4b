"""distill's public stages: prepare -> embed_vocabulary -> assemble, and that distill() is exactly them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

from distill import (
    DistillPlan,
    Teacher,
    VocabularyVectors,
    assemble,
    distill,
    embed_vocabulary,
    prepare,
)
from distill import teacher as teacher_mod


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("wp"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    return path


@pytest.fixture(scope="module")
def shared(wp_dir):
    """One teacher, one plan and one vocabulary pass, as a study shares them between variants."""
    teacher = Teacher(wp_dir, device="cpu")
    plan = prepare(teacher)
    return teacher, plan, embed_vocabulary(plan, show_progress_bar=False)


def test_prepare_loads_no_weights_and_keeps_the_vocabulary_less_specials(wp_dir, monkeypatch):
    def boom(self):
        raise AssertionError("prepare loaded the teacher weights")

    monkeypatch.setattr(teacher_mod.Teacher, "model", property(boom))
    plan = prepare(str(wp_dir), vocabulary=["photosynthesis", "cat"])
    vocab = plan.teacher.tokenizer.get_vocab()
    dropped = {vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]")}
    assert plan.base_ids == tuple(sorted(set(vocab.values()) - dropped))
    assert plan.owns_teacher and plan.vocabulary_words == 2 and plan.counts is None
    assert plan.frequency_source == "zipf-id-rank"
    assert plan.added_words == ("photosynthesis",) and plan.vocabulary_stats["already_single_token"] == 1
    assert plan.kept_ids.tolist() == [*plan.base_ids, *plan.added_ids]
    assert plan.vocab_size == len(vocab) + 1 == plan.added_ids[0] + 1


def test_kept_ids_are_the_set_of_vocabulary_ids_on_a_tokenizer_with_holes(tmp_path):
    folder = make_wordpiece_teacher(tmp_path / "t")
    tok = json.loads((folder / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    holes = {vocab["cat"], vocab["dog"]}
    tok["model"]["vocab"] = {t: i for t, i in vocab.items() if i not in holes}  # ids 0..n-1 with two gaps
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    plan = prepare(str(folder))
    top = max(vocab.values())
    assert plan.teacher.tokenizer.get_vocab_size(with_added_tokens=True) == top + 1 - len(holes)  # range() misses ids
    assert top in plan.base_ids and not holes & set(plan.base_ids)
    assert plan.vocab_size == top + 1
    model = assemble(plan, embed_vocabulary(plan, show_progress_bar=False), pca_dims=8, dtype="float32")
    table = model.embedding_matrix()
    assert table.shape == (top + 1, 8)
    assert not table[sorted(holes)].any() and table[top].any()  # a hole gets a zero row, the top id its vector


def test_embed_vocabulary_rows_follow_the_plan_and_unload_frees_the_weights(wp_dir):
    plan = prepare(str(wp_dir), vocabulary=["photosynthesis"])
    mean = embed_vocabulary(plan, show_progress_bar=False)
    assert plan.teacher.loaded
    cls = embed_vocabulary(plan, pooling="cls", batch_size=3, unload=True, show_progress_bar=False)
    assert not plan.teacher.loaded
    assert mean.vectors.shape == cls.vectors.shape == (plan.kept_ids.size, plan.teacher.dim)
    assert (mean.pooling, mean.batch_size, cls.pooling, cls.batch_size) == ("mean", 256, "first", 3)
    assert mean.seconds is not None and not np.allclose(mean.vectors, cls.vectors)
    with pytest.raises(ValueError, match="pooling must be one of"):
        embed_vocabulary(plan, pooling="median")
    with pytest.raises(ValueError, match="batch_size"):
        embed_vocabulary(plan, batch_size=0)


@pytest.mark.parametrize(
    "settings",
    [
        dict(pca_dims=8),
        dict(pca_dims=None),
        dict(pca_dims=8, sif_coefficient=None, dtype="float32"),
        dict(pca_dims=16, sif_coefficient=3e-4, contrast=0.0),
        dict(pca_dims=8, dtype="int8"),
    ],
)
def test_assemble_with_variants_equals_distill_with_the_same_settings(wp_dir, shared, settings):
    teacher, plan, vectors = shared
    before = vectors.vectors.copy()
    staged = assemble(plan, vectors, **settings)
    assert np.array_equal(vectors.vectors, before)  # one pass serves every variant
    whole = distill(teacher, show_progress_bar=False, **settings)
    assert np.array_equal(staged.embedding_matrix(), whole.embedding_matrix())
    assert (staged.dtype, staged.max_length, staged.contrast) == (whole.dtype, whole.max_length, whole.contrast)
    a, b = staged.config["distill"], whole.config["distill"]
    assert a["parameters"] == b["parameters"] and a["explained_variance"] == b["explained_variance"]


def test_assemble_with_token_frequencies_equals_distill(wp_dir, shared, corpus):
    teacher, _, vectors = shared
    plan = prepare(teacher, token_frequencies=corpus)
    assert plan.counts is not None and plan.frequency_source == corpus.name
    for weight in (None, 1.0):
        staged = assemble(plan, vectors, pca_dims=8, sif_coefficient=3e-4, frequency_weight=weight)
        whole = distill(teacher, pca_dims=8, sif_coefficient=3e-4, token_frequencies=corpus, frequency_weight=weight,
                        show_progress_bar=False)
        assert np.array_equal(staged.embedding_matrix(), whole.embedding_matrix())
        assert staged.config["distill"]["parameters"]["frequency_weight"] == (0.25 if weight is None else 1.0)


def test_assemble_rejects_vectors_and_probabilities_of_another_plan(shared):
    _, plan, vectors = shared
    n = plan.kept_ids.size
    with pytest.raises(ValueError, match=f"the plan keeps {n} tokens"):
        assemble(plan, VocabularyVectors(vectors.vectors[:-1], "mean"), pca_dims=8)
    with pytest.raises(ValueError, match="probabilities has shape"):
        assemble(plan, vectors, pca_dims=8, probabilities=np.full(n + 1, 1.0 / (n + 1)))
    with pytest.raises(ValueError, match="frequency_weight applies"):
        assemble(plan, vectors, pca_dims=8, frequency_weight=0.5)
    with pytest.raises(ValueError, match="hidden size"):
        assemble(plan, vectors, pca_dims=64)


def test_assemble_with_given_probabilities_records_their_source(shared):
    _, plan, vectors = shared
    n = plan.kept_ids.size
    # (the common component's direction depends on p too: kept here, so only the SIF weights differ)
    uniform = assemble(plan, vectors, pca_dims=8, probabilities=np.full(n, 1.0 / n), probabilities_source="uniform",
                       remove_common_component=False)
    plain = assemble(plan, vectors, pca_dims=8, sif_coefficient=None, remove_common_component=False)
    assert uniform.config["distill"]["parameters"]["token_frequencies"] == "uniform"
    # equal p for every token scales every row by the same factor: the directions are those of no SIF at all
    a, b = uniform.embedding_matrix().astype(np.float64), plain.embedding_matrix().astype(np.float64)
    rows = np.linalg.norm(b, axis=1) > 0
    cos = (a[rows] * b[rows]).sum(1) / np.linalg.norm(a[rows], axis=1) / np.linalg.norm(b[rows], axis=1)
    assert cos.min() > 0.999


def test_teacher_owns_its_limits(wp_dir):
    teacher = Teacher(wp_dir)
    prefix, suffix = teacher.template
    assert [teacher.tokenizer.id_to_token(i) for i in prefix + suffix] == ["[CLS]", "[SEP]"]
    assert teacher.spec.max_seq_length == 64 and teacher.student_max_length == 62
    assert isinstance(prepare(teacher), DistillPlan) and not prepare(teacher).owns_teacher


def test_a_teacher_giving_nan_or_infinity_is_an_error_naming_it(wp_dir, monkeypatch):
    """The vocabulary pass used to turn NaN into 0 and infinity into 3.4e38, which reached the PCA unannounced."""
    plan = prepare(str(wp_dir))
    forward = Teacher.forward

    def broken(self, batch):
        hidden, mask, pooler = forward(self, batch)
        hidden = hidden.clone()
        hidden[0, 0, 0] = float("inf")
        return hidden, mask, pooler

    monkeypatch.setattr(Teacher, "forward", broken)
    with pytest.raises(ValueError, match=r"gave NaN or infinite vectors for \d+ of the vocabulary pass's") as info:
        embed_vocabulary(plan, show_progress_bar=False)
    assert "token ids [" in str(info.value) and "float32" in str(info.value)
