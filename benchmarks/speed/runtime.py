"""Head-to-head: our StaticModel against Model2Vec 0.10 on the same folder and the same texts, in one run.

    python -m benchmarks runtime-speed MODEL_FOLDER [--n 10000] [--repeats 3]
        [--output benchmarks/results/runtime_speed.md]

(Until the benchmarks were grouped by job this was ``python -m benchmarks.runtime_speed``, the command the committed
results record.)

Texts: sentences of ``corpus_general`` and the texts of the classification sets under the shared data folder,
shuffled (seed 42): sample A (``--n`` texts) and a disjoint sample B of the same size. Every measurement runs in a
fresh subprocess (nothing warmed by an earlier one), the two libraries alternating, ``--repeats`` times; the table
gives medians. Scenarios:

* default: load; RSS after load; a one-text warm-up call (compiles/loads kernels); **first call** on A; **new
  texts**: B (our chunk cache holds only A's words); **warm**: best of 3 calls on A; batch-1 latency (median over
  500 texts of A); RSS at the end.
* workers=2: ours with ``encode(..., workers=2)`` (batches on two threads of the call).
* one thread: the same first/new/warm with ``NUMBA_NUM_THREADS=1`` and ``TOKENIZERS_PARALLELISM=false`` (and
  Model2Vec's ``use_multiprocessing=False``), against the default's two.
* 4 threads: one freshly loaded model shared by ``ThreadPoolExecutor(4).map(encode, 200-text chunks)``, first call
  on A then B.
* long words: 20,000 distinct random 8,000-character words, encoded in batches of 1,000; RSS before and after.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.provenance import SOURCE_ROOT, command_line, cpu_name, subprocess_env, usable_cores, utc_now, versions
from benchmarks.report import emit
from benchmarks.speed.workers import RESULT, default_sentences_file

_WORKER = r"""
import json, os, sys, time
import numpy as np
sys.path.insert(0, sys.argv[5])
from benchmarks.speed.workers import read_status_kb
which, scenario, folder, texts_file, _, vectors_file, long_words = sys.argv[1:8]
lines = open(texts_file, encoding="utf-8").read().split("\n")
a, b = lines[: len(lines) // 2], lines[len(lines) // 2 :]
rss = lambda: read_status_kb("VmRSS") / 1024
out = {"rss_start_mb": rss()}
t0 = time.perf_counter()
if which == "ours":
    from static_model import StaticModel
    model = StaticModel.from_pretrained(folder)
    if sys.argv[8] != "config":
        model.contrast = float(sys.argv[8])
    encode = (lambda x: model.encode(x, workers=2)) if scenario == "workers=2" else model.encode
else:
    from model2vec import StaticModel
    model = StaticModel.from_pretrained(folder)
    single = scenario in ("one thread", "4 threads")
    encode = (lambda x: model.encode(x, use_multiprocessing=False)) if single else model.encode
out["load_s"] = time.perf_counter() - t0
out["rss_after_load_mb"] = rss()
encode(["warm up the compiled kernels and thread pools"])

def timed(fn, *args):
    t = time.perf_counter(); result = fn(*args); return result, time.perf_counter() - t

if scenario in ("default", "one thread", "workers=2"):
    vectors, t = timed(encode, a); out["first_per_s"] = len(a) / t
    _, t = timed(encode, b); out["new_per_s"] = len(b) / t
    out["warm_per_s"] = len(a) / min(timed(encode, a)[1] for _ in range(3))
    if scenario == "default":
        np.save(vectors_file, np.asarray(vectors, dtype=np.float32))
        latencies = [timed(encode, [text])[1] for text in a[:500]]
        out["latency_ms"] = 1000 * float(np.median(latencies))
elif scenario == "4 threads":
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        chunks = lambda x: [x[i : i + 200] for i in range(0, len(x), 200)]
        _, t = timed(lambda x: list(pool.map(encode, chunks(x))), a); out["first_per_s"] = len(a) / t
        _, t = timed(lambda x: list(pool.map(encode, chunks(x))), b); out["new_per_s"] = len(b) / t
elif scenario == "long words":
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    t = time.perf_counter()
    for start in range(0, int(long_words), 1000):
        encode([rng.choice(letters, 8000).tobytes().decode() for _ in range(min(1000, int(long_words) - start))])
    out["long_words_s"] = time.perf_counter() - t
out["rss_end_mb"] = rss()
print("RESULT " + json.dumps(out))
"""

SCENARIOS = ("default", "one thread", "workers=2", "4 threads", "long words")
RUNTIME_PACKAGES = ("numpy", "numba", "tokenizers", "model2vec")


def load_texts(data: Path, n: int, seed: int = 42) -> tuple[list[str], list[str]]:
    """Two disjoint samples of ``n`` distinct texts from corpus_general and the classification sets."""
    texts: set[str] = set()
    sentences = data / "corpus_general" / "sentences.txt"
    if sentences.exists():
        texts.update(sentences.read_text(encoding="utf-8").split("\n"))
    for path in sorted((data / "classification").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.add(json.loads(line)["text"])
    pool = sorted(t.replace("\n", " ").strip() for t in texts if t.strip())
    if len(pool) < 2 * n:  # a UsageError (a ValueError): one error line naming the options, not a traceback
        from distill.cli_checks import UsageError

        raise UsageError(f"--n {n}: only {len(pool)} distinct texts under {data} (--data); two samples of {n} need "
                         f"{2 * n}")
    sample = random.Random(seed).sample(pool, 2 * n)
    return sample[:n], sample[n:]


def _one(which: str, scenario: str, folder: Path, texts_file: Path, vectors_file: Path, long_words: int,
         contrast: str) -> dict:
    one_thread = {"NUMBA_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RAYON_NUM_THREADS": "1"}
    env = subprocess_env(**(one_thread if scenario == "one thread" else {}))
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, which, scenario, str(folder), str(texts_file), str(SOURCE_ROOT),
         str(vectors_file), str(long_words), contrast],
        capture_output=True, text=True, check=False, env=env,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT)), None)
    if line is None:
        raise RuntimeError(f"{which} / {scenario} worker failed: {proc.stderr[-2000:]}")
    return json.loads(line[len(RESULT):])


def run_scenarios(folder: Path, a: list[str], b: list[str], repeats: int = 3, long_words: int = 20_000,
        contrast: str = "0") -> dict:
    """Every scenario for both libraries, ``repeats`` times: medians, every run, and the vectors' max difference."""
    runs: dict = {which: {s: [] for s in SCENARIOS if which == "ours" or s != "workers=2"}
                  for which in ("ours", "model2vec")}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.txt"
        texts_file.write_text("\n".join(a + b), encoding="utf-8")
        vectors = {}
        for _ in range(repeats):
            for scenario in SCENARIOS:
                for which in ("ours", "model2vec") if scenario != "workers=2" else ("ours",):
                    vectors_file = Path(tmp) / f"{which}.npy"
                    run = _one(which, scenario, folder, texts_file, vectors_file, long_words, contrast)
                    runs[which][scenario].append(run)
                    if scenario == "default":
                        vectors[which] = np.load(vectors_file)
    medians = {
        which: {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in scenarios.items()}
        for which, scenarios in runs.items()
    }
    diff = float(np.abs(vectors["ours"] - vectors["model2vec"]).max())
    return {"max_abs_diff": diff, "long_words": long_words, "contrast": contrast, "median": medians, "runs": runs}


def to_markdown(result: dict, *, folder: Path, n: int, repeats: int, command: str, date: str | None = None) -> str:
    """The three tables (throughput, 4 threads, latency and memory) with the run's header."""
    ours, m2v = result["median"]["ours"], result["median"]["model2vec"]
    base = m2v["default"]

    def ratio(value: float, key: str) -> str:
        return f"{value / base[key]:.2f}x"

    pooling = "the plain mean, what Model2Vec computes" if result["contrast"] in ("0", "0.0") else "as set"
    lines = [
        "# Runtime speed: StaticModel vs Model2Vec 0.10, same folder, same texts, one run",
        "",
        f"- Command: `{command}`",
        f"- Date: {date or utc_now()}",
        f"- Machine: {cpu_name()}, {usable_cores()} cores (shared with other jobs: noisy), "
        + ", ".join(f"{k} {v}" for k, v in versions(RUNTIME_PACKAGES).items()),
        f"- Model folder: `{folder}`; texts: {n:,} (sample A) + {n:,} disjoint (sample B) distinct texts from "
        "`corpus_general/sentences.txt` and the classification sets, shuffled with seed 42",
        f"- Every cell is the median of {repeats} fresh subprocesses (the libraries alternating); ratios are "
        "against Model2Vec's default `encode` measured in the same run",
        f"- Our pooling: contrast {result['contrast']} ({pooling}); "
        f"max abs difference between our vectors and Model2Vec's on sample A: {result['max_abs_diff']:.2e}",
        "- first call = the first `encode` on sample A in a freshly loaded process (after a one-text warm-up); "
        "new texts = then sample B (our chunk cache holds only A's words); warm = best of 3 more calls on A",
        "",
        "| runtime | first call texts/s | new texts texts/s | warm texts/s | first / new / warm vs Model2Vec |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in (
        ("ours: encode (2 threads)", ours["default"]),
        ("ours: encode, 1 thread", ours["one thread"]),
        ("ours: encode(workers=2)", ours["workers=2"]),
        ("Model2Vec 0.10: encode (default)", m2v["default"]),
        ("Model2Vec 0.10: encode(use_multiprocessing=False), 1 thread", m2v["one thread"]),
    ):
        lines.append(
            f"| {name} | {row['first_per_s']:,.0f} | {row['new_per_s']:,.0f} | {row['warm_per_s']:,.0f} | "
            + " / ".join(ratio(row[k], k) for k in ("first_per_s", "new_per_s", "warm_per_s")) + " |"
        )
    pairs = list(zip(result["runs"]["ours"]["default"], result["runs"]["model2vec"]["default"]))
    lines += [
        "",
        "Per repeat (ours default / Model2Vec default of the same repeat; the spread is the shared machine's noise): "
        + "first call " + ", ".join(f"{o['first_per_s'] / m['first_per_s']:.2f}x" for o, m in pairs)
        + "; new texts " + ", ".join(f"{o['new_per_s'] / m['new_per_s']:.2f}x" for o, m in pairs)
        + "; warm " + ", ".join(f"{o['warm_per_s'] / m['warm_per_s']:.2f}x" for o, m in pairs) + ".",
    ]
    lines += [
        "",
        "4 threads sharing one freshly loaded model (`ThreadPoolExecutor(4).map(encode, 200-text chunks)`; "
        "Model2Vec with `use_multiprocessing=False`):",
        "",
        "| runtime | first call texts/s | new texts texts/s | first / new vs Model2Vec (4 threads) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in (("ours", ours["4 threads"]), ("Model2Vec 0.10", m2v["4 threads"])):
        ref = m2v["4 threads"]
        lines.append(
            f"| {name} | {row['first_per_s']:,.0f} | {row['new_per_s']:,.0f} | "
            f"{row['first_per_s'] / ref['first_per_s']:.2f}x / {row['new_per_s'] / ref['new_per_s']:.2f}x |"
        )
    lines += [
        "",
        "Latency and memory (RSS of the whole process, MB):",
        "",
        "| runtime | batch-1 latency (ms) | load (s) | RSS after load | RSS after first/new/warm | "
        f"{result['long_words']:,} x 8,000-char words: RSS before / after (time, s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, proc in (("ours", ours), ("Model2Vec 0.10", m2v)):
        long = proc["long words"]
        lines.append(
            f"| {name} | {proc['default']['latency_ms']:.3f} | {proc['default']['load_s']:.2f} | "
            f"{proc['default']['rss_after_load_mb']:.0f} | {proc['default']['rss_end_mb']:.0f} | "
            f"{long['rss_after_load_mb']:.0f} / {long['rss_end_mb']:.0f} ({long['long_words_s']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``runtime-speed``."""
    parser = subparsers.add_parser("runtime-speed", help="our runtime against Model2Vec 0.10 on one folder, "
                                   "scenario by scenario", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a static model folder that both libraries can read")
    parser.add_argument("--data", default=None,  # a str: type=Path would turn an empty --data into "."
                        help="the shared data folder (default: next to the repo)")
    parser.add_argument("--n", type=int, default=10_000, help="texts per sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contrast", default="0",
                        help="our pooling's contrast: 0 (default) is Model2Vec's plain mean; "
                        "'config' keeps the folder's")
    parser.add_argument("--output", default=None, help="write the markdown table here (and .json)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Every scenario, both libraries; print (and with ``--output`` write) the tables."""
    from distill.cli_checks import UsageError, check_model_folder, check_positive_int

    check_positive_int(args.n, "--n")
    check_positive_int(args.repeats, "--repeats")
    if args.contrast != "config":
        from static_model.validation import check_contrast

        try:
            check_contrast(float(args.contrast))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--contrast {args.contrast}: a number or 'config' ({exc})") from None
    check_model_folder(args.folder, "folder")  # was the first worker's traceback
    data = None if args.data is None else Path(args.data).expanduser()  # check_args refused an empty or missing one
    if data is None:
        sentences = default_sentences_file()
        if sentences is None:
            raise UsageError("no --data folder and no shared data folder found")
        data = Path(sentences).parents[1]
    a, b = load_texts(data, args.n)
    result = run_scenarios(args.folder, a, b, args.repeats, contrast=args.contrast)
    result["date"] = utc_now()
    table = to_markdown(result, folder=args.folder, n=args.n, repeats=args.repeats,
                        command=command_line(args.command_line), date=result["date"])
    emit(table, result, args.output)
    return 0
