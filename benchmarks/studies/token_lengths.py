"""Which texts a token limit touches: ``python -m benchmarks token-lengths MODEL [--limits 254 512]``.

(Until the benchmarks were grouped by job this was ``python -m benchmarks.token_lengths``, the command the committed
results record.) For every development and test split (as ``benchmarks protocol --datasets all``), the number of
texts the static model's tokenizer splits into more than each limit (no limit applied), and the longest. A limit can
only change the score of a dataset with texts above it; a comparison between two limits is decided by those datasets
alone.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from benchmarks.quality.data import Dataset
    from static_model import StaticModel


def token_counts(model: StaticModel, texts: list[str]) -> np.ndarray:
    """Tokens the model reads of each text when nothing cuts it (``max_length=None`` in a call means the model's
    own limit, so the limit is lifted on the model for the count and put back)."""
    limit = model.max_length
    model.max_length = None
    try:
        return np.asarray([len(ids) for ids in model.tokenize(texts)], dtype=np.int64)
    finally:
        model.max_length = limit


def length_table(model: StaticModel, datasets: list[Dataset], limits: list[int]) -> dict:
    """Per dataset: texts, texts above each limit, longest text (tokens)."""
    from benchmarks.quality.tasks import texts_of

    out = {}
    for ds in datasets:
        counts = token_counts(model, sorted(set(texts_of(ds))))
        out[ds.name] = {"task": ds.task, "texts": int(counts.size), "max_tokens": int(counts.max(initial=0)),
                        "above": {str(k): int((counts > k).sum()) for k in limits}}
    return out


def markdown(name: str, table: dict, limits: list[int]) -> str:
    """The per-dataset table of texts above each limit."""
    head = ("| dataset | task | distinct texts | longest (tokens) | "
            + " | ".join(f"> {k} tokens" for k in limits) + " |")
    rows = [f"| {k} | {v['task']} | {v['texts']} | {v['max_tokens']} | "
            + " | ".join(str(v["above"][str(x)]) for x in limits) + " |" for k, v in table.items()]
    return (f"## Texts above each token limit ({name}'s tokenizer, nothing cut)\n\n" + head + "\n|---|---|---:|---:|"
            + "---:|" * len(limits) + "\n" + "\n".join(rows) + "\n")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``token-lengths``."""
    p = subparsers.add_parser("token-lengths", help="how many texts of each dataset exceed each token limit",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="static model folder")
    p.add_argument("--limits", type=int, nargs="+", default=[254, 512])
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Count the texts above each limit; print (and with ``--out`` write) the table."""
    from distill.cli_checks import UsageError

    if any(k < 1 for k in args.limits):
        raise UsageError("--limits must be positive")
    from pathlib import Path

    from benchmarks.provenance import provenance, provenance_markdown
    from benchmarks.quality.data import resolve_data_dir
    from benchmarks.report import emit
    from benchmarks.studies.protocol import load_split
    from static_model import StaticModel

    if not Path(args.model).is_dir():
        raise UsageError(f"model folder {args.model} does not exist")
    model = StaticModel.from_pretrained(args.model)
    root = resolve_data_dir(args.data)
    table = length_table(model, load_split(root, "all"), args.limits)
    meta = provenance(args.command_line)
    emit(markdown(Path(args.model).name, table, args.limits) + "\n" + provenance_markdown(meta),
         {"model": args.model, "limits": args.limits, "datasets": table, "meta": meta}, args.out)
    return 0

