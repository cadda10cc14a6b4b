"""One pass over a file's bytes that says whether it is UTF-8 text: where the first invalid byte is, and whether
the file holds any non-blank text. Input checks (``distill.cli_checks``) and readers that met a decoding error
(corpora, frequency files) name the line from it. And :func:`json_object`, one JSON-lines row checked."""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Utf8Scan:
    """What :func:`scan_utf8` found: ``bad_line`` (1-based) of the first invalid byte, its ``reason`` and
    ``bad_byte`` (``None``, ``""`` and ``b""`` for valid UTF-8), and ``has_text``: a valid file holds non-blank
    text (for an invalid one, only the blocks before the bad one were looked at)."""

    bad_line: int | None
    reason: str
    bad_byte: bytes
    has_text: bool


def scan_utf8(path: str | os.PathLike, *, block_size: int = 1 << 20) -> Utf8Scan:
    """Decode ``path`` block by block (a character split across blocks is fine) up to its first invalid byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, has_text = 1, False
    with open(path, "rb") as f:
        while True:
            block = f.read(block_size)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                bad_line = line + exc.object[: exc.start].count(b"\n")
                return Utf8Scan(bad_line, exc.reason, exc.object[exc.start:exc.start + 1], has_text)
            line += text.count("\n")
            has_text = has_text or bool(text.strip())
            if not block:
                return Utf8Scan(None, "", b"", has_text)


def first_bad_utf8_line(path: str | os.PathLike) -> int | str:
    """The 1-based number of the first line of ``path`` that is not valid UTF-8 (``"?"`` if none is found)."""
    bad_line = scan_utf8(path).bad_line
    return "?" if bad_line is None else bad_line


def json_object(line: str, where: str, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """One JSON-lines row, which must be a JSON object; else ``error`` starting with ``where`` (a file and line)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(row, dict):
        raise error(f"{where}: a JSON object expected, got {type(row).__name__}")
    return row
