"""Task metrics on embeddings. Every score is returned ×100 (a perfect encoder scores 100)."""

from __future__ import annotations

import warnings

import numpy as np

from distill.correlation import spearman
from distill.neighbours import top_k_order
from static_model.pooling import l2_normalize

SEED = 42


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays (0 for a zero vector)."""
    a, b = l2_normalize(np.asarray(a, dtype=np.float32)), l2_normalize(np.asarray(b, dtype=np.float32))
    return np.einsum("ij,ij->i", a, b).astype(np.float64)


def sts_spearman(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> float:
    """STS and word similarity: Spearman correlation of cosine similarity with the gold scores, ×100."""
    return 100.0 * spearman(paired_cosine(emb1, emb2), gold)


def sts_pearson(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> float:
    """STS, second number: Pearson correlation of cosine similarity with the gold scores, ×100 (0 when either is
    constant, as ``sts_spearman``)."""
    cos, gold = paired_cosine(emb1, emb2), np.asarray(gold, dtype=np.float64)
    if cos.size < 2 or np.ptp(cos) == 0 or np.ptp(gold) == 0:
        return 0.0
    return 100.0 * float(np.corrcoef(cos, gold)[0, 1])


def pair_average_precision(emb1: np.ndarray, emb2: np.ndarray, labels: np.ndarray) -> float:
    """Pair classification: average precision of the cosine similarity as a score for label 1, ×100."""
    return cosine_average_precision(paired_cosine(emb1, emb2), labels)


def cosine_average_precision(cos: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (×100) of per-pair cosines as scores for label 1."""
    from sklearn.metrics import average_precision_score

    return 100.0 * float(average_precision_score(np.asarray(labels).astype(int), cos))


def classification_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                            max_iter: int = 1000, seed: int = SEED) -> float:
    """Logistic regression on the embeddings (train split), accuracy on the test split, ×100."""
    pred = classification_predictions(x_train, y_train, x_test, max_iter=max_iter, seed=seed)
    return 100.0 * float(np.mean(pred == np.asarray(y_test)))


def classification_predictions(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *,
                               max_iter: int = 1000, seed: int = SEED) -> np.ndarray:
    """The test labels predicted by ``classification_accuracy``'s logistic regression (per item, for resampling)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(np.asarray(x_train, dtype=np.float32), np.asarray(y_train))
    return clf.predict(np.asarray(x_test, dtype=np.float32))


def subsample_train(n: int, labels: np.ndarray, cap: int | None, seed: int = SEED) -> np.ndarray:
    """Indices of at most ``cap`` training examples, a fixed-seed random sample (all of them if n <= cap)."""
    if cap is None or n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=cap, replace=False))


def clustering_v_measure(emb: np.ndarray, labels: np.ndarray, *, batch_size: int = 500, seed: int = SEED,
                         runs: int = 5) -> float:
    """MiniBatchKMeans with k = number of distinct labels on the embeddings, V-measure against the labels, ×100,
    averaged over ``runs`` seeds (``seed``, ``seed + 1``, ...): one run moves by several points with the seed."""
    from sklearn.metrics import v_measure_score

    labels = np.asarray(labels)
    runs_pred = kmeans_assignments(emb, len(np.unique(labels)), batch_size=batch_size, seed=seed, runs=runs)
    return 100.0 * float(np.mean([v_measure_score(labels, pred) for pred in runs_pred]))


def kmeans_assignments(emb: np.ndarray, k: int, *, batch_size: int = 500, seed: int = SEED,
                       runs: int = 5) -> np.ndarray:
    """The (runs, n) cluster of each item in each of ``clustering_v_measure``'s MiniBatchKMeans runs."""
    from sklearn.cluster import MiniBatchKMeans

    x = np.asarray(emb, dtype=np.float32)
    return np.stack([MiniBatchKMeans(n_clusters=k, batch_size=batch_size, n_init="auto",
                                     random_state=seed + r).fit_predict(x) for r in range(runs)])


def trec_tie_rank(doc_ids: list[str]) -> np.ndarray:
    """Each document's place when the ids are sorted descending, the ``tie_rank`` that orders tied scores as
    trec_eval (and so pytrec_eval, MTEB's nDCG) does: score descending, then docno descending by ``strcmp``
    (``form_res_rels.c``, ``comp_sim_docno``; Python compares code points, which orders UTF-8 as ``strcmp``)."""
    order = sorted(range(len(doc_ids)), key=doc_ids.__getitem__, reverse=True)
    rank = np.empty(len(doc_ids), dtype=np.intp)
    rank[order] = np.arange(len(doc_ids))
    return rank


def ndcg_at_k(query_emb: np.ndarray, doc_emb: np.ndarray, query_ids: list[str], doc_ids: list[str],
              qrels: dict[str, dict[str, int]], k: int = 10, *, chunk: int = 256) -> float:
    """Retrieval: rank documents by cosine, nDCG@k (linear gain, log2 discount, ideal DCG from every positive
    judgement of the query, as trec_eval/BEIR) averaged over queries, ×100. Tied scores (duplicate documents) are
    ranked as trec_eval ranks them: by document id, descending (``trec_tie_rank``).

    Queries without a positive judgement are left out (trec_eval would score them 0; ``count_unscored_queries``
    says how many there are).
    """
    scores = ndcg_per_query(query_emb, doc_emb, query_ids, doc_ids, qrels, k, chunk=chunk)
    return 100.0 * float(np.mean(scores)) if scores.size else 0.0


def ndcg_per_query(query_emb: np.ndarray, doc_emb: np.ndarray, query_ids: list[str], doc_ids: list[str],
                   qrels: dict[str, dict[str, int]], k: int = 10, *, chunk: int = 256) -> np.ndarray:
    """``ndcg_at_k``'s nDCG@k (0-1) of each query with a positive judgement, in query order."""
    q, d = l2_normalize(np.asarray(query_emb, dtype=np.float32)), l2_normalize(np.asarray(doc_emb, dtype=np.float32))
    docs = np.asarray(doc_ids, dtype=object)
    # the ideal ranking is cut at ``k`` even when the corpus is smaller (trec_eval's ndcg_cut: the ideal DCG comes
    # from the judgements, relevant documents missing from the corpus included); the ranking itself at the corpus
    cut = k
    discounts = 1.0 / np.log2(np.arange(2, cut + 2))
    tie_rank = trec_tie_rank(list(doc_ids))
    scores = []
    for start in range(0, len(query_ids), chunk):
        top = top_k_order(q[start:start + chunk] @ d.T, k, tie_rank)
        for row, qid in enumerate(query_ids[start:start + chunk]):
            rel = {doc: r for doc, r in qrels.get(qid, {}).items() if r > 0}
            if not rel:
                continue
            cand = top[row]
            gains = np.asarray([rel.get(doc, 0) for doc in docs[cand]], dtype=np.float64)
            ideal = np.sort(np.asarray(list(rel.values()), dtype=np.float64))[::-1][:cut]
            dcg = float(np.sum(gains * discounts[: len(gains)]))
            idcg = float(np.sum(ideal * discounts[: len(ideal)]))
            scores.append(dcg / idcg if idcg > 0 else 0.0)
    return np.asarray(scores, dtype=np.float64)


def count_unscored_queries(query_ids: list[str], qrels: dict[str, dict[str, int]]) -> int:
    """How many of ``query_ids`` ``ndcg_at_k`` leaves out: those without a positive judgement."""
    return sum(not any(r > 0 for r in qrels.get(qid, {}).values()) for qid in query_ids)
