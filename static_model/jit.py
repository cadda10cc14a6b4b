"""``njit``: ``numba.njit`` whose compiled code is cached on disk where numba can write a cache, else kept in
memory, so that a read-only install (a container as a user without a home, a serverless runtime) still imports.

numba caches next to the source (``__pycache__``) or in a user folder (``NUMBA_CACHE_DIR``, else the user's cache
directory); with neither writable, ``numba.njit(cache=True)`` raises at import. Then each process compiles the
kernels on first use (seconds) and one ``RuntimeWarning`` says how to keep them.

numba compiles a kernel on its first call, under one process-wide lock. A process forked while another thread
compiled would start with that lock held by a thread it does not have, and hang at its own first call; so a fork
waits until the compilation in progress ends (the lock is taken before ``fork`` and released on both sides)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numba
from numba.core.compiler_lock import global_compiler_lock

_warned = False


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or without the cache where numba finds no folder to write it."""
    def decorate(func: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **options)(func)
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


def _hold_compiler_lock_across_fork() -> None:
    """Take numba's compiler lock around ``fork`` so the child never inherits it held by another thread."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=global_compiler_lock.acquire, after_in_parent=global_compiler_lock.release,
                            after_in_child=global_compiler_lock.release)


_hold_compiler_lock_across_fork()
