"""Ctrl-C in a command line (``python -m distill``, ``distill.refine``, ``scale``, ``benchmarks``): one
``interrupted`` line and status 130 at any moment, never a traceback.

Such a command spends seconds importing numpy, numba and torch before its ``main`` (and the ``try`` in it) runs.
``exit_on_interrupt_while_starting``, the first statement of those packages' ``__init__``, makes a Ctrl-C in that
window end the process at once: nothing has been written yet, so there is nothing to clean up. The command's error
handler calls ``raise_on_interrupt`` inside its ``try``, which gives Ctrl-C back to Python's ``KeyboardInterrupt``,
so an interrupt during the work unwinds through every ``finally`` (saves are atomic and remove their temporaries).
A Ctrl-C that lands while Python runs a ``__del__`` or a weakref callback (garbage collection, at any moment) would be
swallowed there, printed as "Exception ignored" and the work would go on; ``redeliver_swallowed_interrupt``, the
command's ``sys.unraisablehook``, signals it again so it reaches the work. A library import (tests, notebooks, another
program) changes nothing: the handler is only set in a process started as
``python -m`` one of ``COMMANDS``. Only a Ctrl-C inside the interpreter's own start-up, before any of this code runs,
keeps CPython's own behaviour.
"""

from __future__ import annotations

import _thread
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn, ParamSpec, TypeVar

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C
REDELIVERY_DELAY_S = 0.01  # how long after a swallowed Ctrl-C it is signalled again
COMMANDS = ("distill", "scale", "benchmarks", "static_model")  # the packages whose ``python -m`` is a command line


def started_module(argv: list[str] | None = None) -> str | None:
    """The module this process was started to run with ``python -m MODULE`` (read from ``argv``, by default
    ``sys.orig_argv``: the interpreter's own options included), else None."""
    args = list(getattr(sys, "orig_argv", []) if argv is None else argv)[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-" or not arg.startswith("-"):  # a script or stdin: not -m
            return None
        if arg.startswith("--"):  # the long options that take a value in the next argument
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        for j, letter in enumerate(arg[1:], start=2):  # a cluster of short options, such as -Bm or -X dev
            if letter == "c":
                return None
            if letter == "m":
                return arg[j:] or (args[i + 1] if i + 1 < len(args) else None)
            if letter in "XW":  # their value: the rest of this argument or the next one
                i += 0 if arg[j:] else 1
                break
        i += 1
    return None


def is_command_line() -> bool:
    """Whether this process is one of the command lines of ``COMMANDS`` (``python -m distill ...`` and the like)."""
    module = started_module()
    return module is not None and module.split(".")[0] in COMMANDS


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    """The SIGINT handler while a command line starts: one line, status 130, at once."""
    exit_interrupted()


def exit_interrupted() -> NoReturn:
    """Flush stdout, print ``interrupted`` on stderr and end the process with status 130 at once (``os._exit``)."""
    for stream, text in ((sys.stdout, ""), (sys.stderr, "interrupted\n")):
        try:
            if text:
                stream.write(text)
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a closed or missing stream: exit all the same
            pass
    os._exit(EXIT_INTERRUPTED)


def exit_on_interrupt_while_starting() -> None:
    """In a command line's process (``is_command_line``), make Ctrl-C end it at once with one line and status 130
    until ``raise_on_interrupt``; a no-op anywhere else (a library import) and off the main thread."""
    if is_command_line() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, _exit_interrupted)
        except ValueError:  # not the main thread
            pass


def raise_on_interrupt() -> None:
    """Give Ctrl-C back to Python (``KeyboardInterrupt``) once the command's error handler is in place, and make sure
    none is swallowed (``redeliver_swallowed_interrupt``); a no-op when ``exit_on_interrupt_while_starting`` set
    nothing."""
    if signal.getsignal(signal.SIGINT) is _exit_interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = redeliver_swallowed_interrupt


def redeliver_swallowed_interrupt(unraisable: Any) -> None:
    """A ``sys.unraisablehook``: a ``KeyboardInterrupt`` raised where Python cannot propagate it (a ``__del__``, a
    weakref callback) is signalled again, so it reaches the code that was running, silently; any other unraisable
    exception goes to the default hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # signalled from another thread a moment later, once the main thread has left this hook: signalled from
        # here, the handler would run inside the hook, where its exception is swallowed again
        timer = threading.Timer(REDELIVERY_DELAY_S, _thread.interrupt_main, (signal.SIGINT,))
        timer.daemon = True
        timer.start()
        return
    sys.__unraisablehook__(unraisable)


def exit_process(status: int) -> NoReturn:
    """End a command-line process with ``status``, as ``sys.exit`` does; after a Ctrl-C with exactly 130.

    CPython remembers a ``KeyboardInterrupt`` that passed through ``exec`` of a string (what ``dataclasses`` and
    ``namedtuple`` run while a module imports) even when the handler caught it, and then ends the process by
    SIGINT instead of with the status given; so an interrupted run flushes its streams and leaves with
    ``os._exit`` (every ``finally`` has already run while the interrupt unwound).
    """
    if status == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)
    sys.exit(status)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def wrapped_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` among ``exc``'s causes and contexts, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def keep_interrupts(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """``func``, with a Ctrl-C that lands while numba's compiled code calls back into Python (to box the arrays it
    returns) raised as a ``KeyboardInterrupt``: numba reports it as ``SystemError: ... returned a result with an
    exception set``, which a command's handler (and any ``except KeyboardInterrupt``) would not recognise."""
    @functools.wraps(func)
    def call(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except SystemError as exc:
            interrupt = wrapped_interrupt(exc)
            if interrupt is None:
                raise
            raise KeyboardInterrupt(*interrupt.args) from exc

    return call
