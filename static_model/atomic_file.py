"""Write one file so that it is always whole, the old version or the new one, even under ``kill -9``.

The content is streamed into a temporary file beside the target, ``.NAME.tmp-PID-RANDOM``, flushed to disk and then
renamed over the target (``os.replace``, atomic on POSIX and Windows), and the folder is flushed. A writer killed
mid-way leaves only its temporary: never a truncated target. Temporaries untouched for an hour were left by a killed
writer (a live one writes continuously); the next write of the same file removes them, and
:func:`remove_abandoned_temporaries` clears a whole folder. Time, not the writer's process id, decides: the folder
may be shared by machines or containers whose process ids mean nothing here.

Whole model folders are replaced by :mod:`static_model.atomic`; this module is for single files (reports, cache
chunks, manifests, data partitions).
"""

from __future__ import annotations

import glob
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from static_model.atomic import fsync_dir

TEMPORARY_TAG = ".tmp-"
# A temporary is written in one go (seconds to minutes); one untouched for this long belongs to a killed writer.
ABANDONED_AFTER_SECONDS = 3600.0


def file_identity(path: str | os.PathLike) -> tuple[int, int, int] | None:
    """What changes when an atomic write or save puts another file or folder at ``path`` (device, inode, ctime in ns;
    ``None``: nothing there, or it cannot be looked at)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_ctime_ns


def temporary_path(path: Path) -> Path:
    """A new, unique temporary name beside ``path``: ``.NAME.tmp-PID-RANDOM`` (hidden, and never a match for the
    folder's own file patterns)."""
    return path.parent / f".{path.name}{TEMPORARY_TAG}{os.getpid()}-{uuid.uuid4().hex[:12]}"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, keep_existing: bool = False) -> bool:
    """Write ``path`` whole or not at all: ``write(handle)`` streams the content into a temporary file, which is
    flushed to disk and renamed into place. Parent folders are made; the file gets the umask's permissions.

    With ``keep_existing`` an existing ``path`` is never replaced (a hard link, not a rename: of two writers that
    race, the first one's file stays) and ``False`` is returned when it was there. If ``write`` raises, the
    temporary is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temporaries(target.parent, glob.escape(target.name))
    tmp = temporary_path(target)
    written = True
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            written = _link_unless_exists(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(target.parent)
    return written


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, keep_existing: bool = False) -> bool:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda handle: handle.write(data), keep_existing=keep_existing)


def _link_unless_exists(tmp: Path, target: Path) -> bool:
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: the small race of check-then-rename is accepted there
        if target.exists():
            return False
        os.replace(tmp, target)
    return True


def remove_abandoned_temporaries(folder: str | os.PathLike, name: str = "*",
                                 older_than: float = ABANDONED_AFTER_SECONDS) -> int:
    """Delete the temporaries of files named ``name`` (a glob; every file by default) in ``folder`` that are
    untouched for ``older_than`` seconds, so never one a live writer is writing; the number deleted."""
    removed = 0
    now = time.time()
    for tmp in Path(folder).glob(f".{name}{TEMPORARY_TAG}*"):
        try:
            if now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # another writer renamed or removed it meanwhile
            continue
    return removed
