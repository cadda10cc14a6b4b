"""Input files → deterministic partitions of rows, and reading one partition's texts.

Formats, told apart by suffix: ``.txt`` (one text a line; ``\n``, ``\r\n`` and a lone ``\r`` each end a line, as in
Python's universal newlines and refine's corpus reader), ``.jsonl`` / ``.json`` (one JSON object a line, the text
under ``column``; blank lines are not rows, as in refine's corpus reader), ``.parquet`` (the text in a string
``column``). A UTF-8 byte-order mark opening a text or JSONL file is no part of its first row (as refine reads it).
Partitions are contiguous row ranges of one file, so the same inputs always give the same partitions and global row
ids (rows numbered across files in the order given). Each partition carries its file's size and modification time
as planned (a worker refuses a file that changed since) and the SHA-256 of its content, which planning computes in the
same pass that finds the line ranges (what a resume compares to see an edit that kept the size and time). It carries
too the SHA-256 of the bytes its worker reads (text and JSONL: its byte range, hashed in that same pass; Parquet: the
file's footer and the text column's chunks in the row groups it reads), which the worker checks against the bytes it
read before encoding them: a file replaced keeping its size and time (``cp -p``) between planning and a worker's read
is refused, not encoded as other rows under the planned ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_BLOCK = 16 << 20
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark: a file's encoding mark, no part of its first text
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # s3://, gs://, file://, hdfs://: not a path of this machine
NAME_DIGITS = 6  # partition names have at least this many digits (more when a plan has more partitions)


class InputError(ValueError):
    """An input file that cannot be read as asked (missing, unknown format, missing column, bad line)."""


@dataclass(frozen=True)
class Partition:
    """Rows ``[first_row, first_row + n_rows)`` of one input file; their global ids start at ``first_id``."""

    index: int
    path: str
    kind: str  # "text", "jsonl" or "parquet"
    first_row: int
    n_rows: int
    first_id: int
    byte_start: int = 0  # text and JSONL: where the partition's first line starts
    byte_end: int = 0  # text and JSONL: one past its last line's newline
    first_line: int = 0  # text and JSONL: the line number (from 0) of the first line (JSONL skips blank lines)
    file_bytes: int | None = None  # the file's size when planned (None: not checked)
    file_mtime_ns: int | None = None  # the file's modification time when planned (None: not checked)
    file_sha256: str | None = None  # the SHA-256 of the file's content when planned (for the manifest)
    n_partitions: int = 0  # partitions in the whole plan: sets the width of the names (0: the minimum, 6 digits)
    # the SHA-256 (hex) of what the worker reads, as planned (None: not checked); text and JSONL: the bytes
    # byte_start..byte_end; Parquet: see _parquet_digests. Sent to the workers only, never in the manifest.
    range_sha256: str | None = None

    @property
    def name(self) -> str:
        """The output file's name (see :func:`partition_name`)."""
        return partition_name(self.index, self.n_partitions)


def partition_name(index: int, n_partitions: int = 0) -> str:
    """The output file's name of partition ``index`` of ``n_partitions``, zero-padded to as many digits as the last
    index has (at least 6: names of plans under a million partitions are as before), so names sort in row order."""
    digits = max(NAME_DIGITS, len(str(n_partitions - 1)))
    return f"part-{index:0{digits}d}.parquet"


def file_stat(path: str | os.PathLike) -> tuple[int, int]:
    """``(size in bytes, modification time in ns)`` of ``path``: what a worker compares to tell an edited file."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of ``path``'s content, read in blocks (about 1 s a GB on one core)."""
    return _feed(path, hashlib.sha256()).hexdigest()


def local_path(value: str | os.PathLike, what: str) -> Path:
    """``value`` as an absolute path of this machine (``~`` expanded, relative to the current folder), as every Ray
    worker must be given it (a remote worker's working folder is another); a URI (``s3://``) is a ValueError naming
    ``what``: scale reads and writes files on a filesystem the workers mount."""
    raw = os.fspath(value)
    if _URI.match(raw):
        raise ValueError(
            f"{what} {raw!r} is a URI; scale reads and writes files by path: pass a local path, or a "
            "folder of a filesystem every worker mounts at the same path"
        )
    return Path(os.path.abspath(Path(raw).expanduser()))


