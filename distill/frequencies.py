"""SIF weighting: the weights ``a / (a + p)`` (``sif_weights``) and where ``p`` comes from: Zipf's law over the token
ids (``zipf_probabilities``), token frequencies from a word-frequency list or a raw text corpus, or both pooled.

Frequency sources are tokenized with the *output* tokenizer (the teacher's, plus any added whole words), so the
counts are those of the tokens the static model will see:

- a word-frequency list (TSV ``word<TAB>frequency[<TAB>...]``, optional header, e.g.
  ``shared/data/vocab/wordfreq_large_en.tsv``): each word is tokenized and its frequency is added to
  every one of its pieces (once per occurrence), which is what counting the pieces in a corpus with
  that word distribution gives;
- a corpus (plain text, any number of lines): the tokens are counted directly.

Tokens never seen get half the smallest observed probability (smoothing), then all is renormalized.

``sif_probabilities`` gives the ``p`` of the SIF weights: Zipf's law over the kept ids' order, or, with counts,
the counts' probabilities pooled log-linearly with that Zipf prior (``weight`` says how far the counts move it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from distill.errors import SettingError

# How far real token counts move p away from Zipf over ids (log-linear pooling, see ``sif_probabilities``),
# chosen on the benchmark's development splits (benchmarks/results/frequency_weight_dev.md).
DEFAULT_FREQUENCY_WEIGHT = 0.25


class FrequencyFileError(ValueError):
    """The token-frequency source is missing or not in a supported format."""


def _pick_file(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix in (".tsv", ".txt")),
            key=lambda p: (-p.stat().st_size, p.name),
        )
        if not candidates:
            raise FrequencyFileError(f"Folder {path} holds no .tsv or .txt frequency list or corpus.")
        return candidates[0]  # the largest list (wordfreq_large_en.tsv in shared/data/vocab/)
    if not path.is_file():
        raise FrequencyFileError(f"Token-frequency file {path} does not exist.")
    return path


def is_number(s: str) -> bool:
    """Whether ``s`` parses as a finite float."""
    try:
        v = float(s)
    except ValueError:
        return False
    return math.isfinite(v)


def parses_as_number(s: str) -> bool:
    """Whether ``s`` parses as a float at all (``nan``, ``inf`` and ``1e999`` too)."""
    try:
        float(s)
    except ValueError:
        return False
    return True


def is_column_name(s: str) -> bool:
    """Whether a header's column ``s`` (``count``, ``frequency``) is a name: text that is not a number at all. A count
    that is a number, finite or not (``nan``, ``inf``), or an empty one makes its line a row, not a header."""
    return bool(s.strip()) and not parses_as_number(s)


def sniff(path: str | os.PathLike) -> tuple[str, Path]:
    """``("wordlist" | "corpus", file)``; raises ``FrequencyFileError`` on a wrong format."""
    path = _pick_file(Path(path).expanduser())
    try:
        with open(path, encoding="utf-8") as f:
            head = [(n, line.rstrip("\r\n")) for n, line in zip(range(1, 6), f)]
    except UnicodeDecodeError as exc:
        from distill.text_files import first_bad_utf8_line, not_utf8_error

        raise FrequencyFileError(f"{path} is {not_utf8_error(path, first_bad_utf8_line(path), exc.reason)}.") \
            from None
    head_nonempty = [(n, h) for n, h in head if h.strip()]
    if not head_nonempty:
        raise FrequencyFileError(f"Token-frequency file {path} is empty.")
    has_tabs = any("\t" in h for _, h in head_nonempty)
    tabular_ext = path.suffix.lower() in (".tsv", ".csv")
    if not has_tabs and not tabular_ext:
        return "corpus", path
    data = head_nonempty[1:] if _is_header(head_nonempty[0][1]) else head_nonempty
    if data and _looks_like_row(data[0][1]):
        return "wordlist", path  # every row is checked by read_word_frequencies, with its line number
    lineno, shown = data[0] if data else head_nonempty[0]
    raise FrequencyFileError(
        f"{path} is not a word-frequency list (line {lineno}): expected lines 'word<TAB>frequency' with a finite, "
        f"non-negative frequency (an optional header first), got {shown[:80]!r}. A corpus must be plain text without "
        "tabs."
    )


def _is_header(line: str) -> bool:
    """A first line that names its columns (``word<TAB>count``): its second column is text that is not a number at all.
    A count that is a number but not a finite one (``nan``, ``inf``), or that is missing, makes it a bad row."""
    parts = line.split("\t")
    return len(parts) < 2 or is_column_name(parts[1])


def _looks_like_row(line: str) -> bool:
    parts = line.split("\t")
    return len(parts) >= 2 and bool(parts[0]) and is_number(parts[1]) and float(parts[1]) >= 0


def read_word_frequencies(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Words and frequencies from a ``word<TAB>frequency`` file (header optional)."""
    path = Path(path)
    words: list[str] = []
    freqs: list[float] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] and is_number(parts[1]) and float(parts[1]) >= 0:
                words.append(parts[0])
                freqs.append(float(parts[1]))
            elif lineno == 1 and _is_header(line):
                continue  # header
            else:
                raise FrequencyFileError(
                    f"{path}, line {lineno}: expected 'word<TAB>frequency' with a finite, non-negative "
                    f"frequency, got {line[:80]!r}."
                )
    if not words:
        raise FrequencyFileError(f"{path} holds no 'word<TAB>frequency' rows.")
    return words, np.asarray(freqs, dtype=np.float64)


