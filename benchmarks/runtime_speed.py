"""Head-to-head: our StaticModel against Model2Vec 0.10 on the same folder and the same sentences, in one run.

    python -m benchmarks.runtime_speed MODEL_FOLDER [--n 20000] [--output benchmarks/results/runtime_speed.md]

Measures, each library in its own fresh subprocess (so neither warms the other's caches or thread pools):
vectors' max abs difference (ours vs Model2Vec), throughput of the first call on a freshly loaded model (cold:
our chunk cache is empty) and best of 3 later calls (warm), Model2Vec with its default threaded ``encode`` and
with ``use_multiprocessing=False``, batch-of-1 latency (median), resident memory after load, and load time.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.speed import default_sentences_file, sample_sentences

_WORKER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[4])
from benchmarks.speed import read_status_kb
which, folder, sentences_file = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(sentences_file, encoding="utf-8").read().split("\n")
texts, fresh = lines[: len(lines) // 2], lines[len(lines) // 2 :]
rss0 = read_status_kb("VmRSS")
t0 = time.perf_counter()
if which == "ours":
    from static_model import StaticModel
    model = StaticModel.from_pretrained(folder)
    calls = {"default": lambda x: model.encode(x)}
else:
    from model2vec import StaticModel
    model = StaticModel.from_pretrained(folder)
    calls = {"default": lambda x: model.encode(x), "one thread": lambda x: model.encode(x, use_multiprocessing=False)}
load = time.perf_counter() - t0
rss1 = read_status_kb("VmRSS")
model.encode(["warm up the compiled kernels and thread pools"])
out = {"load_s": load, "rss_model_mb": (rss1 - rss0) / 1024, "rss_after_load_mb": rss1 / 1024, "modes": {}}
for mode, encode in calls.items():
    t = time.perf_counter(); vectors = encode(texts); cold = time.perf_counter() - t
    best = min((lambda t: (encode(texts), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(3))
    t = time.perf_counter(); encode(fresh); new = time.perf_counter() - t
    out["modes"][mode] = {"cold_per_s": len(texts) / cold, "new_texts_per_s": len(fresh) / new,
                          "warm_per_s": len(texts) / best}
    if mode == "default":
        np.save(sys.argv[5], np.asarray(vectors, dtype=np.float32))
latencies = []
for text in texts[:500]:
    t = time.perf_counter(); model.encode([text]); latencies.append(time.perf_counter() - t)
out["latency_ms"] = 1000 * float(np.median(latencies))
print("RESULT " + json.dumps(out))
"""


def run(folder: Path, sentences: list[str]) -> dict:
    repo = Path(__file__).resolve().parents[1]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sentences_file = Path(tmp) / "sentences.txt"
        sentences_file.write_text("\n".join(s.replace("\n", " ") for s in sentences), encoding="utf-8")
        for which in ("ours", "model2vec"):
            vectors_file = Path(tmp) / f"{which}.npy"
            proc = subprocess.run(
                [sys.executable, "-c", _WORKER, which, str(folder), str(sentences_file), str(repo), str(vectors_file)],
                capture_output=True, text=True, check=False,
            )
            line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"{which} worker failed: {proc.stderr[-2000:]}")
            results[which] = json.loads(line[len("RESULT "):])
            results[which]["vectors"] = np.load(vectors_file)
    diff = float(np.abs(results["ours"].pop("vectors") - results["model2vec"].pop("vectors")).max())
    return {"max_abs_diff": diff, **results}


def to_markdown(result: dict, *, folder: Path, n: int, command: str) -> str:
    ours, m2v = result["ours"], result["model2vec"]
    base = m2v["modes"]["default"]
    rows = [
        ("ours: StaticModel.encode", ours["modes"]["default"], ours),
        ("Model2Vec 0.10: encode (default, threaded)", m2v["modes"]["default"], m2v),
        ("Model2Vec 0.10: encode(use_multiprocessing=False)", m2v["modes"]["one thread"], m2v),
    ]
    lines = [
        "# Runtime speed: StaticModel vs Model2Vec 0.10, same folder, same sentences, one run",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- Machine: {_cpu_name()}, {_cores()} cores, Python {platform.python_version()}",
        f"- Model folder: `{folder}`; {n:,} sentences sampled (seed 42) from `corpus_general/sentences.txt`",
        f"- Max abs difference between our vectors and Model2Vec's: {result['max_abs_diff']:.2e}",
        "- cold = first call on a freshly loaded model (after a one-sentence warm-up call; it still loads the "
        "parallel kernel, and our word-chunk cache is empty); new texts = then a call on another, disjoint sample of "
        "the same size (the cache holds only the first sample's words); warm = best of 3 calls on the first sample "
        "again (cache filled)",
        "",
        "| runtime | cold sentences/s | new texts sentences/s | warm sentences/s | cold / new texts / warm vs Model2Vec default | batch-1 latency (ms) | RSS after load (MB) | load (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, mode, proc in rows:
        lines.append(
            f"| {name} | {mode['cold_per_s']:,.0f} | {mode['new_texts_per_s']:,.0f} | {mode['warm_per_s']:,.0f} "
            f"| {' / '.join(f'{mode[k] / base[k]:.2f}x' for k in ('cold_per_s', 'new_texts_per_s', 'warm_per_s'))} "
            f"| {proc['latency_ms']:.3f} | {proc['rss_after_load_mb']:.0f} | {proc['load_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtime_speed", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a static model folder that both libraries can read")
    parser.add_argument("--sentences", type=Path, default=None, help="one sentence per line (default: shared corpus)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    sentences_file = args.sentences or default_sentences_file()
    if sentences_file is None:
        parser.error("no --sentences file and no shared data folder found")
    sentences = sample_sentences(sentences_file, 2 * args.n)  # measured sample + a disjoint "new texts" sample
    result = run(args.folder, sentences)
    command = "python -m benchmarks.runtime_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    table = to_markdown(result, folder=args.folder, n=args.n, command=command)
    print(table)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table, encoding="utf-8")
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
