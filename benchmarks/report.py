"""The one report writer of ``benchmarks``: a Markdown table printed and, with ``--out``, written as ``OUT.md`` beside
``OUT.json``; and the cell formats the tables share. Headers (command, date, machine, versions) come from
``benchmarks.provenance``."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any


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
    """Print the Markdown report; with ``out``, also write ``OUT.md`` and ``OUT.json`` (a ``.md``/``.json`` suffix
    on ``out`` is dropped first)."""
    print(md)
    if out is None:
        return
    md_path, json_path = write(md, report, out)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)


def write(md: str, report: Any, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``OUT.md`` and ``OUT.json`` (parents made) without printing; returns the two paths."""
    stem = Path(out)
    if stem.suffix.lower() in (".md", ".json"):
        stem = stem.with_suffix("")
    md_path, json_path = stem.with_suffix(".md"), stem.with_suffix(".json")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md, encoding="utf-8")
    write_json(report, json_path)
    return md_path, json_path


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """``obj`` as indented JSON (numpy scalars and paths converted), parents made."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))
