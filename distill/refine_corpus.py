"""The refinement corpus: passages from a text file or an iterable, optionally some sources first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "corpus_general" / "sentences.txt"
# The default corpus's encyclopedic lines come first (then the rest, in file order): SciFact nDCG@10 +1.8 on its
# test claims, +2.2 on its train claims, the suite average +0.3 (benchmarks/results/refine_sources.md).
DEFAULT_PREFER_SOURCES = ("wikipedia_en_2015",)


def read_corpus(corpus: str | os.PathLike | Iterable[str], max_sentences: int | None = None,
                prefer_sources: Sequence[str] = ()) -> list[str]:
    """Passages from a text file (one a line) or an iterable of strings; blank ones are skipped.

    ``prefer_sources``: names from the file's source sidecar (``<stem>.source.txt``: one source name a line,
    line for line with the corpus, as ``corpus_general/sentences.source.txt``): every passage of those sources
    is taken first, then the others fill up to ``max_sentences``; the result keeps the file's order.
    """
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be positive, got {max_sentences}")
    if isinstance(prefer_sources, str):
        prefer_sources = (prefer_sources,)
    if isinstance(corpus, (str, os.PathLike)):
        path = Path(corpus).expanduser()
        if not path.is_file():
            raise ValueError(f"Corpus file {path} does not exist.")
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = _clean(f, None if prefer_sources else max_sentences)
        if prefer_sources:
            lines = _preferred_first(path, lines, set(prefer_sources), max_sentences)
    else:
        if isinstance(corpus, (bytes, bytearray)):
            raise TypeError("corpus must be a path or an iterable of str")
        if prefer_sources:
            raise ValueError("prefer_sources needs a corpus file with a source sidecar, not an iterable")
        lines = _clean(corpus, max_sentences)
    out = [line for _, line in lines]
    if not out:
        raise ValueError("The corpus holds no non-empty passage.")
    return out


def _clean(source: Iterable[str], max_sentences: int | None) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines, at most ``max_sentences``."""
    out: list[tuple[int, str]] = []
    for i, line in enumerate(source):
        if not isinstance(line, str):
            raise TypeError(f"corpus item {i} is {type(line).__name__}, not str")
        line = line.strip()
        if line:
            out.append((i, line))
            if max_sentences is not None and len(out) >= max_sentences:
                break
    return out


def source_sidecar(path: Path) -> Path:
    """``sentences.txt`` -> ``sentences.source.txt``."""
    return path.with_suffix(".source.txt")


def _preferred_first(path: Path, lines: list[tuple[int, str]], preferred: set[str],
                     max_sentences: int | None) -> list[tuple[int, str]]:
    side = source_sidecar(path)
    if not side.is_file():
        raise ValueError(f"prefer_sources needs {side} (one source name a line, line for line with {path.name}); "
                         "it does not exist.")
    with open(side, encoding="utf-8") as f:
        names = [line.strip() for line in f]
    last = lines[-1][0] if lines else -1
    if len(names) <= last:
        raise ValueError(f"{side} has {len(names)} lines, fewer than {path.name} ({last + 1}).")
    unknown = preferred - set(names)
    if unknown:
        raise ValueError(f"prefer_sources {sorted(unknown)} never occur in {side}.")
    first = [x for x in lines if names[x[0]] in preferred]
    rest = [x for x in lines if names[x[0]] not in preferred]
    return sorted((first + rest)[:max_sentences])