def file_kind(path: Path) -> str:
    """``text``, ``jsonl`` or ``parquet`` from the file's suffix, or an InputError naming the file."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(
        f"{path}: unknown input format {suffix or '(no suffix)'}; use one of "
        f"{', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def plan_partitions(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike, *, column: str = "text", partition_rows: int = 100_000
) -> list[Partition]:
    """Split the inputs into partitions of at most ``partition_rows`` rows; checks every file and its column first."""
    if isinstance(partition_rows, bool) or not isinstance(partition_rows, int) or partition_rows < 1:
        raise ValueError(f"partition_rows must be a positive integer; got {partition_rows!r}")
    if not isinstance(column, str):  # recorded in the manifest, which a resume and read_vectors check as a string
        raise ValueError(f"column must be a str (the text's field or column name); got {column!r}")
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)  # a generator too, read once
    if not inputs:
        raise InputError("no input files given")
    planned: list[tuple[str, str, int, int, int, int, int, int, int, int, str]] = []
    range_digests: list[str] = []
    next_id = 0
    for raw in inputs:
        path = local_path(raw, "input")
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a file: pass the files in it (e.g. {path / '*.parquet'})")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        kind = file_kind(path)
        size, mtime_ns = file_stat(path)
        digest = _RangeDigests(hashlib.sha256())
        ranges = _file_ranges(path, kind, column, partition_rows, digest)
        sha256 = digest.whole.hexdigest()
        if len(digest.ranges) != len(ranges):
            raise RuntimeError(f"{path}: {len(ranges)} partitions planned but {len(digest.ranges)} range digests")
        for (start, n, byte_start, byte_end, first_line), range_sha256 in zip(ranges, digest.ranges):
            planned.append(
                (str(path.resolve()), kind, start, n, next_id, byte_start, byte_end, first_line, size, mtime_ns, sha256)
            )
            range_digests.append(range_sha256)
            next_id += n
    return [
        Partition(index, *fields, n_partitions=len(planned), range_sha256=range_digests[index])
        for index, fields in enumerate(planned)
    ]


def _file_ranges(
    path: Path, kind: str, column: str, size: int, digest: _RangeDigests
) -> list[tuple[int, int, int, int, int]]:
    """(first row, rows, byte start, byte end, first line) per partition of one file of ``kind``; ``digest`` is fed
    the whole file and keeps each partition's digest (see :class:`_RangeDigests`)."""
    if kind == "parquet":
        ranges = [(start, n, 0, 0, 0) for start, n in _row_ranges(_parquet_rows(path, column), size)]
        _feed(path, digest.whole)
        if ranges:
            with open(path, "rb") as handle:
                digest.ranges = _parquet_digests(handle, column, [(start, n) for start, n, *_ in ranges])
        return ranges
    if kind == "jsonl":
        return _jsonl_ranges(path, column, size, digest)
    return [(start, n, lo, hi, start) for start, n, lo, hi in _line_ranges(path, size, digest)]


class _RangeDigests:
    """A hashlib-like object fed a file's bytes in order (``update``): it feeds them to ``whole`` and keeps in
    ``ranges`` the SHA-256 (hex) of each partition's byte range, the ranges tiling the file from byte 0 and each ended
    by ``cut(its end)`` as planning finds it, in the same pass. Planning finds a range's end in bytes already fed, and
    never before the last byte of those fed before the latest ``update`` (:func:`_marked_blocks` holds back a ``\r``
    that may begin a ``\r\n``): all else is hashed as it comes, so at most about one block is held."""

    def __init__(self, whole: Any) -> None:
        self.whole = whole
        self.ranges: list[str] = []
        self._range = hashlib.sha256()
        self._pending: list[memoryview] = []  # bytes fed and not yet hashed, from offset self._hashed on
        self._hashed = 0
        self._fed = 0

    def update(self, block: bytes) -> None:
        self.whole.update(block)
        self._hash_to(self._fed - 1)
        self._pending.append(memoryview(block))
        self._fed += len(block)

    def cut(self, end: int) -> None:
        """End the current range at byte ``end`` (exclusive) and start the next there."""
        if not self._hashed <= end <= self._fed:
            raise RuntimeError(f"a partition ending at byte {end} of bytes {self._hashed}-{self._fed}")
        self._hash_to(end)
        self.ranges.append(self._range.hexdigest())
        self._range = hashlib.sha256()

    def _hash_to(self, end: int) -> None:
        while self._hashed < end:
            piece = self._pending[0]
            take = min(len(piece), end - self._hashed)
            self._range.update(piece[:take])
            self._hashed += take
            if take == len(piece):
                self._pending.pop(0)
            else:
                self._pending[0] = piece[take:]


