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


# The first bytes of the compressed and archive formats a text input is most often mistaken for, and how to unpack each
_COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip", "gunzip -k"), (b"BZh", "bzip2", "bunzip2 -k"),
                     (b"\xfd7zXZ\x00", "xz", "unxz -k"), (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"),
                     (b"PK\x03\x04", "zip", "unzip"))
# the byte-order marks of UTF-32 (checked first: its little-endian mark starts as UTF-16's does) and UTF-16
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
              (codecs.BOM_UTF16_BE, "UTF-16"))


def compressed_file_error(path: str | os.PathLike) -> str | None:
    """Why ``path`` is no UTF-8 text file when its first bytes say what it is instead: a compressed file or archive
    (``"a gzip-compressed file, ...; decompress it first (gunzip -k PATH) ..."``) or UTF-16/UTF-32 text (a byte-order
    mark, as Windows Notepad's "Unicode" saves); ``None`` otherwise (also when it cannot be read). Call it for a file
    that failed to decode: a valid UTF-8 file may start with the same bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return None
    for magic, name, command in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            return (f"a {name}-compressed file, which is read as plain text only; decompress it first "
                    f"({command} {os.fspath(path)}) and pass the plain file")
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return f"{encoding} text (it starts with a {encoding} byte-order mark), not UTF-8; save it as UTF-8"
    return None


def not_utf8_error(path: str | os.PathLike, line: int | str, reason: str) -> str:
    """What to say of a text input ``path`` that is not UTF-8 (its first bad ``line`` and the decoder's ``reason``):
    the compressed format it is, else the line and how to fix it (no prefix naming the file)."""
    return compressed_file_error(path) or f"not UTF-8 text (line {line}: {reason}); save it as UTF-8"


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
