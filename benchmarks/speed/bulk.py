"""Bulk encoding and featurization at scale, measured side by side in one run (``benchmarks/results/scale.md``).

    python -m benchmarks scale-speed MODEL_FOLDER [--lines 1000000] [--featurize 4000] [--output ...]

(Until the benchmarks were grouped by job this was ``python -m benchmarks.scale_speed``, the command the committed
results record.)

Each mode runs in a fresh subprocess on the same input: ``StaticModel.encode`` on every line in one process,
Model2Vec 0.10's default ``encode`` (it uses its multiprocessing path above 10,000 texts) on the same folder, and
``scale.encode_files`` on a local Ray cluster with 1 and 2 workers (cluster start included in the wall time and
reported apart). Peak memory: the process's VmHWM; Ray workers' peak resident memory is sampled from /proc every
0.2 s. Featurization: ``scale.featurize_on_ray`` with 1 and 2 teacher workers against single-process
``distill.refine.featurize.featurize``, all-MiniLM-L6-v2 on the first passages of the corpus.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.provenance import command_line, cpu_name, subprocess_env, usable_cores, utc_now, versions
from benchmarks.report import emit
from benchmarks.speed.workers import RESULT

_WORKER = r"""
import json, os, sys, threading, time
from pathlib import Path
mode, folder, lines_file, out_dir, extra = sys.argv[1:6]

def status_kb(pid, field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0

worker_peaks = {}
stop = threading.Event()
def sample(prefix):
    while not stop.is_set():
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if open(f"/proc/{entry}/cmdline", "rb").read().startswith(prefix):
                        worker_peaks[entry] = max(worker_peaks.get(entry, 0), status_kb(entry, "VmRSS"))
                except OSError:
                    pass
        time.sleep(0.2)

out = {"mode": mode}
t0 = time.perf_counter()
if mode in ("ours", "model2vec"):
    texts = open(lines_file, encoding="utf-8").read().split("\n")[:-1]
    if mode == "ours":
        from static_model import StaticModel
    else:
        from model2vec import StaticModel
    model = StaticModel.from_pretrained(folder)
    t1 = time.perf_counter()
    vectors = model.encode(texts)
    out.update(texts=len(texts), encode_s=time.perf_counter() - t1)
elif mode.startswith("ray") and ":" not in mode:
    import ray
    from scale import encode_files
    workers = int(mode[3:])
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="error",
             _node_ip_address="127.0.0.1")
    out["cluster_start_s"] = time.perf_counter() - t0
    sampler = threading.Thread(target=sample, args=(b"ray::_Encoder",), daemon=True); sampler.start()
    t1 = time.perf_counter()
    report = encode_files(folder, [lines_file], out_dir, workers=workers, progress=False)
    out.update(texts=report.rows, encode_s=time.perf_counter() - t1)
    stop.set(); ray.shutdown()
else:  # featurize
    kind, n = mode.split(":")
    from distill.refine.corpus import read_corpus
    texts = read_corpus(lines_file, int(n))
    if kind == "single":
        import torch
        from distill import Teacher
        from distill.refine.featurize import featurize
        teacher = Teacher(folder, device="cpu")
        t1 = time.perf_counter()
        featurize(teacher, texts, cache_dir=out_dir, chunk_size=1000, show_progress_bar=False)
        out.update(texts=len(texts), encode_s=time.perf_counter() - t1, torch_threads=torch.get_num_threads())
    else:
        import ray
        from scale import featurize_on_ray
        workers = int(kind[3:])
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
                 _node_ip_address="127.0.0.1")
        out["cluster_start_s"] = time.perf_counter() - t0
        sampler = threading.Thread(target=sample, args=(b"ray::_Featurizer",), daemon=True); sampler.start()
        t1 = time.perf_counter()
        featurize_on_ray(folder, texts, cache_dir=out_dir, chunk_size=1000, workers=workers, progress=False)
        out.update(texts=len(texts), encode_s=time.perf_counter() - t1)
        stop.set(); ray.shutdown()
