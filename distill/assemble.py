"""The last stage of a distill (``assemble``): PCA and SIF weights over the vocabulary pass's vectors, the output
table and the ``StaticModel`` with its config."""

from __future__ import annotations

import datetime as _dt
import platform
import time

import numpy as np

from distill import frequencies as freq
from distill.common_component import common_direction, drop_top_components, remove_component, top_components_rule
from distill.embed import VocabularyVectors
from distill.errors import SettingError
from distill.pca import DEFAULT_PCA_DIMS, PCADims, check_pca_dims, pca
from distill.plan import DistillPlan
from distill.resolve import revision_to_record
from distill.vocabulary import DEFAULT_DROP_PATTERN
from static_model import StaticModel
from static_model.quantization import DTYPES

# The pooling contrast written into distilled models: 0, the plain mean, which is also what Model2Vec and
# sentence-transformers compute on the same folder. Contrast pooling (c = 1) is opt-in (--contrast 1): under the
# selection protocol on all 20 dev+test splits it won broadly for MiniLM (9 wins, 0 losses) but not for mpnet
# (4 wins, 2 losses on STS Benchmark, 14 ties; the wins are SciFact, TREC and StackOverflow), on a separate
# held-out evaluation it added +0.09 on average with -3.3 on one STS set, and it costs 17-40% of encode throughput
# (benchmarks/results/defaults.md).
DEFAULT_CONTRAST = 0.0
# Tokens a distilled model reads of a text (written as config.json's max_length; per call: encode(max_length=...)):
# 512, whatever the teacher's window. A static model's cost is linear in its input and it has no position limit,
# so the teacher's window is no reason to cut; 512 keeps a bound on one text's cost. On every dev and test split
# 512 against the teacher's 254 is 0 wins, 0 losses, 20 ties (only SciFact's documents are longer), on the
# held-out movie-review set it read +5.0 (benchmarks/results/defaults.md).
DEFAULT_MAX_LENGTH = 512
# SIF's common-component removal (distill.common_component): the direction of the mean sentence vector under the
# frequency model of the SIF weights is projected out of every row. Under the selection protocol (all 21 dev+test
# splits): 11 wins, 0 losses, 10 ties for MiniLM, 3 / 1 / 17 for mpnet; free at encode time and the same vectors in
# every loader (benchmarks/results/defaults.md, section 8).
DEFAULT_REMOVE_COMMON_COMPONENT = True
# All-but-the-top (distill.common_component.drop_top_components): the top principal directions of the token vectors
# dropped before the SIF weights, as many as the published rule says ("auto": round(dims / 100), 4 for MiniLM, 8 for
# mpnet). On top of the removal above: 10 wins, 0 losses, 11 ties for MiniLM, 11 / 1 / 9 for mpnet
# (benchmarks/results/defaults.md, section 8).
DEFAULT_DROP_COMPONENTS = "auto"


def toolkit_version() -> str:
    """The installed ``static-embeddings`` version (recorded in every distilled model's config)."""
    try:
        import importlib.metadata as md

        return md.version("static-embeddings")
    except Exception:
        return "0.1.0"


def check_assembly(*, pca_dims: PCADims, sif_coefficient: float | None, dtype: str, contrast: float,
                   remove_common_component: bool = DEFAULT_REMOVE_COMMON_COMPONENT,
                   drop_components: int | str = DEFAULT_DROP_COMPONENTS) -> None:
    """A ``ValueError`` (or ``TypeError``) naming the argument unless each is one ``assemble`` takes."""
    from static_model.model import check_contrast

    check_contrast(contrast)
    if not isinstance(remove_common_component, (bool, np.bool_)):
        raise TypeError(f"remove_common_component must be True or False, got {remove_common_component!r}.")
    if drop_components != "auto" and (not isinstance(drop_components, (int, np.integer))
                                      or isinstance(drop_components, bool) or drop_components < 0):
        raise ValueError(f"drop_components must be 'auto' or an int >= 0, got {drop_components!r}.")
    check_pca_dims(pca_dims)
    if sif_coefficient is not None and not (0 < float(sif_coefficient) < 1):
        raise SettingError("sif_coefficient", f"sif_coefficient must be in (0, 1) or None, got {sif_coefficient!r}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}.")


