"""The first stage of a distill (``prepare``): the teacher, the output vocabulary and the token counts, checked and
built before any heavy work (nothing here loads the teacher's weights)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from distill import frequencies as freq
from distill.errors import SettingError
from distill.pca import PCADims, check_pca_dims
from distill.resolve import DEFAULT_TEACHER, check_public_name
from distill.teacher import Teacher
from distill.vocabulary import build_output_tokenizer, check_words, kept_token_ids, output_vocab_size

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class DistillPlan:
    """What the vocabulary pass embeds and what the assembly weighs, from ``prepare``."""

    teacher: Teacher
    teacher_name: str  # the public name the model's config records (never a local path)
    owns_teacher: bool  # prepare built the teacher from a name or folder (distill frees its weights after the pass)
    # the output tokenizer: the teacher's (padding and truncation off) plus the added words
    tokenizer: Tokenizer = field(repr=False)
    # teacher token ids that get a forward pass (``kept_token_ids``, in id order)
    base_ids: tuple[int, ...] = field(repr=False)
    added_words: tuple[str, ...]  # the added words as fed to the teacher
    added_ids: tuple[int, ...] = field(repr=False)  # their ids in ``tokenizer``
    vocabulary_stats: dict[str, int]  # build_output_tokenizer's counts: requested, added, already_single_token, ...
    vocabulary_words: int | None  # how many words were passed as ``vocabulary`` (None: none)
    # per-id token counts of ``token_frequencies`` under ``tokenizer``; None: Zipf over ids
    counts: np.ndarray | None = field(repr=False)
    frequency_source: str  # the token_frequencies file's name, "mapping", or "zipf-id-rank" without one
    started: float  # time.perf_counter() when prepare began

    @property
    def kept_ids(self) -> np.ndarray:
        """The ids that get a row (teacher tokens, then added words): the order of the vocabulary pass's rows."""
        return np.asarray(self.base_ids + self.added_ids, dtype=np.int64)

    @property
    def vocab_size(self) -> int:
        """Rows of the output table (``output_vocab_size``: max id + 1; holes get zero rows)."""
        return output_vocab_size(self.tokenizer)

    def check_pca_dims(self, pca_dims: PCADims) -> None:
        """A ``ValueError`` naming ``pca_dims`` unless it is one ``distill.pca.check_pca_dims`` takes and its number of
        components (an int, or all of them for ``"auto"``) fits the teacher's hidden size and the kept tokens."""
        check_pca_dims(pca_dims)
        if pca_dims is None or isinstance(pca_dims, (float, np.floating)):
            return
        n_kept = len(self.base_ids) + len(self.added_ids)
        if isinstance(pca_dims, str):  # AUTO_DIMS (check_pca_dims)
            if self.teacher.dim > n_kept:
                raise ValueError(f"pca_dims='auto' keeps all {self.teacher.dim} dims of the teacher, more than the "
                                 f"vocabulary ({n_kept} tokens); pass an int or a float, or None for no PCA.")
            return
        if pca_dims > self.teacher.dim:
            raise SettingError("pca_dims", f"pca_dims={pca_dims} is larger than the teacher's hidden size "
                                            f"({self.teacher.dim}).")
        if pca_dims > n_kept:
            raise SettingError("pca_dims", f"pca_dims={pca_dims} is larger than the vocabulary ({n_kept} tokens).")


    def check_drop_components(self, pca_dims: PCADims, drop_components: int | str) -> None:
        """A ``ValueError`` when an explicit ``drop_components`` is more than the model's dims can be (``pca_dims`` as
        an int, else the teacher's hidden size), before the vocabulary pass rather than after it."""
        if isinstance(drop_components, str):  # "auto": round(dims / 100) always fits
            return
        dims = pca_dims if isinstance(pca_dims, (int, np.integer)) and not isinstance(pca_dims, bool) \
            else self.teacher.dim
        if drop_components > dims:
            raise SettingError("drop_components",
                               f"drop_components={drop_components} is more than the model's {dims} dims.")


def prepare(
    teacher: str | os.PathLike | Teacher = DEFAULT_TEACHER,
    *,
    vocabulary: Sequence[str] | str | os.PathLike | None = None,
    token_frequencies: str | os.PathLike | Mapping[str, float] | None = None,
    device: str | None = None,
    teacher_name: str | None = None,
    revision: str | None = None,
) -> DistillPlan:
    """Check the teacher, the added vocabulary and the frequency source, and build the output tokenizer, the kept ids
    and the token counts (the arguments are those of ``distill.distill``). Nothing here loads the teacher's weights.

    :raises TeacherNotFoundError, TeacherError, FrequencyFileError, TypeError, ValueError: on bad input.
    """
    t_start = time.perf_counter()
    if teacher_name is not None:
        teacher_name = check_public_name(teacher_name)
    own = not isinstance(teacher, Teacher)
    if revision is not None and isinstance(teacher, Teacher):
        raise ValueError("revision applies to a teacher given by name: a Teacher object was resolved already (pass "
                         "Teacher(name, revision=...) instead)")
    t = teacher if isinstance(teacher, Teacher) else Teacher(teacher, device=device, revision=revision)
    tokenizer = t.tokenizer
    if not t.spec.sentence_transformers:
        logger.warning("The teacher %s is not a sentence-transformers folder (no modules.json): its pooling is assumed "
                       "to be the mean over tokens; a plain language model (such as bert-base-uncased) is no sentence "
                       "embedder, and neither will its static model be. The model's config.json records "
                       "distill.teacher_pooling_assumed.", t.spec.path)
    n_vocab_words = None
    if vocabulary is not None:
        vocabulary = check_words(vocabulary)
        n_vocab_words = len(vocabulary)
    if token_frequencies is not None:
        freq.check_source(token_frequencies)

    prefix, suffix = t.template
    out_tok, added_words, added_ids, vocab_stats = build_output_tokenizer(
        tokenizer, vocabulary, max_pieces=max(1, t.max_length - len(prefix) - len(suffix)),
        lowercase=t.spec.do_lower_case)
    if vocab_stats.get("too_long"):
        logger.warning("%d vocabulary words were left out: their pieces do not fit the teacher's window of %d tokens "
                       "(config.json: distill.added_words.too_long).", vocab_stats["too_long"], t.max_length)
    if vocab_stats.get("too_many_characters"):
        logger.warning("%d vocabulary words were left out: they are longer than the teacher's WordPiece tokenizer "
                       "reads (max_input_chars_per_word), so it turns each into its unknown token "
                       "(config.json: distill.added_words.too_many_characters).", vocab_stats["too_many_characters"])
    if vocabulary and not added_words:
        logger.warning("None of the %d vocabulary words was added (all are single tokens already, split or left out).",
                       len(vocabulary))
    base_ids = kept_token_ids(tokenizer)
    t.check_token_ids([*base_ids, *t.template[0], *t.template[1]])  # before any weights load
    if len(base_ids) + len(added_ids) == 0:
        raise ValueError("The vocabulary is empty after dropping special and [unusedN] tokens.")
    counts = None
    if token_frequencies is not None:
        counts = freq.token_counts(token_frequencies, out_tok)
        # the file's name, not its path: a shared model records no private directory layout
        freq_source = "mapping" if isinstance(token_frequencies, Mapping) else Path(token_frequencies).name
    else:
        freq_source = "zipf-id-rank"
    return DistillPlan(t, teacher_name or t.public_name, own, out_tok, tuple(base_ids), tuple(added_words),
                       tuple(added_ids), vocab_stats, n_vocab_words, counts, freq_source, t_start)
