"""Vocabulary quantization: cluster the token rows with k-means and keep one row per cluster.

Each token keeps its own norm as a per-token weight and takes its cluster centre's direction, so a token's vector
is ``weights[t] * centres[token_mapping[t]]`` with ``|centres[c]| = 1`` and ``weights[t] = |row_t|``: its length
(which carries the SIF weight) is exact, only its direction moves to the centre's. The result is a
``static_model.StaticModel`` with a ``token_mapping``; its folder stores the centres, the mapping and the weights
(Model2Vec's layout: ``embeddings``, ``mapping``, ``weights``). scikit-learn runs here, at distill time only.
"""

from __future__ import annotations

import warnings

import numpy as np

from static_model import StaticModel
from static_model.model import CLUSTERS_KEY

DEFAULT_MAX_ITER = 25  # Lloyd iterations: on MiniLM's 30k x 256 rows the mean cosine to the centre stops moving by ~15


def quantize_vocabulary(
    model: StaticModel, n_clusters: int, *, seed: int = 0, max_iter: int = DEFAULT_MAX_ITER
) -> StaticModel:
    """A copy of ``model`` whose token rows are ``n_clusters`` unit-length k-means centres, one per cluster.

    k-means (scikit-learn ``KMeans``, random init from ``seed``, one init, at most ``max_iter`` Lloyd iterations)
    runs on the unit-length token rows, so clusters group directions; each token's weight is its row's norm.
    Zero rows (tokens the distill never embedded) keep a zero vector (weight 0, mapped to cluster 0). The copy keeps
    the model's storage dtype, pooling and settings; ``config["vocabulary_clusters"]`` records the parameters and
    the mean cosine between a token's row and its centre.

    :raises ValueError: ``n_clusters`` is not a positive integer, is above the number of non-zero rows, or the model
        already has a token mapping.
    """
    if not isinstance(model, StaticModel):
        raise TypeError(f"model must be a static_model.StaticModel, not {type(model).__name__}")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer; got {n_clusters!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    if model.token_mapping is not None:
        raise ValueError(f"the model is already vocabulary-quantized ({len(model.embeddings)} clusters); quantize the "
                         "unquantized model instead")
    rows = model.embedding_matrix()
    norms = np.linalg.norm(rows.astype(np.float64), axis=1)
    nonzero = np.flatnonzero(norms > 0)
    if n_clusters > len(nonzero):
        raise ValueError(f"n_clusters={n_clusters} is more than the model's {len(nonzero)} non-zero token rows")
    units = (rows[nonzero] / norms[nonzero, None]).astype(np.float32)
    labels, centres = _kmeans(units, int(n_clusters), int(seed), int(max_iter))
    mapping = np.zeros(len(rows), dtype=np.int32)
    mapping[nonzero] = labels
    weights = np.zeros(len(rows), dtype=np.float32)
    weights[nonzero] = norms[nonzero]
    cosines = np.einsum("ij,ij->i", units, centres[labels])
    record = {
        "clusters": int(n_clusters), "seed": int(seed), "max_iter": int(max_iter),
        "method": "k-means on unit-length rows (scikit-learn KMeans, random init, 1 init); unit centres; "
                  "weight = the token row's norm",
        "mean_cosine_to_centre": round(float(cosines.mean()), 4),
    }
    config = {k: v for k, v in model.config.items() if k not in ("dim", "vocab_size", "dtype")}
    config[CLUSTERS_KEY] = record
    quantized = StaticModel(centres, model.tokenizer, weights=weights, token_mapping=mapping, config=config,
                            normalize=model.normalize, max_length=model.max_length, contrast=model.contrast)
    quantized.cache_bytes = model.cache_bytes
    return quantized if model.dtype == "float32" else quantized.quantize(model.dtype)


def _kmeans(units: np.ndarray, n_clusters: int, seed: int, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """(cluster of each row, unit-length centres) of ``units``: each row goes to the centre nearest in direction (a
    centre whose members cancel out becomes a random row)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    kmeans = KMeans(n_clusters=n_clusters, init="random", n_init=1, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():  # max_iter is a deliberate cap; duplicate rows may leave fewer distinct points
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = kmeans.fit_predict(units)
    centres = kmeans.cluster_centers_.astype(np.float32)
    lengths = np.linalg.norm(centres, axis=1)
    empty = lengths == 0
    centres[empty] = units[np.random.default_rng(seed).integers(0, len(units), int(empty.sum()))]
    lengths[empty] = 1.0
    centres /= lengths[:, None]
    for lo in range(0, len(units), 4096):  # each row to the unit centre nearest in direction
        labels[lo : lo + 4096] = np.argmax(units[lo : lo + 4096] @ centres.T, axis=1)
    return labels.astype(np.int32), centres
