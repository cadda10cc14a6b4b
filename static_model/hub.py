"""Hugging Face Hub ids: a model named ``org/name`` (or ``name``) is looked up in the local hub cache first, then
downloaded for users who are online, as Model2Vec's and sentence-transformers' ``from_pretrained`` do.

``huggingface_hub`` comes with ``tokenizers``, so this adds no dependency. A local path always wins: only a name that
is no file or folder here and has the shape of a hub id is looked up. What is fetched is a snapshot folder in the
hub cache, read afterwards like any other folder (``static_model.safe_read`` follows its links into the cache only).
``revision`` (a branch, tag or commit) and ``token`` (a private or gated repository) go to every ``huggingface_hub``
call, as in sentence-transformers; a local path ignores them, as there.

A hub id's JSON files come first: a transformer (a teacher to distill, not a static model) is refused from them,
before its weights are downloaded.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

from static_model import atomic

OFFLINE_REASON = "the Hugging Face Hub is offline here"

# The files a model folder is read from (every format static_model reads: its own, Model2Vec's and
# sentence-transformers' nested StaticEmbedding, a classifier's head); a repository's ONNX, PyTorch or TF weights
# are left on the Hub.
MODEL_FILE_PATTERNS = ("*.json", "*.safetensors")
# What decides whether a repository holds a static model at all (config.json, modules.json): fetched first.
DECIDE_FILE_PATTERNS = ("*.json",)
# Where a static model's table is (ours and Model2Vec's; sentence-transformers' nested StaticEmbedding).
_TABLE_FILES = ("model.safetensors", "0_StaticEmbedding/model.safetensors")
# config.json ``model_type`` of static models (ours, Model2Vec's): never a transformer.
_STATIC_MODEL_TYPES = ("static_model", "model2vec")


class NotAStaticModelError(FileNotFoundError, ValueError):
    """A hub id names a transformer (a teacher to distill first), not a static model: no static model folder can be
    had from it. A ``FileNotFoundError`` like any hub id that gives no model folder, and a ``ValueError`` like the
    error reading a local teacher folder gives."""

# ``name`` or ``org/name``: letters, digits, '_', '.', '-', each part starting with a letter or digit; no '..'
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def is_hub_id(name: object) -> bool:
    """``name`` has the shape of a hub id (``org/name`` or ``name``), not of a path such as ``./x``, ``/x`` or ``~``."""
    return isinstance(name, str) and bool(_HUB_ID_RE.match(name)) and ".." not in name


def check_revision(revision: object) -> str | None:
    """``revision`` (a branch, tag or commit of a hub repository) as given, or a ``TypeError``/``ValueError`` naming
    the argument: ``None`` or a non-empty string."""
    if revision is None:
        return None
    if not isinstance(revision, str):
        raise TypeError(f"revision must be a str (a branch, tag or commit) or None, not {type(revision).__name__}")
    if not revision.strip():
        raise ValueError("revision must be a branch, tag or commit name; got an empty string")
    return revision


def check_token(token: object) -> str | bool | None:
    """``token`` as huggingface_hub takes it (a str; ``True``: the saved login; ``False``: none; ``None``:
    ``HF_TOKEN`` or the saved login), or a ``TypeError``/``ValueError`` naming the argument (never showing it)."""
    if token is None or isinstance(token, bool):
        return token
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, a bool or None, not {type(token).__name__}")
    if not token.strip():
        raise ValueError("token must be a Hugging Face access token; got an empty string (pass None to use HF_TOKEN "
                         "or the saved login)")
    return token


def snapshot(hub_id: str, *, allow_download: bool = True, allow_patterns: Sequence[str] | None = None,
             ignore_patterns: Sequence[str] | None = None, revision: str | None = None,
             token: str | bool | None = None, cache_first: bool = True) -> Path | str:
    """The hub cache's snapshot folder of ``hub_id`` at ``revision`` (from the cache unless ``cache_first`` is off,
    else downloaded when ``allow_download``), or a short reason why there is none: not a hub id, huggingface_hub
    missing, offline (``OFFLINE_REASON`` first), an unknown or gated repository or revision. ``revision`` and
    ``token`` go to every ``snapshot_download`` call."""
    if not is_hub_id(hub_id):
        return "not a valid hub id"
    try:
        import huggingface_hub
    except ImportError:
        return "huggingface_hub is not installed"
    allow = list(allow_patterns) if allow_patterns is not None else None
    ignore = list(ignore_patterns) if ignore_patterns is not None else None
    if cache_first:
        try:
            return Path(huggingface_hub.snapshot_download(hub_id, local_files_only=True, allow_patterns=allow,
                                                          ignore_patterns=ignore, revision=revision, token=token))
        except Exception:
            pass
    if not allow_download:
        return "not in the local hub cache and downloads are off"
    try:
        return Path(huggingface_hub.snapshot_download(hub_id, allow_patterns=allow, ignore_patterns=ignore,
                                                      revision=revision, token=token))
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


def is_local(given: Path) -> bool:
    """Something is at ``given``, or the old version that a save with two renames (between them, or killed there)
    moved aside from it, which loads read there (:func:`static_model.atomic.readable_path`): a local folder, never a
    hub id."""
    if os.path.lexists(given):
        return True
    try:
        return os.path.lexists(atomic.readable_path(given))
    except OSError:  # its folder cannot be listed (an unreadable working folder): no old version to be found there
        return False


def model_folder(path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None) -> Path:
    """``path`` (``~`` expanded) when something is there or it is no hub id; else the hub snapshot of the model it
    names, at ``revision``, fetched with ``token`` (both ignored for a local path, as in sentence-transformers).

    A hub id that cannot be had is a ``FileNotFoundError`` saying why and what to pass; one that names a transformer
    (a teacher) is a :class:`NotAStaticModelError`, decided from its JSON files before any weights are fetched."""
    revision = check_revision(revision)
    token = check_token(token)
    given = Path(os.path.expanduser(os.fspath(path)))
    name = path if isinstance(path, str) else None  # a Path object is a path, as in sentence-transformers
    if name is None or is_local(given) or not is_hub_id(name):
        return given
    at = f" at revision {revision!r}" if revision is not None else ""
    found = snapshot(name, allow_patterns=DECIDE_FILE_PATTERNS, revision=revision, token=token)
    if isinstance(found, Path):
        evidence = transformer_evidence(found)
        if evidence is not None:
            raise NotAStaticModelError(
                f"{name!r}{at} on the Hugging Face Hub is a transformer ({evidence}), not a static model: this is a "
                f"teacher model; distill it first (`python -m distill {name} --output DIR`, the distill extra); no "
                "weights were downloaded to find this out")
        if not any(os.path.exists(found / file) for file in _TABLE_FILES):  # the JSON files only, so far
            found = snapshot(name, allow_patterns=MODEL_FILE_PATTERNS, revision=revision, token=token,
                             cache_first=False)
    if isinstance(found, Path):
        return found
    raise FileNotFoundError(f"No model folder at {given}, and {name!r}{at} could not be had from the Hugging Face Hub "
                            f"({found}); pass a local model folder (written by save_pretrained, Model2Vec or "
                            "sentence-transformers), or the hub id while online")


def refetch(path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None) -> Path | None:
    """For a hub id that is no local path: its snapshot downloaded again, not taken from the cache (the files
    another tool's download left out of a cached snapshot, e.g. a classifier pipeline's head after Model2Vec fetched
    the table alone, are fetched); ``None`` for a local path, or when the hub cannot be reached (offline)."""
    if not isinstance(path, str) or is_local(Path(os.path.expanduser(path))) or not is_hub_id(path):
        return None
    found = snapshot(path, allow_patterns=MODEL_FILE_PATTERNS, revision=revision, token=token, cache_first=False)
    return found if isinstance(found, Path) else None


def transformer_evidence(folder: Path) -> str | None:
    """What in ``folder``'s JSON files shows a transformer rather than a static model (its ``modules.json`` lists a
    ``Transformer`` module and no ``StaticEmbedding``, or its ``config.json`` is a transformers config), or ``None``
    when nothing does (the folder is then read, and any other problem named, as usual)."""
    modules = _json_or_none(folder, "modules.json", list)
    if isinstance(modules, list):
        kinds = [m["type"] for m in modules if isinstance(m, dict) and isinstance(m.get("type"), str)]
        if any(kind.rsplit(".", 1)[-1] == "StaticEmbedding" for kind in kinds):
            return None
        transformer = next((kind for kind in kinds if kind.rsplit(".", 1)[-1] == "Transformer"), None)
        if transformer is not None:
            return f"its modules.json lists {transformer}"
    config = _json_or_none(folder, "config.json", dict)
    if isinstance(config, dict):
        model_type = config.get("model_type")
        if isinstance(model_type, str) and model_type not in _STATIC_MODEL_TYPES and (
                "hidden_size" in config or "num_hidden_layers" in config):
            return f"its config.json is a transformers config, model_type {model_type!r}"
    return None


def _json_or_none(folder: Path, name: str, kind: type) -> object:
    """``folder/name`` parsed (read as every model file is, ``static_model.safe_read``), or ``None`` when it is
    missing or unreadable: the read proper names such a file's problem."""
    from static_model.safe_read import read_json

    if not os.path.lexists(folder / name):
        return None
    try:
        return read_json(folder / name, folder, kind=kind)
    except (OSError, ValueError):
        return None
