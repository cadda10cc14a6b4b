"""The settings of one refinement run: ``RefineConfig``, grouping the corpus, featurize, training and output
settings. Frozen and checked when built: a bad value raises naming its field (``output.dtype``, ``train.loss``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from distill.refine.corpus import DEFAULT_MAX_SENTENCES
from distill.refine.featurize import DEFAULT_CHUNK_SIZE
from distill.refine.train import TrainConfig
from static_model.validation import is_int

DTYPES = ("float32", "float16", "int8")


@dataclass(frozen=True)
class CorpusConfig:
    """Which passages of the corpus are used (see ``distill.refine.corpus.read_corpus``)."""

    max_sentences: int | None = DEFAULT_MAX_SENTENCES  # None: every passage
    # source names of the corpus file's sidecar taken first; None: the default sources when the sidecar names them
    prefer_sources: tuple[str, ...] | None = None
    text_field: str | None = None  # JSONL field / Parquet column / dataset field (default "text")

    def __post_init__(self) -> None:
        if self.max_sentences is not None and (not is_int(self.max_sentences) or self.max_sentences < 1):
            raise ValueError(f"corpus.max_sentences must be a positive int or None, got {self.max_sentences!r}")
        if self.max_sentences is not None:
            object.__setattr__(self, "max_sentences", int(self.max_sentences))  # numpy's ints as plain ints
        if isinstance(self.prefer_sources, str):
            object.__setattr__(self, "prefer_sources", (self.prefer_sources,))
        elif self.prefer_sources is not None:
            object.__setattr__(self, "prefer_sources", tuple(self.prefer_sources))
        if self.text_field is not None and not isinstance(self.text_field, str):
            raise TypeError(f"corpus.text_field must be a str or None, got {type(self.text_field).__name__}")


@dataclass(frozen=True)
class FeaturizeConfig:
    """How the teacher encodes the corpus (``distill.refine.featurize.featurize``)."""

    chunk_size: int = DEFAULT_CHUNK_SIZE  # passages a cached chunk
    batch_size: int = 64  # teacher batch size

    def __post_init__(self) -> None:
        for name in ("chunk_size", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"featurize.{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))  # numpy's ints as plain ints


# A refined model's pooling contrast unless one is given: contrast pooling (1.0). Under the selection protocol it wins
# broadly on refined models of both teachers (MiniLM 10 wins / 2 losses / 9 ties, mpnet 10 / 2 / 9; retrieval +3.3 to
# +6.1 nDCG@10), and the refinement measured on the separate held-out sets (94% of the teacher) used it. The folder's
# config.json and model card say so, since Model2Vec's and sentence-transformers' loaders average plainly
# (benchmarks/results/defaults.md, section 2). A plain distill stays at the plain mean (distill.assemble).
DEFAULT_REFINED_CONTRAST = 1.0


@dataclass(frozen=True)
class OutputConfig:
    """What the refined model is made of after training."""

    dtype: str = "float16"  # of the saved table: float32, float16 or int8
    contrast: float | None = None  # the refined model's pooling contrast; None: DEFAULT_REFINED_CONTRAST
    sif_coefficient: float | None = None  # None: no SIF re-weighting after training
    frequency_corpus: str | os.PathLike[str] | None = None  # where SIF counts token frequencies (default the corpus)
    # the frequency corpus's JSONL field / Parquet column / dataset field (None: corpus.text_field; a text file: none)
    frequency_text_field: str | None = None

    def __post_init__(self) -> None:
        from static_model.validation import check_contrast

        if self.dtype not in DTYPES:
            raise ValueError(f"output.dtype must be float32, float16 or int8, got {self.dtype!r}")
        if self.contrast is not None:
            object.__setattr__(self, "contrast", check_contrast(self.contrast, "output.contrast"))
        sif = self.sif_coefficient
        if sif is not None and (isinstance(sif, bool) or not isinstance(sif, (int, float)) or not 0 < sif < 1):
            raise ValueError(f"output.sif_coefficient must be in (0, 1) or None, got {sif!r}")
        freq = self.frequency_corpus
        if freq is not None and (not isinstance(freq, (str, os.PathLike)) or not os.fspath(freq)):
            raise TypeError("output.frequency_corpus must be a file path or an 'hf:' dataset name (str or "
                            f"os.PathLike), got {type(freq).__name__} {freq!r:.60}")
        if self.frequency_corpus is not None and sif is None:  # it only feeds SIF: ignored, the model had none
            raise ValueError("output.frequency_corpus needs output.sif_coefficient (the SIF re-weighting it counts "
                             "token frequencies for); set one, or leave the frequency corpus out")
        if self.frequency_text_field is not None:
            if not isinstance(self.frequency_text_field, str):
                raise TypeError("output.frequency_text_field must be a str or None, "
                                f"got {type(self.frequency_text_field).__name__}")
            if self.frequency_corpus is None:  # else ignored: the corpus itself is read with corpus.text_field
                raise ValueError("output.frequency_text_field needs output.frequency_corpus; the corpus itself is "
                                 "read with corpus.text_field")


@dataclass(frozen=True)
class RefineConfig:
    """Every setting of ``refine``; the defaults are the measured ones (see ``distill.refine.pipeline``).

    ``RefineConfig.from_options(loss="cosine", max_sentences=30_000)`` builds one from the flat option names the
    command line uses.
    """

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    featurize: FeaturizeConfig = field(default_factory=FeaturizeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    vocabulary_size: int = 0  # add the corpus's N most frequent whole words the tokenizer splits
    center_targets: bool = False  # remove the targets' mean before their PCA (default: keep the teacher's cosines)

    def __post_init__(self) -> None:
        for name, kind in (("corpus", CorpusConfig), ("featurize", FeaturizeConfig), ("train", TrainConfig),
                           ("output", OutputConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"RefineConfig.{name} must be a {kind.__name__}, "
                                f"got {type(getattr(self, name)).__name__}")
        if not is_int(self.vocabulary_size) or self.vocabulary_size < 0:
            raise ValueError(f"vocabulary_size must be a non-negative int, got {self.vocabulary_size!r}")
        object.__setattr__(self, "vocabulary_size", int(self.vocabulary_size))  # numpy's ints as plain ints
        if not isinstance(self.center_targets, bool):
            raise TypeError(f"center_targets must be a bool, got {type(self.center_targets).__name__}")

    @classmethod
    def from_options(cls, **options: Any) -> RefineConfig:
        """A config from flat option names (``loss``, ``max_sentences``, ``teacher_batch_size``, ``dtype`` ...:
        ``option_names()``); unknown names raise ``TypeError`` naming them."""
        unknown = sorted(set(options) - set(OPTION_GROUPS))
        if unknown:
            raise TypeError(f"unknown refine option(s) {', '.join(unknown)}; known: {', '.join(option_names())}")
        groups: dict[str, dict[str, Any]] = {g: {} for g in ("corpus", "featurize", "train", "output", "")}
        for name, value in options.items():
            group, attr = OPTION_GROUPS[name]
            groups[group][attr] = value
        base = cls()
        return cls(corpus=replace(base.corpus, **groups["corpus"]),
                   featurize=replace(base.featurize, **groups["featurize"]),
                   train=replace(base.train, **groups["train"]),
                   output=replace(base.output, **groups["output"]), **groups[""])


def option_names() -> list[str]:
    """The flat option names ``RefineConfig.from_options`` takes."""
    return sorted(OPTION_GROUPS)



def _option_groups() -> dict[str, tuple[str, str]]:
    """flat option name -> (group, field); the featurize batch size is ``teacher_batch_size``."""
    out: dict[str, tuple[str, str]] = {}
    for group, kind in (("corpus", CorpusConfig), ("train", TrainConfig), ("output", OutputConfig)):
        out.update({f.name: (group, f.name) for f in fields(kind)})
    out.update({"chunk_size": ("featurize", "chunk_size"), "teacher_batch_size": ("featurize", "batch_size")})
    out.update({"vocabulary_size": ("", "vocabulary_size"), "center_targets": ("", "center_targets")})
    return out


OPTION_GROUPS = _option_groups()
