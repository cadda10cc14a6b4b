"""Hugging Face Hub ids: a model named ``org/name`` (or ``name``) is looked up in the local hub cache first, then
downloaded for users who are online, as Model2Vec's and sentence-transformers' ``from_pretrained`` do.

``huggingface_hub`` comes with ``tokenizers``, so this adds no dependency. A local path always wins: only a name that
is no file or folder here and has the shape of a hub id is looked up. What is fetched is a snapshot folder in the
hub cache, read afterwards like any other folder (``static_model.safe_read`` follows its links into the cache only).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

OFFLINE_REASON = "the Hugging Face Hub is offline here"

# The files a model folder is read from (every format static_model reads: its own, Model2Vec's and
# sentence-transformers' nested StaticEmbedding, a classifier's head); a repository's ONNX, PyTorch or TF weights
# are left on the Hub.
MODEL_FILE_PATTERNS = ("*.json", "*.safetensors")

# ``name`` or ``org/name``: letters, digits, '_', '.', '-', each part starting with a letter or digit; no '..'
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def is_hub_id(name: object) -> bool:
    """``name`` has the shape of a hub id (``org/name`` or ``name``), not of a path such as ``./x``, ``/x`` or ``~``."""
    return isinstance(name, str) and bool(_HUB_ID_RE.match(name)) and ".." not in name


def snapshot(hub_id: str, *, allow_download: bool = True, allow_patterns: Sequence[str] | None = None,
             ignore_patterns: Sequence[str] | None = None) -> Path | str:
    """The hub cache's snapshot folder of ``hub_id`` (from the cache, else downloaded when ``allow_download``), or a
    short reason why there is none: not a hub id, huggingface_hub missing, offline (``OFFLINE_REASON`` first), an
    unknown or gated repository."""
    if not is_hub_id(hub_id):
        return "not a valid hub id"
    try:
        import huggingface_hub
    except ImportError:
        return "huggingface_hub is not installed"
    allow = list(allow_patterns) if allow_patterns is not None else None
    ignore = list(ignore_patterns) if ignore_patterns is not None else None
    try:
        return Path(huggingface_hub.snapshot_download(hub_id, local_files_only=True, allow_patterns=allow,
                                                      ignore_patterns=ignore))
    except Exception:
        pass
    if not allow_download:
        return "not in the local hub cache and downloads are off"
    try:
        return Path(huggingface_hub.snapshot_download(hub_id, allow_patterns=allow, ignore_patterns=ignore))
    except Exception as exc:  # offline, unknown repository, gated repository, ...
        reason = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {reason[0] if reason else ''}"
        offline = offline_cause(exc)
        if offline is not None:
            return f"{OFFLINE_REASON} ({offline}; {detail})"
        return detail


def offline_cause(exc: BaseException) -> str | None:
    """Why ``exc`` (from ``snapshot_download``) means the Hub cannot be reached at all, or ``None`` when it can be
    (an unknown or gated repository): ``HF_HUB_OFFLINE`` is set, or the connection failed (DNS, refused, timeout)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        kind = type(cause).__name__
        if kind == "OfflineModeIsEnabled":
            return "HF_HUB_OFFLINE is set"
        if isinstance(cause, (socket.gaierror, ConnectionError, TimeoutError)) or kind in (
                "ConnectError", "ConnectTimeout", "ConnectionError", "Timeout", "ReadTimeout", "NameResolutionError"):
            return "no network connection to huggingface.co"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if any(s in text for s in ("Name or service not known", "Temporary failure in name resolution",
                               "Failed to establish a new connection", "Network is unreachable",
                               "ConnectError", "Connection refused", "offline mode")):
        return "no network connection to huggingface.co"
    return None


def model_folder(path: str | os.PathLike) -> Path:
    """``path`` (``~`` expanded) when something is there or it is no hub id; else the hub snapshot of the model it
    names. A hub id that cannot be had is a ``FileNotFoundError`` saying why and what to pass instead."""
    given = Path(os.path.expanduser(os.fspath(path)))
    name = path if isinstance(path, str) else None  # a Path object is a path, as in sentence-transformers
    if name is None or os.path.lexists(given) or not is_hub_id(name):
        return given
    found = snapshot(name, allow_patterns=MODEL_FILE_PATTERNS)
    if isinstance(found, Path):
        return found
    raise FileNotFoundError(f"No model folder at {given}, and {name!r} could not be had from the Hugging Face Hub "
                            f"({found}); pass a local model folder (written by save_pretrained, Model2Vec or "
                            "sentence-transformers), or the hub id while online")