def assemble(
    plan: DistillPlan,
    vectors: VocabularyVectors,
    *,
    pca_dims: PCADims = DEFAULT_PCA_DIMS,
    sif_coefficient: float | None = 1e-4,
    frequency_weight: float | None = None,
    dtype: str = "float16",
    contrast: float = DEFAULT_CONTRAST,
    remove_common_component: bool = DEFAULT_REMOVE_COMMON_COMPONENT,
    drop_components: int | str = DEFAULT_DROP_COMPONENTS,
    probabilities: np.ndarray | None = None,
    probabilities_source: str = "given probabilities",
) -> StaticModel:
    """PCA of ``vectors`` (``pca_dims``: an int, a float in (0, 1) for a fraction of the variance, ``"auto"`` for all
    dims rotated, ``None`` for none; ``distill.pca``), all-but-the-top (``drop_components``: the top principal
    directions dropped, ``"auto"`` for ``round(dims / 100)``, 0 for none), SIF weights ``a / (a + p)``
    (``sif_coefficient``), SIF's
    common-component removal with the same ``p`` (``remove_common_component``; ``distill.common_component``), the
    table (a zero row for every id the plan does not keep) and the ``StaticModel`` (``dtype``, ``contrast``);
    ``vectors`` is not changed, so one vocabulary pass can be assembled many ways (the arguments are those of
    ``distill.distill``).

    ``p`` is ``distill.frequencies.sif_probabilities`` of the plan's counts with ``frequency_weight`` (resolved by
    ``resolve_frequency_weight``), or ``probabilities`` over ``plan.kept_ids`` when given (recorded as
    ``probabilities_source``; studies such as the ablation's Zipf over frequency ranks).
    """
    check_assembly(pca_dims=pca_dims, sif_coefficient=sif_coefficient, dtype=dtype, contrast=contrast,
                   remove_common_component=remove_common_component, drop_components=drop_components)
    plan.check_pca_dims(pca_dims)
    t = plan.teacher
    kept_ids = plan.kept_ids
    raw = vectors.vectors
    if raw.ndim != 2 or raw.shape[0] != kept_ids.size:
        raise ValueError(f"vectors has shape {raw.shape}; the plan keeps {kept_ids.size} tokens (one row each).")
    n_out = plan.vocab_size
    if probabilities is None:
        frequency_weight = freq.resolve_frequency_weight(frequency_weight, plan.counts is not None)
        probs = freq.sif_probabilities(plan.counts, kept_ids, weight=frequency_weight)
        freq_source = plan.frequency_source
    else:
        if frequency_weight is not None:
            raise ValueError("frequency_weight applies to the plan's counts, not to given probabilities.")
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.shape != (kept_ids.size,):
            raise ValueError(f"probabilities has shape {probs.shape}; the plan keeps {kept_ids.size} tokens.")
        freq_source = probabilities_source
    teacher_dtype = str(t.torch_dtype).replace("torch.", "")

    # ---- post-processing
    projected, explained = pca(raw, pca_dims)
    dropped = top_components_rule(projected.shape[1]) if drop_components == "auto" else int(drop_components)
    if dropped > projected.shape[1]:
        raise ValueError(f"drop_components={dropped} is more than the model's {projected.shape[1]} dims.")
    projected = drop_top_components(projected, dropped)
    projected = projected * freq.sif_weights(probs, sif_coefficient)[:, None]
    if remove_common_component:
        projected = remove_component(projected, common_direction(projected, probs))
    dim = projected.shape[1]
    table = np.zeros((n_out, dim), dtype=np.float32)
    table[kept_ids] = projected

    import tokenizers
    import torch
    import transformers

    params = {
        "teacher": plan.teacher_name,
        "pca_dims": pca_dims,
        "sif_coefficient": sif_coefficient,
        "vocabulary": plan.vocabulary_words,
        "token_frequencies": freq_source,
        "frequency_weight": frequency_weight,
        "device": t.device,
        "batch_size": vectors.batch_size,
        "pooling": vectors.pooling,
        "dtype": dtype,
        "contrast": float(contrast),
        "remove_common_component": bool(remove_common_component),
        "drop_components": drop_components,
        "dropped_components": dropped,
    }
    distill_info = {
        "parameters": params,
        "toolkit_version": toolkit_version(),
        "teacher": plan.teacher_name,
        "teacher_pooling": t.pooling,
        "teacher_normalize": t.normalize,
        "teacher_max_seq_length": t.spec.max_seq_length,
        "teacher_hidden_size": t.dim,
        "teacher_dtype": teacher_dtype,
        "drop_pattern": DEFAULT_DROP_PATTERN,
        "vocab_size": int(n_out),
        "embedded_tokens": int(kept_ids.size),
        "zero_rows": int(n_out - kept_ids.size),
        "added_words": plan.vocabulary_stats,
        **({} if t.spec.sentence_transformers else {"teacher_pooling_assumed": True}),
        "explained_variance": round(float(explained), 6),
        "pca_components": None if pca_dims is None else int(dim),
        "vocab_pass_seconds": None if vectors.seconds is None else round(vectors.seconds, 2),
        "seconds": round(time.perf_counter() - plan.started, 2),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
    }
    revision = revision_to_record(plan.teacher_name, t)  # the teacher's commit, for the name it belongs to
    # StaticModel adds model_type, dim, vocab_size, dtype, normalize, max_length and the producer.
    config = {
        "teacher": plan.teacher_name,
        "tokenizer_name": plan.teacher_name,
        # the hub commit (or revision) the teacher was read at, so a reader of the model loads that version
        **({} if revision is None else {"teacher_revision": revision}),
        "apply_pca": pca_dims,
        "sif_coefficient": sif_coefficient,
        "pooling": vectors.pooling,
        "normalize": bool(t.normalize),
        "distill": distill_info,
    }
    embeddings = table.astype(np.float16) if dtype == "float16" else table
    model = StaticModel(embeddings, plan.tokenizer, config=config, normalize=bool(t.normalize),
                        max_length=DEFAULT_MAX_LENGTH, contrast=float(contrast))
    if dtype == "int8":
        model = model.quantize("int8")
    return model

