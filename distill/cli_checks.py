"""Argument checks and the error handler shared by the command lines (``python -m distill``, ``distill compare``,
``distill.refine``, ``benchmarks``).

Every check here is cheap and runs before a teacher loads or any work starts. A failed check raises
``UsageError``; ``run_cli`` turns it into one ``error: ...`` line on stderr and exit status 2, and Ctrl-C into one
``interrupted`` line and status 130. Unexpected exceptions (bugs) still show their traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

# the command lines' Ctrl-C status and exit path live with the start-up guard (static_model.interrupts)
from distill.text_files import compressed_file_error, scan_utf8
from static_model.interrupts import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from static_model.interrupts import exit_process as exit_process
from static_model.interrupts import raise_on_interrupt

if TYPE_CHECKING:
    from static_model import StaticModel

EXIT_USAGE = 2
EXIT_FAILED = 1


_SAVED: list[Path] = []  # the folders this command line saved a model to (``save_model``), for ``run_cli``'s report


class UsageError(ValueError):
    """A command-line argument or input file that cannot be used; the message names it."""


class OptionParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``PROG: error: ...`` (not the whole usage block first), naming
    each unknown option with the closest known one: a typo such as ``--outptu DIR`` is named, where argparse says only
    that ``--output`` is missing."""

    _argv: list[str] = []

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        """``argparse.ArgumentParser.parse_known_args``, keeping ``args`` for ``error``'s hints."""
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """Print one line, ``PROG: error: [unknown option X (did you mean Y?); ]MESSAGE``, and exit 2."""
        hints = [f"unknown option {name}" + (f" (did you mean {close}?)" if close else "")
                 for name, close in unknown_options(self, self._argv)]
        text = "; ".join([*hints, message])
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def unknown_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[tuple[str, str | None]]:
    """The options in ``argv`` that ``parser`` does not know (nor takes as an abbreviation of one), each with the
    closest option it knows (``None`` when none is close)."""
    import difflib

    known = sorted(s for s in parser._option_string_actions if s.startswith("--"))
    found = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        if name in parser._option_string_actions or any(k.startswith(name) for k in known):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        found.append((name, close[0] if close else None))
    return found


