"""``distill``: teacher -> static token-embedding model, in three public stages.

1. ``prepare`` (``distill.plan``): every argument, the teacher folder, its tokenizer, the added vocabulary and the
   frequency source are checked first (cheap); the output tokenizer, the kept ids and the token counts are built.
2. ``embed_vocabulary`` (``distill.embed``): the teacher weights load and the vocabulary pass runs (the whole cost).
3. ``assemble`` (``distill.assemble``): PCA, SIF weights and the ``StaticModel``.

A study that varies the post-processing runs stage 2 once and ``assemble`` for each variant
(``benchmarks.studies.ablation``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from distill.assemble import (
    DEFAULT_CONTRAST,
    DEFAULT_DROP_COMPONENTS,
    DEFAULT_REMOVE_COMMON_COMPONENT,
    assemble,
    check_assembly,
)
from distill.embed import AUTO_POOLING, DEFAULT_BATCH_SIZE, check_embedding, embed_vocabulary
from distill.frequencies import resolve_frequency_weight
from distill.pca import DEFAULT_PCA_DIMS, PCADims
from distill.plan import prepare
from distill.resolve import DEFAULT_TEACHER
from distill.teacher import Teacher
from static_model import StaticModel


def distill(
    teacher: str | os.PathLike | Teacher = DEFAULT_TEACHER,
    *,
    pca_dims: PCADims = DEFAULT_PCA_DIMS,
    sif_coefficient: float | None = 1e-4,
    vocabulary: Sequence[str] | str | os.PathLike | None = None,
    token_frequencies: str | os.PathLike | Mapping[str, float] | None = None,
    frequency_weight: float | None = None,
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pooling: str = AUTO_POOLING,
    dtype: str = "float16",
    contrast: float = DEFAULT_CONTRAST,
    remove_common_component: bool = DEFAULT_REMOVE_COMMON_COMPONENT,
    drop_components: int | str = DEFAULT_DROP_COMPONENTS,
    teacher_name: str | None = None,
    revision: str | None = None,
    show_progress_bar: bool = True,
) -> StaticModel:
    """Distill ``teacher`` into a ``static_model.StaticModel``.

    The model reads at most ``DEFAULT_MAX_LENGTH`` (512) tokens of a text, whatever the teacher's window; set
    ``model.max_length`` (``None``: every token) or pass ``encode(max_length=...)`` to change that.

    :param teacher: a local folder, a teacher with an offline package, a hub id, or a ``Teacher``.
    :param pca_dims: output dimensions (PCA fit in float64): an int; a float in (0, 1): the fewest components that
        explain at least that fraction of the variance; ``"auto"``: all the teacher's dims, rotated onto the principal
        axes (Model2Vec's ``"auto"``); ``None``: the teacher's dims, no PCA.
    :param sif_coefficient: ``a`` in the SIF weight ``a / (a + p)``; ``None``: no weighting.
    :param vocabulary: whole words to add as tokens (a list, or a file: one word a line or the first
        column of a TSV); each word's vector is the teacher run over its word pieces.
    :param token_frequencies: where ``p`` comes from: a word-frequency TSV (``word<TAB>frequency``),
        a folder holding one, a plain-text corpus, or a ``{word: count}`` mapping. ``None``: Zipf's
        law over the token id order (what Model2Vec does).
    :param frequency_weight: with ``token_frequencies``, how far the counts move ``p`` from Zipf over ids:
        ``p ∝ zipf ** (1 - w) * counts ** w`` (``distill.frequencies.sif_probabilities``); ``None`` is
        ``DEFAULT_FREQUENCY_WEIGHT`` (0.25, chosen on the development splits), ``1.0`` takes the counts alone.
        Measured best with ``sif_coefficient=3e-4`` (``benchmarks/results/frequency_weight_dev.md``).
    :param device: torch device; default CUDA when available (float16), else CPU (float32).
    :param batch_size: sequences per forward in the vocabulary pass.
    :param pooling: how the vocabulary pass pools each token's teacher forward: ``"auto"`` (default) the pooling the
        teacher's own config names (mean -> ``"mean"``, cls -> ``"first"``, lasttoken -> ``"last"``, max -> ``"max"``);
        ``"mean"`` over the template, ``"first"`` position 0 (CLS; ``"cls"`` is read as ``"first"``), ``"last"`` the
        last position, ``"pooler"`` the transformer's pooler output (a ``TeacherError`` when it has no trained
        pooler), ``"max"``, or ``"token"``: the token's own position(s). The config records the one used.
    :param dtype: storage dtype of the returned model: ``"float16"`` (default), ``"float32"``, ``"int8"``.
    :param contrast: the model's pooling at encode time (``StaticModel.contrast``): ``0`` (the default,
        ``DEFAULT_CONTRAST``) is Model2Vec's plain mean; ``c > 0`` weights each token row by
        ``exp(-c * cos(row, the text's mean row))`` (retrieval and question-type sets gain; see
        ``benchmarks/results/defaults.md``).
    :param remove_common_component: SIF's second step (``distill.common_component``): project the direction of the
        mean sentence vector (under the SIF weights' frequency model) out of every row; on by default. ``False``
        keeps the rows as PCA and SIF leave them (Model2Vec's recipe).
    :param drop_components: all-but-the-top (``distill.common_component.drop_top_components``): how many top principal
        directions of the token vectors to drop before the SIF weights; ``"auto"`` (default) is the published rule
        ``round(dims / 100)``, ``0`` drops none (Model2Vec's recipe).
    :param teacher_name: the teacher's public name to record in the model's config (a hub id such as
        ``org/name``; a path is refused). Default: ``Teacher.public_name`` (a known teacher's hub id, the hub id of
        a hub snapshot, else the folder's base name): a shared model never records a local path.
    :param revision: a branch, tag or commit of a hub id teacher (as in ``Teacher``; a local folder ignores it). The
        model's config records the teacher's revision as ``teacher_revision``: the commit of the hub snapshot the
        teacher was read from (with or without ``revision``), else ``revision`` for a hub id; nothing for a local
        folder or an offline package.
    :param show_progress_bar: progress bar over the vocabulary pass.
    :raises TeacherNotFoundError, TeacherError, FrequencyFileError, ValueError: on bad input, before
        the teacher weights load.
    """
    check_embedding(pooling=pooling, batch_size=batch_size)
    check_assembly(pca_dims=pca_dims, sif_coefficient=sif_coefficient, dtype=dtype, contrast=contrast,
                   remove_common_component=remove_common_component, drop_components=drop_components)
    resolve_frequency_weight(frequency_weight, token_frequencies is not None)
    plan = prepare(teacher, vocabulary=vocabulary, token_frequencies=token_frequencies, device=device,
                   teacher_name=teacher_name, revision=revision)
    plan.check_pca_dims(pca_dims)
    plan.check_drop_components(pca_dims, drop_components)  # all checked: nothing above loads the teacher weights
    vectors = embed_vocabulary(plan, pooling=pooling, batch_size=batch_size, unload=plan.owns_teacher,
                               show_progress_bar=show_progress_bar)
    return assemble(plan, vectors, pca_dims=pca_dims, sif_coefficient=sif_coefficient,
                    frequency_weight=frequency_weight, dtype=dtype, contrast=contrast,
                    remove_common_component=remove_common_component, drop_components=drop_components)