out["wall_s"] = time.perf_counter() - t0
out["peak_rss_mb"] = status_kb("self", "VmHWM") / 1024
out["worker_peak_rss_mb"] = [kb / 1024 for kb in worker_peaks.values()]
print("RESULT " + json.dumps(out))
"""


def run_mode(mode: str, folder: str, lines_file: Path, tmp: Path) -> dict:
    """One mode (``ours``, ``model2vec``, ``ray1``, ``ray2``, or ``KIND:N`` featurization) in a fresh subprocess."""
    out_dir = tmp / mode.replace(":", "_")
    proc = subprocess.run([sys.executable, "-c", _WORKER, mode, folder, str(lines_file), str(out_dir), ""],
                          capture_output=True, text=True, check=False, env=subprocess_env())
    line = next((x for x in proc.stdout.splitlines() if x.startswith(RESULT)), None)
    if line is None:
        raise RuntimeError(f"mode {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len(RESULT):])


def write_lines(source: Path, n: int, target: Path) -> None:
    """The first ``n`` lines of ``source``, repeated in order until there are ``n`` (blank lines dropped)."""
    lines = [x.strip() for x in source.read_text(encoding="utf-8").split("\n") if x.strip()]
    with open(target, "w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(lines[i % len(lines)] + "\n")


def to_markdown(results: list[dict], *, command: str, lines: int, source: Path) -> str:
    """The bulk-encoding table (ratios against Model2Vec) and the featurization table, with the run's header."""
    by_mode = {r["mode"]: r for r in results}
    base = by_mode["model2vec"]["texts"] / by_mode["model2vec"]["encode_s"]
    rows = [
        "# Scale: bulk encoding and featurization, one run",
        "",
        f"- Command: `{command}`",
        f"- Date: {utc_now()}",
        f"- Machine: {cpu_name()}, {usable_cores()} CPU cores (shared machine: compare within this run), "
        + ", ".join(f"{k} {v}" for k, v in versions(("numpy", "numba", "tokenizers", "model2vec", "ray")).items()),
        f"- Input: {lines:,} lines, `{source}` repeated in order",
        "",
        "## Bulk encoding",
        "",
        "| mode | texts/s (encode) | vs Model2Vec | wall (s) | cluster start (s) | driver peak RSS (MB) "
        "| worker peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"ours": "StaticModel.encode, one process (all vectors in memory)",
             "model2vec": "Model2Vec 0.10 encode (default: multiprocessing above 10k texts)",
             "ray1": "scale.encode_files, local Ray, 1 worker (vectors streamed to Parquet)",
             "ray2": "scale.encode_files, local Ray, 2 workers (vectors streamed to Parquet)"}
    for mode in ("ours", "model2vec", "ray1", "ray2"):
        r = by_mode.get(mode)
        if r is None:
            continue
        speed = r["texts"] / r["encode_s"]
        workers = ", ".join(f"{x:.0f}" for x in r["worker_peak_rss_mb"]) or "-"
        rows.append(f"| {names[mode]} | {speed:,.0f} | {speed / base:.2f}x | {r['wall_s']:.1f} | "
                    f"{r.get('cluster_start_s', 0):.1f} | {r['peak_rss_mb']:.0f} | {workers} |")
    feats = [r for r in results if r["mode"].startswith(("single:", "ray1:", "ray2:"))]
    if feats:
        single = next(r for r in feats if r["mode"].startswith("single"))
        rows += ["", "## Featurization (all-MiniLM-L6-v2 teacher, CPU)", "",
                 "| mode | passages/s | vs one process | worker peak RSS (MB) |", "|---|---:|---:|---:|"]
        for r in feats:
            speed = r["texts"] / r["encode_s"]
            label = {"single": f"distill.refine featurize, one process ({single.get('torch_threads')} torch threads)",
                     "ray1": "scale.featurize_on_ray, 1 teacher worker (2 threads)",
                     "ray2": "scale.featurize_on_ray, 2 teacher workers (1 thread each)"}[r["mode"].split(":")[0]]
            workers = ", ".join(f"{x:.0f}" for x in r["worker_peak_rss_mb"]) or "-"
            ratio = speed / (single["texts"] / single["encode_s"])
            rows.append(f"| {label} | {speed:,.1f} | {ratio:.2f}x | {workers} |")
    return "\n".join(rows) + "\n"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``scale-speed``."""
    parser = subparsers.add_parser("scale-speed", help="bulk encoding (one process, Model2Vec, Ray) and "
                                   "featurization at scale", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a static model folder that both libraries can read")
    parser.add_argument("--source", type=Path, default=Path("../shared/data/corpus_general/sentences.txt"))
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--featurize", type=int, default=4000, help="passages to featurize per mode (0: skip)")
    parser.add_argument("--teacher", default="all-MiniLM-L6-v2")
    parser.add_argument("--output", default=None, help="write the markdown table here (and .json)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Every mode on the same ``--lines`` lines; print (and with ``--output`` write) the tables."""
    from distill.cli_checks import UsageError, check_model_folder, check_positive_int

    if not args.source.is_file():
        raise UsageError(f"--source {args.source}: " + ("a folder, not a file" if args.source.is_dir()
                                                          else "does not exist"))
    check_positive_int(args.lines, "--lines")  # 0 was numpy's traceback after the first mode had run
    if args.featurize < 0:
        raise UsageError(f"--featurize must be 0 (skip) or more, got {args.featurize}")
    check_model_folder(args.folder, "folder")
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        lines_file = tmp / "lines.txt"
        write_lines(args.source, args.lines, lines_file)
        for mode in ("ours", "model2vec", "ray1", "ray2"):
            results.append(run_mode(mode, args.folder, lines_file, tmp))
            print(json.dumps(results[-1]), flush=True)
        if args.featurize:
            for kind in ("single", "ray1", "ray2"):
                results.append(run_mode(f"{kind}:{args.featurize}", args.teacher, lines_file, tmp))
                print(json.dumps(results[-1]), flush=True)
    table = to_markdown(results, command=command_line(args.command_line), lines=args.lines, source=args.source)
    emit(table, results, args.output)
    return 0