def one_line(message: object) -> str:
    """``message`` as a single line (multi-line exception texts joined with ' | ')."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return " | ".join(lines) or type(message).__name__


def run_cli(main: Callable[[], int], *, expected: tuple[type[BaseException], ...] = ()) -> int:
    """Run ``main`` and map the failures a user can cause to one stderr line and an exit status.

    ``UsageError`` and the ``expected`` exception types (bad input found while working, such as a teacher
    that does not resolve) exit 2; ``OSError`` (disk full, permission denied) exits 1; Ctrl-C exits 130.
    """
    handled: tuple[type[BaseException], ...] = (UsageError, *expected)
    _SAVED.clear()
    try:
        raise_on_interrupt()  # from here on Ctrl-C unwinds through every finally (static_model.interrupts)
        return main()
    except KeyboardInterrupt:
        saved = f" (after the model was saved to {_SAVED[-1]})" if _SAVED else ""
        print(f"interrupted{saved}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except handled as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (``| head``): nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_FAILED


def is_model_folder(path: Path) -> bool:
    """A folder that holds a saved static model (what ``--overwrite`` may replace)."""
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def check_output_folder(path: str | os.PathLike, *, overwrite: bool, option: str = "--output") -> Path:
    """The output folder: it may not exist yet, or be empty, or (with ``overwrite``) hold a model to replace.

    An existing file is never a valid output folder, with or without ``--overwrite``; a non-empty folder that
    holds no model is never replaced (its files would be lost).
    """
    if not str(path).strip():  # Path("") is the current folder, which a save would be asked to replace
        raise UsageError(f"{option} is empty; pass the folder to write the model to")
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{option} {path}: this is an existing file, not a folder; pass a folder path")
    if not out.exists() and not overwrite:
        from static_model.atomic import readable_path

        aside = readable_path(out)
        if aside != out:  # a save killed between its two renames: the next save puts this model back first
            raise UsageError(f"{option} {path}: a save that was killed left the model that was there aside in "
                             f"{aside.name}, and the next save puts it back; use --overwrite to replace it")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"{option} {path}: the folder exists and is not empty (use --overwrite to replace it)")
        if not is_model_folder(out):
            raise UsageError(f"{option} {path}: the folder holds files but no model (no config.json and "
                             "*.safetensors); --overwrite only replaces a model folder, so nothing is deleted")
    from static_model.persistence import check_save_target

    try:  # the rules save_pretrained applies at the end (the current folder, foreign files beside a model), up front
        check_save_target(out, overwrite=overwrite)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{option} {path}: {exc}") from None
    check_writable_place(out, f"{option} {path}")
    return out


def check_writable_place(target: Path, label: str) -> None:
    """``target`` (a file or folder to create) can be made: its nearest existing parent is a folder where a file can
    be written, probed with a real file, not ``os.access`` (root on a read-only, pseudo or root-squashed network
    filesystem passes access() and then fails to write, after the work); a ``UsageError`` starting ``label``."""
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{label}: {parent} is a file, so no folder can be created under it")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{label}: cannot write in {parent} ({exc.strerror or exc})") from None


def check_output_is_not_input(out: Path, source: str | os.PathLike | None, what: str,
                              option: str = "--output") -> None:
    """``out`` is not the folder ``source`` names (the teacher, the model read): with ``--overwrite`` the save would
    replace it (a plain Hugging Face folder, ``config.json`` beside ``*.safetensors``, looks like a model)."""
    if source is None:
        return
    src = Path(source).expanduser()
    if src.is_dir() and out.exists() and os.path.samefile(src, out):
        raise UsageError(f"{option} {out}: this is the {what} folder, which the run reads; the save would replace it. "
                         "Pass another output folder")


def check_output_is_not_inside_input(out: Path, source: str | os.PathLike | None, what: str,
                                     option: str = "--output") -> None:
    """``out`` is not a folder inside the folder ``source`` names (the teacher): the save would add files to an input
    (a hub cache snapshot, an installed package) and, with ``--overwrite``, could replace one of its modules."""
    if source is None:
        return
    src = Path(source).expanduser()
    if not src.is_dir():
        return
    src_real, out_real = src.resolve(), out.resolve()
    if out_real != src_real and out_real.is_relative_to(src_real):
        raise UsageError(f"{option} {out}: this is inside the {what} folder {source}, which the run reads; the save "
                         "would write into it. Pass an output folder outside it")


def silence_progress_bars() -> None:
    """``--quiet``: switch off the progress bars of the libraries the command lines call (transformers' weight
    loading, Hugging Face Hub downloads, datasets streaming); the toolkit's own bars follow ``show_progress_bar``.

    For the rest of the process, and nothing restores it (``$HF_DATASETS_DISABLE_PROGRESS_BARS`` stays set, the
    libraries' bars stay off): only the command lines' ``main`` call it (``python -m distill`` and
    ``python -m distill.refine``), whose process ends with the run. Library code never does; it takes
    ``show_progress_bar``."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # datasets reads it when first imported
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.disable_progress_bar()
    datasets = sys.modules.get("datasets")
    if datasets is not None and hasattr(datasets, "disable_progress_bars"):
        datasets.disable_progress_bars()


def check_model_folder(path: str | os.PathLike, label: str) -> Path:
    """A static model folder to read: it exists, is a folder and holds a config.json. A hub id with no folder of that
    name here is the hub snapshot it names (``static_model.hub.model_folder``), as ``from_pretrained`` reads it."""
    from static_model.hub import model_folder

    try:
        folder = model_folder(path)
    except FileNotFoundError as exc:  # a hub id that is neither here nor to be had
        raise UsageError(f"{label} {path}: {exc}") from None
    if not folder.exists():
        raise UsageError(f"{label} {path}: the folder does not exist")
    if not folder.is_dir():
        raise UsageError(f"{label} {path}: not a folder (pass the folder of a static model)")
    if not (folder / "config.json").is_file():
        raise UsageError(f"{label} {path}: holds no config.json, so it is not a static model folder")
    return folder


def check_input_file(path: str | os.PathLike, option: str, *, folder_ok: bool = False) -> Path:
    """An input file that exists and is readable (a folder only when ``folder_ok``)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{option} {path}: the file does not exist")
    if p.is_dir():
        if folder_ok:
            return p
        raise UsageError(f"{option} {path}: this is a folder, not a file")
    if not p.is_file():
        raise UsageError(f"{option} {path}: not a regular file")
    try:
        with open(p, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be read ({exc.strerror or exc})") from None
    return p


def check_utf8_text(path: str | os.PathLike, option: str, *, nonempty: bool = True) -> Path:
    """An input text file: exists, readable, all of it valid UTF-8, and (``nonempty``) some non-blank text."""
    p = check_input_file(path, option)
    scan = scan_utf8(p)
    compressed = compressed_file_error(p) if scan.bad_line is not None else None
    if compressed is not None:
        raise UsageError(f"{option} {path}: {compressed}")
    if scan.bad_line is not None:
        raise UsageError(f"{option} {path}: not UTF-8 text (line {scan.bad_line}: {scan.reason} "
                         f"at byte {scan.bad_byte!r}); save it as UTF-8")
    if nonempty and not scan.has_text:
        raise UsageError(f"{option} {path}: the file is empty")
    return p


def check_positive_int(value: int | None, option: str) -> None:
    """``value`` is None or an int >= 1."""
    if value is not None and value < 1:
        raise UsageError(f"{option} must be at least 1, got {value}")


def check_device_option(device: str | None, option: str = "--device") -> None:
    """A torch device string that names a device this machine has (``None``: the default choice)."""
    if device is None:
        return
    from distill.teacher import check_device

    try:
        check_device(device)
    except ValueError as exc:
        raise UsageError(f"{option} {device}: {exc}") from None


def save_model(model: StaticModel, out: Path, *, overwrite: bool, option: str = "--output") -> None:
    """``model.save_pretrained(out, overwrite=overwrite)``: atomic, and a model is replaced only with ``overwrite``
    (``check_output_folder`` already refused anything else before the work started). A save that fails (disk full,
    permission denied) is an ``OSError`` naming ``option`` and the folder, which it left as it was."""
    try:
        model.save_pretrained(out, overwrite=overwrite)
        _SAVED.append(out)  # a Ctrl-C from here on is reported as coming after the save
    except FileExistsError as exc:  # another save filled the folder meanwhile: its model is there now
        raise FileExistsError(f"{option} {out}: " + one_line(exc).replace("overwrite=True", "--overwrite")) from None
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRORS:
            raise
        reason = exc.strerror or one_line(exc)
        raise OSError(f"{option} {out}: the model could not be saved ({reason}); the save is atomic, so the folder "
                      "holds what it held before. Fix that (free space, permissions) or pass another folder") from None


# What a save meets on the storage itself: full, over quota, not permitted, read-only, failing
_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO})


_Number = TypeVar("_Number", int, float)


def number_or_none(convert: Callable[[str], _Number], words: tuple[str, ...],
                   expected: str) -> Callable[[str], _Number | None]:
    """An argparse ``type``: ``None`` for any of ``words`` (any case), else ``convert(value)``; a value neither gives
    ``expected {expected}, got 'VALUE'`` after the option's name (ranges are checked where the setting is used)."""
    def parse(value: str) -> _Number | None:
        if value.strip().lower() in words:
            return None
        try:
            return convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None

    return parse
