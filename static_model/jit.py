"""``njit``: ``numba.njit`` whose compiled code is cached on disk where numba can write a cache, else kept in
memory, so that a read-only install (a container as a user without a home, a serverless runtime) still imports.

numba caches next to the source (``__pycache__``) or in a user folder (``NUMBA_CACHE_DIR``, else the user's cache
directory); with neither writable, ``numba.njit(cache=True)`` raises at import. Then each process compiles the
kernels on first use (seconds) and one ``RuntimeWarning`` says how to keep them.

numba's cache files are read and written on a kernel's first call, so a cache file it cannot read (cut short by a
crash or a full disk on a filesystem without atomic renames, a zero-length file left by a power loss, a copy of a
half-synced folder) or a cache it cannot write (a full disk, a folder made read-only) would fail the user's
``encode``, in every process, until someone deleted the folder. Here either is a cache miss: the kernel is compiled,
its unreadable files are written anew, and one ``RuntimeWarning`` a folder says what happened.

numba compiles a kernel on its first call, under one process-wide lock. A process forked while another thread
compiled would start with that lock held by a thread it does not have, and hang at its own first call; so a fork
waits until the compilation in progress ends (the lock is taken before ``fork`` and released on both sides)."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from typing import Any

import numba
from numba.core import sigutils
from numba.core.caching import FunctionCache, IndexDataCacheFile
from numba.core.compiler_lock import global_compiler_lock

_warned = False
_cache_problems_warned: set[tuple[str, str]] = set()


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or without the cache where numba finds no folder to write it; a cache
    file numba cannot read or write is a miss (``SelfHealingCache``), never the caller's error."""
    def decorate(func: Callable[..., Any]) -> Any:
        try:
            dispatcher = numba.njit(cache=True, **options)(func)
            dispatcher._cache = SelfHealingCache(func)  # what numba's enable_caching() sets, with the miss rule
            return dispatcher
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            _warn_once(func)
            return numba.njit(cache=False, **options)(func)

    return decorate


def _warn_once(func: Callable[..., Any]) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"static_model: numba has no writable folder to cache its compiled kernels (next to "
                      f"{func.__code__.co_filename} or in the user's cache directory), so each process compiles "
                      "them on first use; set NUMBA_CACHE_DIR to a writable folder to keep them",
                      RuntimeWarning, stacklevel=4)


class DataFirstCacheFile(IndexDataCacheFile):
    """numba's index and data files, with a kernel's data file written before the index entry that names it.

    numba writes the index first: a process whose data write then failed (a full disk: the small index fits, the
    kernel does not) or that died in between left an index naming a data file that another version of the source
    wrote (the index of an upgraded package names ``-1.nbc`` again), and every later process ran that old kernel,
    silently. Written data first, an index entry only ever names a file its own save wrote."""

    def save(self, key: Any, data: Any) -> None:
        """Write ``data`` for ``key``: its data file (the one the index names for it, else the first free name),
        then the index."""
        overloads = self._load_index()
        data_name = overloads.get(key)
        if data_name is None:
            existing = set(overloads.values())
            data_name = next(n for n in map(self._data_name, itertools.count(1)) if n not in existing)
        self._save_data(data_name, data)
        if overloads.get(key) != data_name:
            overloads[key] = data_name
            self._save_index(overloads)


class SelfHealingCache(FunctionCache):
    """numba's per-kernel disk cache, where reading or writing a cache file that fails is a cache miss: the kernel
    is compiled as if nothing were cached, an index that cannot be read is removed (so the save after the
    compilation writes a good one), and one ``RuntimeWarning`` names the folder and the error. Its files are
    written data first (``DataFirstCacheFile``)."""

    def __init__(self, py_func: Callable[..., Any]) -> None:
        super().__init__(py_func)
        self._cache_file.__class__ = DataFirstCacheFile  # the same object and files; only ``save`` differs

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        """The cached kernel for ``sig``, or ``None`` (compile it) when there is none, its files cannot be read, or
        the file its index entry names holds the kernel of another signature.

        That last happens when two processes on a cold cache save two signatures of one kernel (a float32 and an int8
        model) at once: numba's save reads the index, picks the first free data file name and writes both, so both
        pick the same name and the index can end up naming, for one signature, the file the other process wrote.
        numba would then fail every call of that signature, in every process, with "can't unbox array"; here it is
        compiled again, and its save rewrites that data file with the right kernel."""
        try:
            cres = super().load_overload(sig, target_context)
        except Exception as exc:  # any unreadable file: UnpicklingError, EOFError, ValueError, OSError, ...
            self._warn("read", exc)
            index = getattr(getattr(self, "_cache_file", None), "_index_path", None)  # numba's private layout
            try:
                if index is not None:
                    os.unlink(index)
            except OSError:
                pass  # gone already (another process), or not ours to remove: the save below warns then
            return None
        if cres is not None and tuple(cres.signature.args) != tuple(sigutils.normalize_signature(sig)[0]):
            self._warn("read", ValueError(f"the file cached for {sig} holds the kernel compiled for "
                                          f"{tuple(cres.signature.args)} (two processes saved at once)"))
            return None
        return cres

    def save_overload(self, sig: Any, data: Any) -> None:
        """Cache the compiled kernel; a write that fails leaves it uncached, with one warning."""
        try:
            super().save_overload(sig, data)
        except Exception as exc:  # a full disk, a folder made read-only: the compiled kernel is used all the same
            self._warn("write", exc)

    def _warn(self, action: str, exc: Exception) -> None:
        key = (action, str(self.cache_path))
        if key in _cache_problems_warned:
            return
        _cache_problems_warned.add(key)
        detail = f"{type(exc).__name__}: {exc}"[:200]
        then = "compiled again and its cache rewritten" if action == "read" else "compiled in this process, not cached"
        warnings.warn(f"static_model: numba could not {action} its cached kernel {self._py_func.__qualname__!r} in "
                      f"{self.cache_path} ({detail}); the kernel is {then}", RuntimeWarning, stacklevel=2)


def _hold_compiler_lock_across_fork() -> None:
    """Take numba's compiler lock around ``fork`` so the child never inherits it held by another thread."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=global_compiler_lock.acquire, after_in_parent=global_compiler_lock.release,
                            after_in_child=global_compiler_lock.release)


_hold_compiler_lock_across_fork()
