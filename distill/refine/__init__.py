"""Corpus refinement of a distilled static model: ``refine(model, teacher, corpus, RefineConfig(...))``.

Stages, one module each: ``corpus`` (read the passages) -> ``featurize`` (teacher targets, cached in chunks) ->
``targets`` (the chunks memory-mapped, their PCA fit in passes) -> ``train`` (fit the table and per-token weights,
a buffer of targets at a time) -> ``pipeline`` (``refine``: the stages in order, new words from ``vocabulary``,
SIF); ``config`` holds the settings and ``cli`` the command line (``python -m distill.refine``).
"""

from distill.refine.config import CorpusConfig, FeaturizeConfig, OutputConfig, RefineConfig
from distill.refine.pipeline import refine
from distill.refine.train import TrainConfig

__all__ = ["CorpusConfig", "FeaturizeConfig", "OutputConfig", "RefineConfig", "TrainConfig", "refine"]