def check_source(source: str | os.PathLike[str] | Mapping[str, float]) -> None:
    """Validate a token-frequency source cheaply (before any heavy work)."""
    if isinstance(source, Mapping):
        if not source:
            raise FrequencyFileError("The token-frequency mapping is empty.")
        bad = [k for k, v in source.items() if not isinstance(k, str) or not is_number(str(v)) or float(v) < 0]
        if bad:
            raise FrequencyFileError(f"Token-frequency mapping has bad entries, e.g. {bad[:3]!r}.")
        return
    kind, path = sniff(source)
    if kind == "wordlist":
        read_word_frequencies(path)


def token_counts(
    source: str | os.PathLike[str] | Mapping[str, float], tokenizer: Tokenizer, *, chunk_lines: int = 20000
) -> np.ndarray:
    """Per-token-id (float64) counts of ``source`` under ``tokenizer`` (with added tokens)."""
    size = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    counts = np.zeros(size, dtype=np.float64)
    if isinstance(source, Mapping):
        words, freqs = list(source.keys()), np.asarray([float(v) for v in source.values()])
        kind = "wordlist"
    else:
        kind, path = sniff(source)
        if kind == "wordlist":
            words, freqs = read_word_frequencies(path)
    if kind == "wordlist":
        top = float(freqs.max(initial=0.0))
        if top > 1e100:  # only the ratios count: frequencies near float64's limit would add up to infinity
            freqs = freqs / top
        for start in range(0, len(words), chunk_lines):
            encs = tokenizer.encode_batch(words[start : start + chunk_lines], add_special_tokens=False)
            lens = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
            ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64, count=int(lens.sum()))
            np.add.at(counts, ids, np.repeat(freqs[start : start + chunk_lines], lens))
        return counts
    try:
        with open(path, encoding="utf-8") as f:
            batch: list[str] = []
            for line in f:
                if line.strip():
                    batch.append(line.rstrip("\r\n"))
                if len(batch) >= chunk_lines:
                    counts += _count_batch(tokenizer, batch, size)
                    batch = []
            if batch:
                counts += _count_batch(tokenizer, batch, size)
    except UnicodeDecodeError as exc:  # never counted with replacement characters
        from distill.text_files import first_bad_utf8_line, not_utf8_error

        raise FrequencyFileError(f"{path} is {not_utf8_error(path, first_bad_utf8_line(path), exc.reason)}.") \
            from None
    if counts.sum() <= 0:
        raise FrequencyFileError(f"Corpus {path} holds no tokens.")
    return counts


