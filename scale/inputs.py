"""Input files → deterministic partitions of rows, and reading one partition's texts.

Formats, told apart by suffix: ``.txt`` (one text a line), ``.jsonl`` / ``.json`` (one JSON object a line, the text
under ``column``), ``.parquet`` (the text in ``column``). Partitions are contiguous row ranges of one file, so the
same inputs always give the same partitions and global row ids (rows numbered across files in the order given).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".text")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_BLOCK = 16 << 20


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

    @property
    def name(self) -> str:
        """The output file's name: the partition's index, zero-padded so names sort in row order."""
        return f"part-{self.index:06d}.parquet"


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
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise InputError("no input files given")
    partitions: list[Partition] = []
    next_id = 0
    for raw in inputs:
        path = Path(raw)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        kind = file_kind(path)
        if kind == "parquet":
            ranges = [(start, n, 0, 0) for start, n in _row_ranges(_parquet_rows(path, column), partition_rows)]
        else:
            if kind == "jsonl":
                _check_first_json_line(path, column)
            ranges = _line_ranges(path, partition_rows)
        for start, n, byte_start, byte_end in ranges:
            index = len(partitions)
            partitions.append(Partition(index, str(path.resolve()), kind, start, n, next_id, byte_start, byte_end))
            next_id += n
    return partitions


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
    return int(handle.metadata.num_rows)


def _check_first_json_line(path: Path, column: str) -> None:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                _json_text(line, path, number, column)
                return


def _line_ranges(path: Path, size: int) -> list[tuple[int, int, int, int]]:
    """(first row, rows, byte start, byte end) per partition of a line-based file, in one streaming pass."""
    ranges = []
    row = 0
    start_row, start_byte = 0, 0
    offset = 0
    last_byte = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BLOCK):
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
                start_row, start_byte, pos = row, end, found + 1
            offset += len(block)
            last_byte = block[-1:]
    if last_byte != b"\n":  # a last line without its newline still counts
        row += 1
    if row > start_row:
        ranges.append((start_row, row - start_row, start_byte, offset))
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
    """The partition's texts, in row order (a text line loses its line ending; a blank line is an empty text)."""
    path = Path(partition.path)
    if partition.kind == "parquet":
        return _read_parquet_rows(path, column, partition.first_row, partition.n_rows)
    with open(path, "rb") as handle:
        handle.seek(partition.byte_start)
        data = handle.read(partition.byte_end - partition.byte_start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != partition.n_rows:
        raise InputError(f"{path} changed since the run was planned: expected {partition.n_rows} lines at byte "
                         f"{partition.byte_start}, found {len(lines)}")
    if partition.kind == "jsonl":
        return [_json_text(line, path, partition.first_row + k + 1, column) for k, line in enumerate(lines)]
    try:
        return [line.decode("utf-8").removesuffix("\r") for line in lines]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text near row {partition.first_row}: {exc}") from exc


def _read_parquet_rows(path: Path, column: str, first: int, n: int) -> list[str]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    texts: list[str] = []
    row = 0
    for group in range(handle.num_row_groups):
        rows = handle.metadata.row_group(group).num_rows
        if row + rows > first and row < first + n:
            values = handle.read_row_group(group, columns=[column]).column(0).to_pylist()
            lo, hi = max(first - row, 0), min(first + n - row, rows)
            texts.extend(values[lo:hi])
        row += rows
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"{path}, row {first + k}: column {column!r} holds {type(text).__name__}, not a string")
    return texts
