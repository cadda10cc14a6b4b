"""The user's input files: texts (``read_texts``) and sentence pairs with their gold scores (``read_pairs``,
``read_scored_pairs``), from .txt, JSON lines or TSV; a ``ValueError`` naming the file and line for anything else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from distill.comparison.validation import finite_score
from distill.text_files import json_object


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, lines ended by ``\n``, ``\r\n`` or a lone ``\r`` (universal
    newlines, as refine and scale read files); a ``ValueError`` naming the file and line otherwise."""
    lineno = 0
    with open(path, "rb") as f:
        for block in f:  # ends at each \n; bytes.splitlines splits at \n, \r\n and \r only
            for raw in block.splitlines():
                lineno += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"{path} is not UTF-8 text (line {lineno}: {exc.reason}); save it as "
                                     "UTF-8.") from None
                if lineno == 1:  # a byte-order mark (Windows editors write one) is no part of the first text
                    line = line.removeprefix("\ufeff")
                yield lineno, line


JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")  # any case: data.JSONL had its lines compared as raw JSON text


def _is_json_lines(path: Path) -> bool:
    return path.suffix.lower() in JSON_LINES_SUFFIXES


def _json_text(path: Path, lineno: int, row: dict, key: str) -> str:
    """``row[key]`` when it is a non-blank string; else a ``ValueError`` naming the file, line and key."""
    value = row[key]
    if not isinstance(value, str):
        raise ValueError(f"{path} line {lineno}: {key!r} is {type(value).__name__}, not text.")  # noqa: TRY004
    if not value.strip():
        raise ValueError(f"{path} line {lineno}: {key!r} is blank; a blank text has no meaning to compare.")
    return value


def read_texts(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Texts from a .txt (one a line) or .jsonl (key ``text``, or ``sentence1``/``sentence2``) file; a .jsonl,
    .ndjson or .json name (any case) is read as JSON lines."""
    path = Path(path)
    out: list[str] = []
    for lineno, line in _lines(path):
        line = line.strip()
        if not line:
            continue
        if _is_json_lines(path):
            row = json_object(line, f"{path} line {lineno}")
            if "text" in row:
                out.append(_json_text(path, lineno, row, "text"))
            elif "sentence1" in row or "sentence2" in row:
                out.extend(_json_text(path, lineno, row, key) for key in ("sentence1", "sentence2") if key in row)
            else:
                raise ValueError(f"{path} line {lineno}: a .jsonl text needs a 'text' or 'sentence1' key.")
        else:
            out.append(line)
        if limit is not None and len(out) >= limit:
            break
    return out[:limit] if limit is not None else out


GOLD_SCORE_KEYS = ("score", "label")  # a .jsonl pair's gold similarity: "score", else "label" (GLUE STS-B's layout)
TSV_SCORE_COLUMN = "column 3"  # where a TSV pair's gold score is (``read_scored_pairs``' key for a TSV)


def _gold_score_key(row: dict) -> str | None:
    """The key of a .jsonl pair's gold score: ``score`` when the row has one, else ``label``, else ``None``."""
    return next((key for key in GOLD_SCORE_KEYS if key in row and row[key] is not None), None)


def _not_a_score(path: Path, lineno: int, key: str, score: object) -> str:
    """The error for a gold score that is not a finite number; a ``label`` one says why a class name is refused."""
    if key != "label":
        return f"{path} line {lineno}: the score {score!r} is not a finite number."
    return (f"{path} line {lineno}: the label {score!r} is not a finite number (compare reads a 'label' as a gold "
            "similarity score, and a class label has no ranking: drop the labels, or give numeric scores).")


def read_pairs(path: str | os.PathLike, limit: int | None = None) -> tuple[list[tuple[str, str]], list[float] | None]:
    """Pairs from a .jsonl (``sentence1``, ``sentence2``, optional ``score`` or ``label``; also .ndjson, .json, any
    case) or a 2/3-column TSV, with their gold scores (``read_scored_pairs``)."""
    pairs, scores, _ = read_scored_pairs(path, limit)
    return pairs, scores


def read_scored_pairs(
    path: str | os.PathLike, limit: int | None = None
) -> tuple[list[tuple[str, str]], list[float] | None, str | None]:
    """``(pairs, gold scores, where the scores are)`` from a .jsonl or TSV pairs file.

    A .jsonl row's gold score is its ``score``, else its ``label`` (GLUE STS-B keeps it there); every row must keep
    it under the same key (or none have one), and a label must be a number (``"entailment"`` is a class, not a
    similarity). The third item is ``"score"``, ``"label"``, ``"column 3"`` (a TSV) or ``None`` (no scores)."""
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    scores: list[float] = []
    unscored: int | None = None  # the first line of a pair without a score
    first_key: tuple[int, str] | None = None  # the first scored line and where its score is
    for lineno, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if _is_json_lines(path):
            row = json_object(line, f"{path} line {lineno}")
            if "sentence1" not in row or "sentence2" not in row:
                raise ValueError(f"{path} line {lineno}: a pair needs the keys 'sentence1' and 'sentence2'.")
            pairs.append((_json_text(path, lineno, row, "sentence1"), _json_text(path, lineno, row, "sentence2")))
            key = _gold_score_key(row)
            score = row[key] if key is not None else None
        else:
            cols = line.split("\t")
            if len(cols) < 2:
                raise ValueError(f"{path} line {lineno}: expected 'sentence1<TAB>sentence2[<TAB>score]'.")
            blank = next((i for i in (0, 1) if not cols[i].strip()), None)
            if blank is not None:
                raise ValueError(f"{path} line {lineno}: sentence{blank + 1} is blank; a blank text has no meaning to "
                                 "compare.")
            pairs.append((cols[0], cols[1]))
            score = cols[2] if len(cols) > 2 else None
            key = TSV_SCORE_COLUMN if score is not None else None
        if score is not None:
            assert key is not None  # a score is found under a key
            if first_key is None:
                first_key = (lineno, key)
            elif key != first_key[1]:
                raise ValueError(f"{path} line {lineno}: the gold score is under {key!r}, while line {first_key[0]} "
                                 f"has it under {first_key[1]!r}; keep every gold score under one key (a 'label' "
                                 "may mean something other than a 'score').")
            number = finite_score(score)
            if number is None:
                raise ValueError(_not_a_score(path, lineno, key, score))
            scores.append(number)
        elif unscored is None:
            unscored = lineno
        if scores and unscored is not None:
            raise ValueError(f"{path} line {unscored}: a pair without a score, while other pairs have one; score "
                             "every pair or none.")
        if limit is not None and len(pairs) >= limit:
            break
    if first_key is not None and first_key[1] == "label" and _nli_classes(scores):
        raise ValueError(f"{path}: every 'label' is 0, 1 or 2, the classes of an NLI set (0 entailment, 1 neutral, "
                         "2 contradiction), which rank opposite to similarity; compare reads a 'label' as a gold "
                         "similarity score. Give the similarity under 'score' (if 0, 1, 2 are similarity grades, "
                         "rename the key), or drop the labels.")
    return pairs, (scores if scores else None), (first_key[1] if scores and first_key else None)


def _nli_classes(labels: list[float]) -> bool:
    """Labels that are all 0, 1 or 2 with a 2 among them: an NLI set's three classes (GLUE's and SNLI's layout)."""
    return set(labels) <= {0.0, 1.0, 2.0} and 2.0 in labels
