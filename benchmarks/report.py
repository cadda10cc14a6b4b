"""The one report writer of ``benchmarks``: a Markdown table printed and, with ``--out``, written as ``OUT.md`` beside
``OUT.json``; and the cell formats the tables share. Headers (command, date, machine, versions) come from
``benchmarks.provenance``.

Both files are written atomically (``atomic_write_text``), the JSON first, and the ``.md`` records the JSON's
SHA-256, so a pair left mismatched by a kill between the two writes can be told (``pair_matches``). The JSON is strict
(NaN and infinities as ``null``), and ``check_out`` checks an ``--out`` before any work (``python -m benchmarks`` runs
it on every command's ``--out`` and ``--output``)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from static_model.atomic_file import atomic_write, atomic_write_bytes

REPORT_SUFFIXES = (".md", ".json")  # dropped from --out: OUT.md and OUT.json are written


def fmt(x: float | None, nd: int = 1) -> str:
    """``x`` with ``nd`` decimals; an en dash for a missing or NaN value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{nd}f}"


def human_bytes(n: float | None) -> str:
    """``n`` bytes as B, KB, MB or GB (binary units)."""
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def human_count(n: int | None) -> str:
    """``n`` as 1.2B, 3.4M, 56K or the number."""
    if n is None:
        return "–"
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}K"
    return str(n)


def markdown_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A Markdown table; by default the first column left-aligned and the others right-aligned."""
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def emit(md: str, report: Any, out: str | os.PathLike | None) -> None:
    """Print the Markdown report; with ``out``, also write ``OUT.md`` and ``OUT.json`` (``report_paths``)."""
    print(md)
    if out is None:
        return
    md_path, json_path = write(md, report, out)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)


def report_paths(out: str | os.PathLike, option: str = "--out") -> tuple[Path, Path]:
    """``OUT.md`` and ``OUT.json``: a final ``.md`` or ``.json`` on ``out`` is dropped first; any other dot is part of
    the name (``minilm_v1.2`` gives ``minilm_v1.2.md``). A ``UsageError`` naming ``option`` when no name is left."""
    if not os.fspath(out).strip():
        raise _usage(f"{option} is empty; give a report name (OUT.md and OUT.json are written)")
    path = Path(os.fspath(out)).expanduser()
    name = path.name
    for suffix in REPORT_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if not name or name in (".", "..") or os.fspath(out).endswith(("/", os.sep)):
        raise _usage(f"{option} {os.fspath(out)}: give a file name (OUT.md and OUT.json are written), not a folder")
    return path.with_name(name + ".md"), path.with_name(name + ".json")


def check_out(out: str | os.PathLike, option: str = "--out") -> tuple[Path, Path]:
    """Before any work: ``out`` names a report (``report_paths``) that can be written; a ``UsageError`` naming
    ``option`` otherwise. Returns the two paths."""
    paths = report_paths(out, option)
    if Path(os.fspath(out)).expanduser().is_dir():
        raise _usage(f"{option} {os.fspath(out)}: this is a folder; give a report name in it, such as "
                     f"{Path(os.fspath(out)) / 'report'} (OUT.md and OUT.json are written)")
    for path in paths:
        check_target(path, option, shown=os.fspath(out))
    return paths


def check_target(path: str | os.PathLike, option: str, *, shown: str | None = None) -> Path:
    """Before any work: ``path`` is a file that can be written (not a folder; its nearest existing folder is a
    writable folder, probed with a real file); a ``UsageError`` naming ``option`` otherwise."""
    target = Path(os.fspath(path)).expanduser()
    label = f"{option} {shown if shown is not None else os.fspath(path)}"
    if target.is_dir():
        raise _usage(f"{label}: {target} is a folder; give a file name")
    from distill.cli_checks import check_writable_place

    check_writable_place(target, label)
    return target


def write(md: str, report: Any, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUT.json`` then ``OUT.md`` (``report_paths``; parents made), each atomically, without printing;
    returns the two paths. The JSON is serialized first: a report that cannot be written touches neither file.

    The two renames are not one: a run killed between them leaves the new ``OUT.json`` beside the old ``OUT.md``.
    So the ``.md`` ends with the SHA-256 of the ``.json`` written with it (``json_digest_line``, an HTML comment,
    invisible when rendered): ``pair_matches`` tells a matched pair from a mismatched one."""
    md_path, json_path = report_paths(out)
    text = json_text(report)
    atomic_write_text(json_path, text)  # the data of record first
    atomic_write_text(md_path, md + ("" if md.endswith("\n") else "\n") + json_digest_line(text.encode("utf-8")))
    return md_path, json_path


JSON_DIGEST_TAG = "<!-- report json sha256:"  # the last line of OUT.md: the digest of the OUT.json written with it


def json_digest_line(json_bytes: bytes) -> str:
    """The line ``write`` ends ``OUT.md`` with: the SHA-256 of the bytes of its ``OUT.json``."""
    import hashlib

    return f"{JSON_DIGEST_TAG} {hashlib.sha256(json_bytes).hexdigest()} -->\n"


def pair_matches(out: str | os.PathLike) -> bool:
    """Whether ``OUT.md`` and ``OUT.json`` were written together: the ``.md``'s last line is ``json_digest_line``
    of the ``.json`` as it is now. False when either is missing, or the ``.md`` has no such line (written before
    the line existed, or by hand)."""
    md_path, json_path = report_paths(out)
    try:
        last = md_path.read_text(encoding="utf-8").splitlines(keepends=True)[-1:]
        return last == [json_digest_line(json_path.read_bytes())]
    except (OSError, UnicodeDecodeError):
        return False


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """``obj`` as strict JSON (``json_text``), written atomically (parents made)."""
    atomic_write_text(Path(path), json_text(obj))


def json_text(obj: Any) -> str:
    """``obj`` as indented strict JSON: NaN and infinities become ``null`` (``json.dumps(allow_nan=False)`` holds),
    numpy scalars and arrays become numbers and lists, paths strings; anything else JSON cannot hold is a
    ``TypeError`` naming its type."""
    return json.dumps(strict_json_value(obj), indent=2, allow_nan=False) + "\n"


def strict_json_value(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None``, recursively (see ``json_text``)."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json_value(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int)):
        return obj
    raise TypeError(f"a value of type {type(obj).__name__} ({obj!r:.80}) cannot be written as JSON")


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` as UTF-8, written whole or not at all (``static_model.atomic_file``)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """A matplotlib figure written whole or not at all (``static_model.atomic_file``), in the format of ``path``'s
    suffix (PNG when it has none); returns the path."""
    out = Path(path)
    atomic_write(out, lambda handle: fig.savefig(handle, format=out.suffix.lstrip(".").lower() or "png"))
    return out


def _usage(message: str) -> ValueError:
    from distill.cli_checks import UsageError

    return UsageError(message)
