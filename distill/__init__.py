"""Distill a sentence-transformer into a static token-embedding model (the torch side of the toolkit).

>>> from distill import distill, Teacher, compare
>>> model = distill("sentence-transformers/all-MiniLM-L6-v2", pca_dims=256)   # -> static_model.StaticModel
>>> model.save_pretrained("minilm-static")
>>> words = read_vocabulary_file("../shared/data/vocab/wordfreq_large_en.tsv", limit=30_000)
>>> with_words = distill("all-MiniLM-L6-v2", vocabulary=words)   # + whole-word tokens
"""

from distill.comparison import compare
from distill.core import distill, read_vocabulary_file, toolkit_version
from distill.frequencies import FrequencyFileError
from distill.resolve import DEFAULT_TEACHER, TeacherNotFoundError, resolve_teacher
from distill.teacher import Teacher, TeacherError

__all__ = [
    "DEFAULT_TEACHER",
    "FrequencyFileError",
    "Teacher",
    "TeacherError",
    "TeacherNotFoundError",
    "compare",
    "distill",
    "read_vocabulary_file",
    "resolve_teacher",
    "toolkit_version",
]
