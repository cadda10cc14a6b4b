"""Replace a folder so that it always holds a complete version, the old one or the new one, even under ``kill -9``.

The new folder is written beside the target as ``.NAME.tmp-PID-RANDOM`` and then swapped in:

* on Linux with one ``renameat2(RENAME_EXCHANGE)``: the target and the new folder trade places in one atomic step,
  so at every instant the target is the old folder or the new one; the old one then sits under the temporary name
  and is deleted;
* elsewhere (or on a file system without the exchange) with two renames, target → ``.NAME.old-PID-RANDOM`` and new →
  target. A crash between the two leaves no target; :func:`recover` (run by every save, and :func:`readable_path` for
  every load) finds the old folder and puts it back (a load reads it where it is and changes nothing on disk).

Leftovers of a killed save (``.NAME.tmp-*``, ``.NAME.old-*`` whose process is gone) are removed by the next save of
the same target.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_TAG = "tmp"
OLD_TAG = "old"
# Swaps a save with two renames tries while other saves of the same folder keep taking the place between them.
SWAP_ATTEMPTS = 20
_ACTIVE: set[Path] = set()  # staging folders of saves running in this process (never cleaned as stale)
_ACTIVE_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """A fork while another thread held the lock would leave it held in the child, whose saves would then hang; the
    child's own saves start with none running (the parent's staging folders belong to a live process, so they are
    not cleaned either)."""
    global _ACTIVE_LOCK
    _ACTIVE_LOCK = threading.Lock()
    _ACTIVE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def resolve_target(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded and symbolic links resolved; the current folder (or one holding it) is refused.

    Replacing a folder means renaming it; the folder a process runs in cannot be swapped out from under it.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    target = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    cwd = Path(os.path.realpath(os.getcwd()))
    if target == cwd or target in cwd.parents:
        raise ValueError(
            f"cannot save a model as {os.fspath(path)!r}: it is the current folder ({target}) or holds it, and a "
            "save replaces the whole folder; give the path of a new folder, e.g. 'my-model'"
        )
    return target


def leftovers(target: Path, tag: str) -> list[Path]:
    """The ``.NAME.<tag>-*`` folders beside ``target`` (temporaries or moved-aside old versions)."""
    prefix = f".{target.name}.{tag}-"
    try:
        names = os.listdir(target.parent)
    except (FileNotFoundError, NotADirectoryError):  # no folder there (or a file where one of its folders should be)
        return []
    return [target.parent / name for name in names if name.startswith(prefix)]


def readable_path(target: Path) -> Path:
    """Where to read ``target`` from: itself, or the old version that a save killed between its renames moved aside."""
    if os.path.lexists(target):
        return target
    olds = [(_mtime(p), p) for p in leftovers(target, OLD_TAG) if p.is_dir()]
    olds = [(mtime, p) for mtime, p in olds if mtime is not None]  # one a save just put back is gone
    return max(olds)[1] if olds else target


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def recover(target: Path) -> None:
    """Put back the old version if a save was killed between its two renames (the target is then missing)."""
    old = readable_path(target)
    if old != target:
        try:
            os.rename(old, target)
        except OSError as exc:  # another save put its folder there, or its owner took it back, meanwhile
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise


def clean_stale(target: Path) -> None:
    """Remove the temporaries and old versions beside ``target`` that no running save owns."""
    for path in leftovers(target, TMP_TAG) + leftovers(target, OLD_TAG):
        with _ACTIVE_LOCK:
            active = path in _ACTIVE
        if not active and not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)


def _owner_alive(path: Path) -> bool:
    """Whether the process named in ``.NAME.tag-PID-RANDOM`` still runs (unknown owners count as gone)."""
    pid_text = path.name.rsplit("-", 2)[-2] if path.name.count("-") >= 2 else ""
    if not pid_text.isdigit():
        return False  # written by an older version without a pid: a leftover
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # ours but not active: a save of this process that failed to clean up
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _staging(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:10]}"


@contextmanager
def atomic_folder(target: Path, check: Callable[[Path], object] | None = None, *,
                  replace: bool = True) -> Iterator[Path]:
    """Yield an empty folder beside ``target`` (already resolved and checked); on success it becomes ``target``.

    If the body raises, the folder is removed and ``target`` is untouched. ``check(target)`` runs again just before
    the swap (the body may take minutes): if it raises, the same. ``replace=False``: a ``target`` that another save
    (another thread or process) filled meanwhile is a ``FileExistsError``, never replaced.
    """
    with parents_made(target.parent):
        recover(target)
        clean_stale(target)
        # plain mkdir (not tempfile.mkdtemp, which makes it 0700): the folder gets the umask's permissions
        tmp = _staging(target, TMP_TAG)
        with _ACTIVE_LOCK:
            _ACTIVE.add(tmp)
        try:
            try:
                tmp.mkdir()
            except FileNotFoundError:  # a parent another save made was removed by its own failure meanwhile
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.mkdir()
            yield tmp
            fsync_dir(tmp)
            if check is not None:
                check(target)
            _swap_in(tmp, target, check, replace=replace)
            fsync_dir(target.parent)
        finally:
            try:
                if os.path.lexists(tmp):  # the failed new folder, or the old version the exchange left there
                    shutil.rmtree(tmp, ignore_errors=True)
            finally:
                with _ACTIVE_LOCK:
                    _ACTIVE.discard(tmp)


@contextmanager
def parents_made(folder: Path) -> Iterator[None]:
    """Make ``folder`` and its missing parents; if the body raises, remove again the ones made here that are still
    empty (a failed save leaves no empty folders behind), never one that was there before."""
    made: list[Path] = []
    try:
        for path in reversed([folder, *folder.parents]):  # the top first
            if not os.path.lexists(path):
                try:
                    path.mkdir()
                except FileExistsError:  # made meanwhile by another process: not ours to remove
                    continue
                made.append(path)
        yield
    except BaseException:
        remove_empty_folders(reversed(made))
        raise


def remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` (give the deepest first) that is empty; one that is not (someone wrote there
    meanwhile), or is gone, stays as it is."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            continue


def _swap_in(new: Path, target: Path, check: Callable[[Path], object] | None = None, *,
             replace: bool = True) -> None:
    """Make ``new`` the ``target``; afterwards ``new``'s path holds the old version (or nothing). ``replace=False``:
    only a missing or empty ``target`` is replaced (one rename, which never replaces a folder that holds files).
    ``check(target)`` runs again before a retry moves aside a folder that took the place meanwhile."""
    if not replace or not os.path.lexists(target):
        for _ in range(SWAP_ATTEMPTS):
            try:
                os.rename(new, target)
                return
            except OSError as exc:  # another save created the target meanwhile: swap with it instead
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if replace:
                    break
                if not _remove_if_empty(target):  # Windows: a rename never replaces a folder, not even an empty one
                    break
        if not replace:
            raise FileExistsError(f"{target} was filled by another save (or program) while this one ran, and "
                                  "was left as it is: pass overwrite=True to replace it") from None
    if os.environ.get("STATIC_MODEL_RENAME_PAIR") != "1" and exchange(new, target):  # the variable: to test the pair
        return
    for _ in range(SWAP_ATTEMPTS):
        old = _staging(target, OLD_TAG)
        with _ACTIVE_LOCK:
            _ACTIVE.add(old)
        try:
            try:
                os.rename(target, old)
            except FileNotFoundError:  # another save moved it aside, between its two renames: the place is free
                pass
            try:
                os.rename(new, target)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    _put_back(old, target)
                    raise
                # another save's folder took the place between the two renames (or its ``recover`` put this old
                # version back there): that one is newer than the old version set aside, dropped; swap again. A
                # folder another program put there (``check`` refuses it) is never moved: the save fails, and the
                # old version stays set aside, where loads read it once that place is free again
                if check is not None:
                    _check_occupant(check, target, old)
                shutil.rmtree(old, ignore_errors=True)
                continue
            except BaseException:
                _put_back(old, target)
                raise
            if os.path.lexists(old):
                os.rename(old, new)  # so that the caller deletes it with the rest
            return
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(old)
    raise FileExistsError(f"{target} was replaced by other saves each of the {SWAP_ATTEMPTS} times this save tried to "
                          "put its own version there; try the save again")


def _remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if it is an empty folder (or say it is gone); ``False`` if it holds entries or is a file."""
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            return False
        raise
    return True


def _check_occupant(check: Callable[[Path], object], target: Path, old: Path) -> None:
    """Run ``check`` on the folder that took ``target``'s place between a save's two renames; if it refuses it,
    the error names where the old version set aside is kept."""
    try:
        check(target)
    except Exception as exc:
        if not os.path.lexists(old):
            raise
        raise FileExistsError(f"{target} was taken by another program while this save replaced it, and was left as "
                              f"it is ({exc}); the model that was there before is kept at {old}") from exc


def _put_back(old: Path, target: Path) -> None:
    """Put the old version set aside back at ``target`` (a save that failed between its two renames)."""
    if os.path.lexists(old):
        os.rename(old, target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2``); ``False`` where that is not supported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library older than glibc 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
