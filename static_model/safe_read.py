"""Read files of an untrusted model folder: regular files only, sizes capped before reading, every error names the file.

A model folder is input from strangers (a download, a cloned repository), so nothing here trusts it:

* a file must be a regular file; a FIFO, a device or a folder is refused before it is opened (and opening uses
  ``O_NONBLOCK``, so a FIFO swapped in meanwhile cannot hang the load either);
* a symbolic link is followed only to a regular file inside the model folder, or, for a Hugging Face cache snapshot
  (``.../snapshots/REVISION``), inside that repository's cache folder (whose ``blobs`` the snapshot links to);
* sizes are checked against caps before anything is read; JSON nested too deep is an error, not a crash;
* a safetensors file is parsed here: the header's size, dtypes, shapes and offsets are checked before any tensor is
  read, and only the tensors asked for are read.

Errors: ``FileNotFoundError`` (missing), ``PermissionError`` (not readable, with the file's mode and owner) and
``ValueError`` (anything else); each message starts with the file's path.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

MAX_JSON_BYTES = 16 * 2**20  # config.json, modules.json, head_config.json
MAX_TOKENIZER_BYTES = 1 * 2**30  # the largest tokenizer.json files on the Hub are a few hundred MB
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the safetensors library's own limit

_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def check_regular_file(path: Path, folder: Path) -> os.stat_result:
    """``path``'s stat if it is a regular file (a link only to one inside ``folder``); else a clear error."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    except PermissionError:
        raise PermissionError(f"{path} cannot be read: permission denied on its folder") from None
    real = Path(os.path.realpath(path))  # a linked file, or a file in a linked subfolder (0_StaticEmbedding)
    if not any(real == root or root in real.parents for root in _allowed_roots(folder)):
        how = "is a symbolic link to" if stat.S_ISLNK(link.st_mode) else "lies, through a linked folder, in"
        raise ValueError(f"{path} {how} {real}, outside the model folder; refusing to read it")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is a broken symbolic link (to {real})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file (it is {_kind(info.st_mode)}); refusing to read it")
    return info


def _allowed_roots(folder: Path) -> list[Path]:
    real = Path(os.path.realpath(folder))
    roots = [real]
    lexical = Path(os.path.abspath(folder))
    for candidate in (lexical, real):  # .../models--org--name/snapshots/REV → .../models--org--name
        if candidate.parent.name == "snapshots":
            roots.append(Path(os.path.realpath(candidate.parent.parent)))
    return roots


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_checked(path: Path, folder: Path) -> tuple[Any, int]:
    """An open binary file and its size, after :func:`check_regular_file`; ``PermissionError`` says why."""
    info = check_regular_file(path, folder)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except PermissionError:
        raise PermissionError(
            f"{path} cannot be read: permission denied (mode {stat.filemode(info.st_mode)}, owner uid "
            f"{info.st_uid}; this process runs as uid {_uid()})"
        ) from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    handle = os.fdopen(fd, "rb")
    opened = os.fstat(handle.fileno())
    if not stat.S_ISREG(opened.st_mode):  # swapped for something else after the check
        handle.close()
        raise ValueError(f"{path} is not a regular file (it is {_kind(opened.st_mode)}); refusing to read it")
    return handle, opened.st_size


def _uid() -> Any:
    return os.geteuid() if hasattr(os, "geteuid") else "?"


def read_bytes(path: Path, folder: Path, cap: int) -> bytes:
    """The whole file, if it is at most ``cap`` bytes."""
    handle, size = open_checked(path, folder)
    with handle:
        if size > cap:
            raise ValueError(f"{path} is {size:,} bytes, more than the {cap:,} a file of its kind may have")
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"{path} is more than the {cap:,} bytes a file of its kind may have")
    return data


def parse_json(data: bytes, path: Path) -> Any:
    """JSON text as Python values; bad UTF-8, bad JSON and too deep nesting are errors naming ``path``."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a model file") from None


def read_json(path: Path, folder: Path, kind: type = dict, cap: int = MAX_JSON_BYTES) -> Any:
    """A JSON object (or list) file of at most ``cap`` bytes."""
    value = parse_json(read_bytes(path, folder, cap), path)
    if not isinstance(value, kind):
        raise ValueError(f"{path} must hold a JSON {'object' if kind is dict else 'list'}, not {type(value).__name__}")  # noqa: TRY004 (file content)
    return value


def read_safetensors(path: Path, folder: Path, names: set[str] | None = None) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (only ``names`` when given), after checking its header against its size."""
    handle, size = open_checked(path, folder)
    with handle:
        entries = _read_header(handle, size, path)
        start = 8 + int.from_bytes(_read_exact(handle, 0, 8, path), "little")
        out = {}
        for name, (dtype, shape, begin, end) in entries.items():
            if names is not None and name not in names:
                continue
            array = np.empty(shape, dtype=np.dtype(dtype).newbyteorder("="))
            if end > begin:
                handle.seek(start + begin)
                if handle.readinto(array.reshape(-1).view(np.uint8).data) != end - begin:
                    raise ValueError(f"{path} is corrupt: tensor {name!r} is cut short")
            out[name] = array
    return out


def safetensors_names(path: Path, folder: Path) -> list[str]:
    """The tensor names in a safetensors file's header."""
    handle, size = open_checked(path, folder)
    with handle:
        return list(_read_header(handle, size, path))


def _read_exact(handle: Any, offset: int, count: int, path: Path) -> bytes:
    handle.seek(offset)
    data = handle.read(count)
    if len(data) != count:
        raise ValueError(f"{path} is corrupt or not a safetensors file: it ends after {offset + len(data)} bytes")
    return data


def _read_header(handle: Any, size: int, path: Path) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """name → (numpy dtype, shape, begin, end) with every offset inside the file and sizes that add up."""
    bad = f"{path} is corrupt or not a safetensors file"
    length = int.from_bytes(_read_exact(handle, 0, 8, path), "little")
    if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
        raise ValueError(f"{bad}: its header claims {length:,} bytes (the file has {size:,})")
    header = parse_json(_read_exact(handle, 8, length, path), path)
    if not isinstance(header, dict):
        raise ValueError(f"{bad}: the header is not a JSON object")  # noqa: TRY004 (file content)
    data_size = size - 8 - length
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _SAFETENSORS_DTYPES:
            dtype = info.get("dtype") if isinstance(info, dict) else info
            raise ValueError(f"{bad}: tensor {name!r} has an unsupported dtype {dtype!r}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise ValueError(f"{bad}: tensor {name!r} has an invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1] <= data_size):
            raise ValueError(f"{bad}: tensor {name!r} has offsets {offsets!r} outside the {data_size:,} data bytes")
        dtype = _SAFETENSORS_DTYPES[info["dtype"]]
        if math.prod(shape) * np.dtype(dtype).itemsize != offsets[1] - offsets[0]:
            raise ValueError(
                f"{bad}: tensor {name!r} of shape {shape} does not fill its {offsets[1] - offsets[0]:,} bytes")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    return entries


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62