def _parquet_digests(handle: Any, column: str, ranges: Sequence[tuple[int, int]]) -> list[str]:
    """The SHA-256 (hex) of what reading each ``(first row, rows)`` of ``ranges`` from the Parquet file open as
    ``handle`` depends on: the footer (schema, row-group layout, statistics) and the chunks of ``column`` in the row
    groups that hold those rows. Each row group's chunks are hashed once, however many ranges share it."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(handle).metadata
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(size - 8)
    footer_length = int.from_bytes(handle.read(4), "little")
    footer_start = max(0, size - 8 - footer_length)
    footer = hashlib.sha256(_read_span(handle, footer_start, size - footer_start)).digest()
    groups: dict[int, bytes] = {}
    digests = []
    for first, n in ranges:
        digest = hashlib.sha256(footer)
        for group, _ in _row_groups(meta, first, n):
            if group not in groups:
                groups[group] = _chunk_digest(handle, meta.row_group(group), column)
            digest.update(groups[group])
        digests.append(digest.hexdigest())
    return digests


def _row_groups(meta: Any, first: int, n: int) -> list[tuple[int, int]]:
    """``(row group, its first row)`` of the row groups of a Parquet file's metadata that hold some of rows
    ``[first, first + n)``."""
    found, row = [], 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if row + rows > first and row < first + n:
            found.append((group, row))
        row += rows
    return found


def _chunk_digest(handle: Any, group: Any, column: str) -> bytes:
    """The SHA-256 of the bytes of ``column``'s chunks (its leaf columns) in one row group, from where the reader
    starts (the dictionary page, else the first data page) for their compressed size."""
    digest = hashlib.sha256()
    for leaf in range(group.num_columns):
        chunk = group.column(leaf)
        if chunk.path_in_schema != column and not chunk.path_in_schema.startswith(column + "."):
            continue
        start = chunk.data_page_offset
        if chunk.has_dictionary_page and 0 < (chunk.dictionary_page_offset or 0) < start:
            start = chunk.dictionary_page_offset
        digest.update(_read_span(handle, start, chunk.total_compressed_size))
    return digest.digest()


def _read_span(handle: Any, start: int, length: int) -> bytes:
    handle.seek(start)
    return bytes(handle.read(length))


def _blocks(path: str | os.PathLike, digest: Any) -> Iterator[bytes]:
    """The file's bytes in blocks of ``_READ_BLOCK``, each fed to ``digest`` (a hashlib object) as it is read."""
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
            yield block


def _feed(path: str | os.PathLike, digest: Any) -> Any:
    """``digest`` (a hashlib object), fed the whole file."""
    for _ in _blocks(path, digest):
        pass
    return digest


def _marked_blocks(path: Path, digest: Any) -> Iterator[bytes]:
    """The file's bytes in blocks (fed to ``digest``) that never split a ``\r\n``, each line end (``\n``, ``\r\n``
    or a lone ``\r``) marked by a ``\n`` as its last byte, so offsets stay the file's (a ``\r\n`` may read `` \n``)."""
    carry = b""
    for raw in _blocks(path, digest):
        block = carry + raw
        carry = block[-1:] if block.endswith(b"\r") else b""  # it may be the first half of a \r\n
        block = block[: len(block) - len(carry)]
        if block.count(b"\r") != block.count(b"\r\n"):  # a lone \r (\r\n already ends in \n): mark it
            block = block.replace(b"\r\n", b" \n").replace(b"\r", b"\n")
        if block:
            yield block
    if carry:
        yield b"\n"


