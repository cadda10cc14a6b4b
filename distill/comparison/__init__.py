"""How close is a static model to its teacher? Measured on the same texts in the same run.

- ``spearman``: Spearman correlation between the two models' cosine similarities: over all pairs of texts
  (``texts``), or over the given sentence pairs (``pairs``); 1 means the static model ranks every pair exactly as
  the teacher does;
- ``neighbour_overlap@k``: for each text, the share of its k nearest neighbours (cosine, self excluded) that are
  the same in both models, averaged over the texts;
- ``speed_ratio``: static texts/s divided by teacher texts/s, both timed here on the same texts;
- with gold pair scores: each model's Spearman correlation with the gold scores (``read_scored_pairs``: a .jsonl
  row's ``score``, else its ``label``; the command line's result names which as ``gold_score_key``);
- a number the input cannot give (a model whose cosines are all one value: every text one vector, or a zero vector
  from texts with no known token) is ``None``, and ``not_measured`` says why; ``neighbour_overlap_chance`` is the
  overlap of random neighbours (1 when k covers every other text), ``*_zero_vectors`` count the texts a model
  gives a zero vector, ``teacher`` and ``model_config_teacher`` name the teacher compared with and the model's own.

Command line: ``python -m distill compare STATIC [TEACHER] [--texts FILE | --pairs FILE] [--json]``: a report
that says what was compared with what and each number in words (``format_report``), or the dict as JSON.

Modules, one job each: ``measure`` (``compare`` itself: encode, time, measure), ``models`` (load the static model
and the teacher), ``validation`` (check the texts, pairs, scores and the vectors), ``metrics`` (the similarity
measures on vectors), ``inputs`` (read the texts and pairs files), ``report`` (the result in words) and ``cli``
(the command line). The package is not named ``compare``: ``distill.compare`` is the function.
"""

from distill.comparison.cli import SAMPLE_SENTENCES, build_parser, main
from distill.comparison.inputs import read_pairs, read_scored_pairs, read_texts
from distill.comparison.measure import compare
from distill.comparison.metrics import neighbour_overlap, neighbour_overlaps, pair_cosines
from distill.comparison.models import BatchEncoder
from distill.comparison.report import format_report

__all__ = [
    "SAMPLE_SENTENCES",
    "BatchEncoder",
    "build_parser",
    "compare",
    "format_report",
    "main",
    "neighbour_overlap",
    "neighbour_overlaps",
    "pair_cosines",
    "read_pairs",
    "read_scored_pairs",
    "read_texts",
]