def _count_batch(tokenizer: Tokenizer, lines: list[str], size: int) -> np.ndarray:
    encs = tokenizer.encode_batch(lines, add_special_tokens=False)
    ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)
    return np.bincount(ids, minlength=size).astype(np.float64)[:size]


def probabilities(counts: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Probabilities over the ``kept`` ids (boolean mask); unseen kept ids get half the smallest
    observed probability; dropped ids get 0."""
    c = np.where(kept, counts, 0.0)
    with np.errstate(over="ignore"):  # an infinite sum is handled below
        total = c.sum()
    top = float(c.max(initial=0.0))
    if not np.isfinite(total) and np.isfinite(top):  # counts near float64's limit: the same ratios, a finite sum
        c = c / top  # (an infinite total made every p 0 or NaN)
        total = c.sum()
    if total <= 0:
        raise FrequencyFileError("No token of the vocabulary occurs in the token-frequency source.")
    p = c / total
    floor = 0.5 * p[p > 0].min()
    p = np.where(kept & (p == 0), floor, p)
    return p / p.sum()


def check_frequency_weight(weight: object) -> float:
    """``weight`` as a float; a ``TypeError`` or ``ValueError`` naming it unless it is a number in (0, 1]."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)):
        raise TypeError(f"frequency_weight must be a number in (0, 1], got {type(weight).__name__}.")
    if not 0 < float(weight) <= 1:
        raise SettingError("frequency_weight", f"frequency_weight must be in (0, 1], got {weight!r}.")
    return float(weight)


def resolve_frequency_weight(weight: object, has_source: bool) -> float | None:
    """The frequency weight ``distill`` uses: ``None`` without a frequency source (a weight without one is an
    error), ``DEFAULT_FREQUENCY_WEIGHT`` for ``None`` with one."""
    if weight is None:
        return DEFAULT_FREQUENCY_WEIGHT if has_source else None
    if not has_source:
        raise ValueError("frequency_weight applies to token_frequencies: pass a frequency source, or leave it None.")
    return check_frequency_weight(weight)


def sif_probabilities(counts: np.ndarray | None, kept_ids: np.ndarray, *,
                      weight: float | None = DEFAULT_FREQUENCY_WEIGHT) -> np.ndarray:
    """``p`` for the SIF weights of ``kept_ids`` (in table order), float64, summing to 1.

    ``counts=None``: Zipf's law over the order of ``kept_ids`` (``zipf_probabilities``, Model2Vec's choice).
    Otherwise ``p`` is proportional to ``zipf ** (1 - weight) * q ** weight``, ``q`` the counts' probabilities over the
    kept ids (``probabilities``): ``weight=1`` takes the counts alone (``weight`` is not read without counts). The
    pooled estimate keeps what the id order knows (BERT's single characters and punctuation come first) and moves
    frequent words down as the counts say, without the counts' full steepness ('the' would weigh 0.002 of a rare
    word at a=1e-4).
    """
    kept_ids = np.asarray(kept_ids, dtype=np.int64)
    zipf = zipf_probabilities(kept_ids.size)
    if counts is None:
        return zipf
    weight = check_frequency_weight(weight)
    mask = np.zeros(max(int(kept_ids.max(initial=-1)) + 1, counts.shape[0]), dtype=bool)
    mask[kept_ids] = True
    padded = np.zeros(mask.shape[0], dtype=np.float64)
    padded[: counts.shape[0]] = counts
    q = probabilities(padded, mask)[kept_ids]
    if weight == 1.0:
        return q
    pooled = np.exp((1.0 - weight) * np.log(zipf) + weight * np.log(q))
    return pooled / pooled.sum()


def zipf_probabilities(n: int) -> np.ndarray:
    """Zipf's law over rank (rank 0 = most frequent): p_r proportional to 1 / (r + 2), as Model2Vec."""
    inv = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    return inv / inv.sum()


def sif_weights(probabilities: np.ndarray, a: float | None) -> np.ndarray:
    """SIF weights ``a / (a + p)``; ``a=None`` gives all ones."""
    p = np.asarray(probabilities, dtype=np.float64)
    if a is None:
        return np.ones_like(p, dtype=np.float32)
    return (a / (a + p)).astype(np.float32)
