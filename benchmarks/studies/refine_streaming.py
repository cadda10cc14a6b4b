"""Peak memory and quality of refinement training with the targets in memory (the code before issue #23) and
streamed from the featurize cache (``train.buffer_passages``), each run in a fresh process.

    python -m benchmarks refine-streaming --base BASE --cache CACHE_DIR --corpus sentences.txt --passages 30000 \
        --old-code /path/to/checkout-before-23 --out benchmarks/results/refine_streaming

The corpus's first ``--passages`` passages (wikipedia lines first, as refine reads it) must already be featurized
in ``--cache`` (chunks of 10,000). ``--repeat R`` trains on the passages R times over (the cache chunks copied
under the repeated chunks' names): how peak memory grows with corpus size, at 2 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
spec = json.loads(sys.argv[1])
import torch
torch.set_num_threads(spec["threads"])
try:
    from distill.refine.corpus import read_corpus, resolve_prefer_sources
except ImportError:  # the code before #22
    from distill.refine_corpus import read_corpus, resolve_prefer_sources
texts = read_corpus(spec["corpus"], spec["read"], resolve_prefer_sources(spec["corpus"], None))[: spec["passages"]]
texts = texts * spec["repeat"]
from static_model import StaticModel
base = StaticModel.from_pretrained(spec["base"])
from distill.teacher import Teacher
teacher = Teacher(spec["teacher"], device="cpu")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
options = dict(epochs=spec["epochs"], seed=0, device="cpu", dtype="float32")
t0 = time.perf_counter()
if spec["buffer"] is None:  # the code before #23: refine(**keywords), every target in memory
    from distill.refine import refine
    model = refine(base, teacher, texts, cache_dir=spec["cache"], show_progress_bar=False, max_sentences=None,
                   **options)
else:
    from distill.refine import RefineConfig, refine
    config = RefineConfig.from_options(max_sentences=None, buffer_passages=spec["buffer"], **options)
    model = refine(base, teacher, texts, config, cache_dir=spec["cache"], show_progress_bar=False)
seconds = time.perf_counter() - t0
if spec["save"]:
    model.save_pretrained(spec["save"], overwrite=True)
info = model.config["refine"]
peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_before_mib": before / 1024, "peak_rss_mib": peak_rss_mib,
                  "val_cosine": info["val_cosine"], "best_epoch": info["best_epoch"], "n_train": info["n_train"],
                  "train_seconds": info["train_seconds"], "seconds": round(seconds, 1)}))
"""


def repeated_cache(cache: Path, texts: list[str], repeat: int, chunk: int = 10_000) -> Path:
    """A cache folder for ``texts * repeat``: the chunk files copied under the repeated chunks' names."""
    from distill.refine.featurize import chunk_file

    out = cache.parent / f"{cache.name}-x{repeat}"
    out.mkdir(exist_ok=True)
    shutil.copy(cache / "meta.json", out / "meta.json")
    n = len(texts) // chunk
    for r in range(repeat):
        for c in range(n):
            src = chunk_file(cache, c, texts[c * chunk : (c + 1) * chunk])
            dst = chunk_file(out, r * n + c, texts[c * chunk : (c + 1) * chunk])
            if not dst.exists():
                os.link(src, dst) if src.stat().st_dev == out.stat().st_dev else shutil.copy(src, dst)
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``refine-streaming`` (peak memory of refinement training, in memory vs streamed)."""
    p = subparsers.add_parser("refine-streaming", help="peak memory of refine training: targets in memory vs streamed",
                              description=(__doc__ or "").splitlines()[0])
    p.add_argument("--base", required=True)
    p.add_argument("--teacher", default="all-MiniLM-L6-v2")
    p.add_argument("--cache", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--read", type=int, default=100_000, help="passages read_corpus read when featurizing")
    p.add_argument("--passages", type=int, default=30_000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--buffers", default="in-memory,100000,2000", help="'in-memory' (needs --old-code) or a buffer")
    p.add_argument("--old-code", default=None, help="a checkout of the code before issue #23 (PYTHONPATH)")
    p.add_argument("--save-dir", default=None, help="save each refined model here (for the quality suite)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="write OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Train once per buffer setting, each in a fresh process; print (and write) peak RSS and quality per run."""

    from distill.refine.corpus import read_corpus, resolve_prefer_sources

    cache = Path(args.cache)
    if args.repeat > 1:
        texts = read_corpus(args.corpus, args.read, resolve_prefer_sources(args.corpus, None))[: args.passages]
        cache = repeated_cache(cache, texts, args.repeat)
    rows = []
    for label in args.buffers.split(","):
        buffer = None if label == "in-memory" else int(label)
        spec = {"corpus": args.corpus, "read": args.read, "passages": args.passages, "repeat": args.repeat,
                "base": args.base, "teacher": args.teacher, "cache": str(cache), "epochs": args.epochs,
                "buffer": buffer, "threads": args.threads,
                "save": str(Path(args.save_dir) / f"buffer-{label}") if args.save_dir else None}
        env = dict(os.environ)
        code = args.old_code if buffer is None else str(Path(__file__).resolve().parents[2])  # the checkout
        env["PYTHONPATH"] = code
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, capture_output=True,
                              text=True, check=False, cwd=tempfile.gettempdir())  # not the checkout: PYTHONPATH's code
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        row = {"buffer": label, **json.loads(proc.stdout.strip().splitlines()[-1]),
               "wall_seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"passages": args.passages * args.repeat, "epochs": args.epochs, "rows": rows,
              "command": " ".join(getattr(args, "command_line", ["python", "-m", "benchmarks", "refine-streaming"])),
              "max_rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    if args.out:
        from benchmarks.report import report_paths, write_json

        write_json(report, report_paths(args.out)[1])
    return 0
