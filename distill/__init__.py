"""Distill a sentence-transformer into a static token-embedding model (the torch side of the toolkit).

>>> from distill import distill, Teacher, compare
>>> model = distill("sentence-transformers/all-MiniLM-L6-v2", pca_dims=256)   # -> static_model.StaticModel
>>> model.save_pretrained("minilm-static")
>>> words = read_vocabulary_file("../shared/data/vocab/wordfreq_large_en.tsv", limit=30_000)
>>> with_words = distill("all-MiniLM-L6-v2", vocabulary=words)   # + whole-word tokens

``distill`` is three public stages, for studies that share the vocabulary pass between variants:

>>> plan = prepare("all-MiniLM-L6-v2")            # teacher, output tokenizer, kept ids, counts (no weights loaded)
>>> vectors = embed_vocabulary(plan)               # the teacher pass over every kept token
>>> no_pca = assemble(plan, vectors, pca_dims=None)

>>> small = quantize_vocabulary(model, 8000)       # k-means the token rows: 8,000 rows + a token mapping
"""

from static_model.interrupts import exit_on_interrupt_while_starting

exit_on_interrupt_while_starting()  # first: a Ctrl-C in the seconds of imports below is one line and status 130

from distill.assemble import assemble, toolkit_version
from distill.comparison import compare
from distill.embed import VocabularyVectors, embed_vocabulary
from distill.frequencies import FrequencyFileError
from distill.pipeline import distill
from distill.plan import DistillPlan, prepare
from distill.resolve import DEFAULT_TEACHER, TeacherNotFoundError, resolve_teacher
from distill.teacher import Teacher, TeacherError
from distill.vocabulary import read_vocabulary_file
from distill.vocabulary_quantization import quantize_vocabulary

__all__ = [
    "DEFAULT_TEACHER",
    "DistillPlan",
    "FrequencyFileError",
    "Teacher",
    "TeacherError",
    "TeacherNotFoundError",
    "VocabularyVectors",
    "assemble",
    "compare",
    "distill",
    "embed_vocabulary",
    "prepare",
    "quantize_vocabulary",
    "read_vocabulary_file",
    "resolve_teacher",
    "toolkit_version",
]
