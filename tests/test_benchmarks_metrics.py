"""Each metric on tiny hand-made data with known answers: a perfect encoder scores 100, a random one near chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.quality import metrics

RNG = np.random.default_rng(0)


def _angle_pairs(gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose cosine is a strictly increasing function of ``gold``."""
    g = (gold - gold.min()) / (np.ptp(gold) or 1.0)
    theta = (1.0 - g) * (math.pi / 2)
    a = np.tile([1.0, 0.0], (len(g), 1))
    b = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return a.astype(np.float32), b.astype(np.float32)


def test_sts_perfect_inverse_and_random():
    gold = RNG.uniform(0, 5, size=300)
    a, b = _angle_pairs(gold)
    assert metrics.sts_spearman(a, b, gold) == pytest.approx(100.0)
    assert metrics.sts_spearman(a, b, -gold) == pytest.approx(-100.0)
    ra, rb = RNG.normal(size=(300, 16)), RNG.normal(size=(300, 16))
    assert abs(metrics.sts_spearman(ra, rb, gold)) < 15


def test_paired_cosine_zero_vector_is_zero():
    cos = metrics.paired_cosine(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [2.0, 0.0]]))
    assert cos.tolist() == pytest.approx([0.0, 1.0])


def test_pair_average_precision():
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0] * 25)
    a = np.tile([1.0, 0.0], (len(labels), 1))
    perfect_b = np.where(labels[:, None] == 1, [[1.0, 0.0]], [[0.0, 1.0]])
    assert metrics.pair_average_precision(a, perfect_b, labels) == pytest.approx(100.0)
    # known value: scores 0.9 (pos), 0.8 (neg), 0.7 (pos) -> AP = (1/1 + 2/3) / 2
    a3 = np.tile([1.0, 0.0], (3, 1))
    b3 = np.stack([[c, math.sqrt(1 - c * c)] for c in (0.9, 0.8, 0.7)])
    assert metrics.pair_average_precision(a3, b3, np.array([1, 0, 1])) == pytest.approx(100 * (1 + 2 / 3) / 2)
    ra, rb = RNG.normal(size=(2000, 8)), RNG.normal(size=(2000, 8))
    rl = RNG.integers(0, 2, size=2000)
    assert metrics.pair_average_precision(ra, rb, rl) == pytest.approx(100 * rl.mean(), abs=5)


def test_classification_accuracy_perfect_and_chance():
    k = 4
    y_train, y_test = np.repeat(np.arange(k), 30), np.repeat(np.arange(k), 20)
    onehot = np.eye(k, dtype=np.float32)
    x_train = onehot[y_train] + 0.05 * RNG.normal(size=(len(y_train), k))
    x_test = onehot[y_test] + 0.05 * RNG.normal(size=(len(y_test), k))
    assert metrics.classification_accuracy(x_train, y_train, x_test, y_test) == pytest.approx(100.0)
    r_train, r_test = RNG.normal(size=(len(y_train), 16)), RNG.normal(size=(len(y_test), 16))
    assert abs(metrics.classification_accuracy(r_train, y_train, r_test, y_test) - 100 / k) < 15


def test_subsample_train_is_fixed_and_capped():
    labels = np.arange(100) % 3
    a, b = metrics.subsample_train(100, labels, 10), metrics.subsample_train(100, labels, 10)
    assert len(a) == 10 and a.tolist() == b.tolist() and a.tolist() == sorted(set(a.tolist()))
    assert metrics.subsample_train(100, labels, None).tolist() == list(range(100))
    assert metrics.subsample_train(5, labels[:5], 10).tolist() == list(range(5))


def test_clustering_v_measure_perfect_and_random():
    labels = np.repeat(np.arange(5), 40)
    centers = 10.0 * np.eye(5, 8)
    x = centers[labels] + 0.1 * RNG.normal(size=(len(labels), 8))
    assert metrics.clustering_v_measure(x, labels) == pytest.approx(100.0)
    assert metrics.clustering_v_measure(RNG.normal(size=(len(labels), 8)), labels) < 15


def test_ndcg_perfect_known_and_random():
    docs = np.eye(6, dtype=np.float32)
    doc_ids = [f"d{i}" for i in range(6)]
    q = docs[[0, 3]]
    qrels = {"q0": {"d0": 1}, "q1": {"d3": 1}, "q_unjudged": {}}
    assert metrics.ndcg_at_k(q, docs, ["q0", "q1"], doc_ids, qrels) == pytest.approx(100.0)
    # the one relevant document at rank 2: nDCG = 1 / log2(3)
    q2 = np.array([[0.9, 0.1, 0, 0, 0, 0]], dtype=np.float32)
    assert metrics.ndcg_at_k(q2, docs, ["q"], doc_ids, {"q": {"d1": 1}}) == pytest.approx(100 / math.log2(3))
    # two relevant at ranks 1 and 3: DCG = 1 + 1/2, IDCG = 1 + 1/log2(3)
    q3 = np.array([[0.9, 0.5, 0.3, 0, 0, 0]], dtype=np.float32)
    expect = 100 * (1 + 0.5) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(q3, docs, ["q"], doc_ids, {"q": {"d0": 1, "d2": 1}}) == pytest.approx(expect)
    # a relevant document outside the top k scores 0
    assert metrics.ndcg_at_k(q2, docs, ["q"], doc_ids, {"q": {"d5": 1}}, k=2) == pytest.approx(0.0)
    # random encoder on a 1000-document corpus: near zero
    rd = RNG.normal(size=(1000, 32))
    rq = RNG.normal(size=(50, 32))
    ids = [f"d{i}" for i in range(1000)]
    rel = {f"q{i}": {f"d{i}": 1} for i in range(50)}
    assert metrics.ndcg_at_k(rq, rd, [f"q{i}" for i in range(50)], ids, rel) < 10


def test_cluster_seeds_first_runs_are_the_suites_score():
    from benchmarks.studies.cluster_seeds import seed_scores

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    emb = rng.normal(size=(120, 8)) * 0.8 + np.eye(8)[labels] * 3
    scores = seed_scores(emb, labels, 7, first_seed=metrics.SEED, batch_size=50)
    assert scores.shape == (7,) and (scores > 50).all()
    suite = metrics.clustering_v_measure(emb, labels, batch_size=50, seed=metrics.SEED, runs=5)
    assert scores[:5].mean() == pytest.approx(suite)
