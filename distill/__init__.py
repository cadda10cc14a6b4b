"""Distill a sentence-transformer into a static token-embedding model (the torch side of the toolkit).

>>> from distill import distill, Teacher, compare
>>> model = distill("sentence-transformers/all-MiniLM-L6-v2", pca_dims=256)   # -> static_model.StaticModel
>>> model.save_pretrained("minilm-static")
"""

from distill.comparison import compare
from distill.core import distill, toolkit_version
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
    "resolve_teacher",
    "toolkit_version",
]