def _marked_lines(path: Path, digest: Any) -> Iterator[bytes]:
    """The file's lines as :func:`_marked_blocks` marks them: each ends in ``\n`` (the last may not) and is as long as
    the line in the file."""
    rest = b""
    for block in _marked_blocks(path, digest):
        lines = (rest + block).splitlines(keepends=True)
        rest = lines.pop() if not lines[-1].endswith(b"\n") else b""
        yield from lines
    if rest:
        yield rest


def _row_ranges(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def _parquet_rows(path: Path, column: str) -> int:
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-Parquet bytes
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    names = handle.schema_arrow.names
    if column not in names:
        raise InputError(f"{path}: no column {column!r} (columns: {', '.join(names) or 'none'}); pass column=/--column")
    kind = handle.schema_arrow.field(column).type
    if not is_string_type(kind):
        raise InputError(
            f"{path}: column {column!r} is of type {kind}, not a string column; pass column=/--column "
            "naming the text column"
        )
    return int(handle.metadata.num_rows)


def is_string_type(kind: Any) -> bool:
    """Whether a pyarrow type holds strings (plain, large, view, or dictionary-encoded strings)."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    is_view = getattr(pa.types, "is_string_view", None)  # pyarrow 16 on; the scale extra allows 15
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or (is_view is not None and is_view(kind)))


def _jsonl_ranges(path: Path, column: str, size: int, digest: _RangeDigests) -> list[tuple[int, int, int, int, int]]:
    """(first row, rows, byte start, byte end, first line) per partition of a JSONL file, whose rows are its non-blank
    lines; checks the first row's JSON and field."""
    ranges = []
    rows = start_row = start_byte = start_line = offset = 0
    for number, line in enumerate(_marked_lines(path, digest)):
        offset += len(line)
        if number == 0:
            line = line.removeprefix(_BOM)
        if not line.strip():
            continue
        if rows == 0:
            _json_text(line, path, number + 1, column)
        rows += 1
        if rows - start_row == size:
            ranges.append((start_row, size, start_byte, offset, start_line))
            digest.cut(offset)
            start_row, start_byte, start_line = rows, offset, number + 1
    if rows > start_row:
        ranges.append((start_row, rows - start_row, start_byte, offset, start_line))
        digest.cut(offset)
    return ranges


def _line_ranges(path: Path, size: int, digest: _RangeDigests) -> list[tuple[int, int, int, int]]:
    """(first row, rows, byte start, byte end) per partition of a line-based file, in one streaming pass (fed to
    ``digest``, cut at each partition's end)."""
    ranges = []
    row = 0
    start_row, start_byte = 0, 0
    offset = 0
    last_byte = b"\n"
    for block in _marked_blocks(path, digest):
        pos = 0
        while True:
            needed = size - (row - start_row)
            found = _nth_newline(block, pos, needed)
            if found < 0:
                row += block.count(b"\n", pos)
                break
            row = start_row + size
            end = offset + found + 1
            ranges.append((start_row, size, start_byte, end))
            digest.cut(end)
            start_row, start_byte, pos = row, end, found + 1
        offset += len(block)
        last_byte = block[-1:]
    if last_byte != b"\n":  # a last line without its newline still counts
        row += 1
    if row > start_row:
        ranges.append((start_row, row - start_row, start_byte, offset))
        digest.cut(offset)
    return ranges


def _nth_newline(block: bytes, pos: int, n: int) -> int:
    """Index of the n-th newline at or after ``pos`` in ``block``, or -1 when the block holds fewer."""
    if block.count(b"\n", pos) < n:
        return -1
    found = pos - 1
    for _ in range(n):
        found = block.index(b"\n", found + 1)
    return found


def _json_text(line: bytes, path: Path, number: int, column: str) -> str:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}, line {number}: not valid JSON: {exc}") from exc
    if not isinstance(record, dict) or column not in record:
        raise InputError(f"{path}, line {number}: no field {column!r}; pass column=/--column")
    text = record[column]
    if not isinstance(text, str):
        raise InputError(f"{path}, line {number}: field {column!r} is {type(text).__name__}, not a string")
    return text


def read_partition(partition: Partition, column: str = "text") -> list[str]:
    """The partition's texts, in row order (a text line loses its line ending; a blank text line is an empty text, a
    blank JSONL line no row); an InputError when the file changed since the partition was planned: its size or
    modification time, or (even when those were kept, as ``cp -p`` keeps them) the bytes read, checked against the
    partition's planned ``range_sha256`` before any is decoded."""
    path = Path(partition.path)
    _check_unchanged(partition)
    if partition.kind == "parquet":
        return _read_parquet_rows(path, column, partition.first_row, partition.n_rows, partition)
    with open(path, "rb") as handle:
        handle.seek(partition.byte_start)
        data = handle.read(partition.byte_end - partition.byte_start)
    if partition.range_sha256 is not None and hashlib.sha256(data).hexdigest() != partition.range_sha256:
        _refuse_changed(partition, f"bytes {partition.byte_start}-{partition.byte_end}")
    lines = data.splitlines()  # bytes split at \n, \r\n and a lone \r only: Python's universal newlines
    if partition.byte_start == 0 and lines:  # the file's first line (as refine's corpus reader, utf-8-sig)
        lines[0] = lines[0].removeprefix(_BOM)
    numbered = list(enumerate(lines, partition.first_line + 1))
    if partition.kind == "jsonl":
        numbered = [(number, line) for number, line in numbered if line.strip()]
    if len(numbered) != partition.n_rows:
        raise InputError(
            f"{path} changed since the run was planned: expected {partition.n_rows} rows at byte "
            f"{partition.byte_start}, found {len(numbered)}"
        )
    if partition.kind == "jsonl":
        return [_json_text(line, path, number, column) for number, line in numbered]
    try:
        return [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text near row {partition.first_row}: {exc}") from exc


def _check_unchanged(partition: Partition) -> None:
    """An InputError naming the file when its size or modification time differ from the planned ones."""
    if partition.file_bytes is None and partition.file_mtime_ns is None:
        return
    try:
        now = file_stat(partition.path)
    except FileNotFoundError:
        raise InputError(f"{partition.path}: the file is gone since the run was planned") from None
    if now != (partition.file_bytes, partition.file_mtime_ns):
        raise InputError(
            f"{partition.path} changed since the run was planned (its size or modification time "
            "differ): was it edited during the run?"
        )


def _refuse_changed(partition: Partition, what: str) -> None:
    """The InputError of a partition whose bytes differ from the planned ones though its file kept its size and time."""
    raise InputError(
        f"{partition.path} changed since the run was planned ({what} of partition {partition.name} differ from "
        "the planned ones though its size and modification time are the same: was it replaced during the run, e.g. "
        "by cp -p?)"
    )


def _read_parquet_rows(path: Path, column: str, first: int, n: int, partition: Partition | None = None) -> list[str]:
    """Rows ``[first, first + n)`` of ``column``; with a ``partition`` that has a ``range_sha256``, its footer and
    chunks are checked first (see :func:`_parquet_digests`), from the very handle the rows are then read from."""
    import pyarrow.parquet as pq

    with open(path, "rb") as raw:
        if partition is not None and partition.range_sha256 is not None:
            try:
                digests = _parquet_digests(raw, column, [(first, n)])
            except Exception as exc:  # pyarrow's error for bytes that are no Parquet footer any more
                raise InputError(f"{path} changed since the run was planned: no longer a readable Parquet file "
                                 f"({exc})") from exc
            if digests != [partition.range_sha256]:
                _refuse_changed(partition, "the footer or the column chunks")
            raw.seek(0)
        handle = pq.ParquetFile(raw)
        texts: list[str] = []
        for group, row in _row_groups(handle.metadata, first, n):
            values = handle.read_row_group(group, columns=[column]).column(0).to_pylist()
            texts.extend(values[max(first - row, 0) : first + n - row])
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{path}, row {first + k}: column {column!r} holds {type(text).__name__}, not a string")
    return texts
