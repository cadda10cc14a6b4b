"""``python -m benchmarks speed``: throughput, batch-of-1 latency, resident memory and size on disk, per model,
each measured in a fresh subprocess on the same sentences; ratios against an anchor; optionally distill time.

Throughput: best of ``--repeats`` single ``encode`` calls on the sentence sample after a warm-up call.
Slow models (teachers) use the first ``--slow-n`` sentences of the same sample and one repeat by default, so a
run stays in minutes (their throughput is per sentence, so the ratio still holds).
Latency: median over ``--latency-calls`` calls with one sentence each.
Memory: VmRSS from /proc/self/status, right after loading the model (no psutil).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_N = 20_000
DEFAULT_SLOW_N = 2_000


def read_status_kb(field: str = "VmRSS") -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sample_sentences(path: str | os.PathLike, n: int, seed: int = 42) -> list[str]:
    """A fixed-seed sample of ``n`` non-empty lines of ``path`` (reservoir-free: reads all lines once)."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    rng = random.Random(seed)
    if n < len(lines):
        lines = rng.sample(lines, n)
    return lines


def default_sentences_file() -> Path | None:
    from .data import default_data_dir

    root = default_data_dir()
    if root is None:
        return None
    p = root / "corpus_general" / "sentences.txt"
    return p if p.is_file() else None


# ------------------------------------------------------------------------------------------- worker
def measure(spec: str, sentences: list[str], *, repeats: int = 3, latency_calls: int = 300, slow_n: int | None = None,
            slow_repeats: int = 1, slow_latency_calls: int = 50, device: str | None = None) -> dict:
    """Load ``spec`` in this process and measure it (meant to run in a fresh subprocess)."""
    rss0 = read_status_kb("VmRSS")
    t0 = time.perf_counter()
    from .encoders import load_encoder

    enc = load_encoder(spec, device=device)
    load_s = time.perf_counter() - t0
    rss1 = read_status_kb("VmRSS")
    slow = bool(getattr(enc, "slow", False))
    texts = sentences[:slow_n] if (slow and slow_n) else sentences
    reps = slow_repeats if slow else repeats
    lat_calls = slow_latency_calls if slow else latency_calls
    enc.encode(texts[: 64 if slow else 1000])  # warm-up (JIT, thread pools, caches)
    best = float("inf")
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        out = enc.encode(texts)
        best = min(best, time.perf_counter() - t)
    assert out.shape[0] == len(texts)
    lat = []
    for i in range(lat_calls):
        s = [texts[i % len(texts)]]
        t = time.perf_counter()
        enc.encode(s)
        lat.append(time.perf_counter() - t)
    threads = None
    try:
        if "torch" in sys.modules:
            threads = sys.modules["torch"].get_num_threads()
    except Exception:
        pass
    return {
        "name": enc.name, "kind": getattr(enc, "kind", "?"), "spec": spec, "slow": slow,
        "n_sentences": len(texts), "repeats": reps, "seconds_best": best,
        "sentences_per_second": len(texts) / best,
        "latency_ms_median": 1000.0 * float(np.median(lat)), "latency_ms_p90": 1000.0 * float(np.percentile(lat, 90)),
        "latency_calls": lat_calls, "load_seconds": load_s,
        "rss_before_load_mb": rss0 / 1024 if rss0 else None, "rss_after_load_mb": rss1 / 1024 if rss1 else None,
        "rss_model_mb": (rss1 - rss0) / 1024 if rss0 and rss1 else None,
        "rss_peak_mb": (read_status_kb("VmHWM") or 0) / 1024 or None,
        "num_parameters": enc.num_parameters, "size_on_disk": enc.size_on_disk, "dim": int(out.shape[1]),
        "torch_threads": threads,
    }


def _worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--worker", required=True)
    p.add_argument("--sentences-file", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=300)
    p.add_argument("--slow-n", type=int, default=DEFAULT_SLOW_N)
    p.add_argument("--slow-repeats", type=int, default=1)
    p.add_argument("--slow-latency-calls", type=int, default=50)
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    sentences = Path(a.sentences_file).read_text(encoding="utf-8").split("\n")
    res = measure(a.worker, sentences, repeats=a.repeats, latency_calls=a.latency_calls, slow_n=a.slow_n,
                  slow_repeats=a.slow_repeats, slow_latency_calls=a.slow_latency_calls, device=a.device)
    print("RESULT " + json.dumps(res), flush=True)
    return 0


def run_subprocess(args: list[str], timeout: float | None = None) -> tuple[dict | None, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):]), proc.stderr
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]  # the exception's message, not its traceback
    return None, " | ".join(tail) or f"exit code {proc.returncode}"


# ------------------------------------------------------------------------------------------- distill timing
_DISTILL_SNIPPET = r"""
import json, sys, time
kind, teacher, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if kind == "ours":
    import distill
    m = distill.distill(teacher)
    m.save_pretrained(out)
else:
    from distill import resolve_teacher
    from model2vec.distill import distill as m2v_distill
    m = m2v_distill(str(resolve_teacher(teacher)), pca_dims=256)
    m.save_pretrained(out)
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t}))
"""


def time_distill(teacher: str, out_dir: Path, which: tuple[str, ...] = ("ours", "model2vec")) -> list[dict]:
    rows = []
    for kind in which:
        out = out_dir / f"{kind}-{Path(teacher).name}"
        print(f"timing {kind} distill of {teacher} -> {out}", file=sys.stderr)
        res, err = run_subprocess(["-c", _DISTILL_SNIPPET, kind, teacher, str(out)])
        name = f"{'ours (distill.distill)' if kind == 'ours' else 'Model2Vec 0.10 distill(pca_dims=256)'}: {teacher}"
        rows.append({"name": name, "seconds": res["seconds"] if res else None, "output": str(out),
                     **({} if res else {"error": err})})
    return rows


# ------------------------------------------------------------------------------------------- CLI
def run_speed(specs: list[str], *, sentences_file: Path, n: int = DEFAULT_N, seed: int = 42, repeats: int = 3,
              latency_calls: int = 300, slow_n: int = DEFAULT_SLOW_N, anchor: str | None = None,
              device: str | None = None, progress: bool = True) -> dict:
    from .report import provenance

    sentences = sample_sentences(sentences_file, n, seed)
    models = []
    with tempfile.TemporaryDirectory() as tmp:
        sfile = Path(tmp) / "sentences.txt"
        sfile.write_text("\n".join(s.replace("\n", " ") for s in sentences), encoding="utf-8")
        it = specs
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(specs, desc="speed", unit="model")
        for spec in it:
            args = ["-m", "benchmarks.speed", "--worker", spec, "--sentences-file", str(sfile), "--repeats",
                    str(repeats), "--latency-calls", str(latency_calls), "--slow-n", str(slow_n)]
            if device:
                args += ["--device", device]
            res, err = run_subprocess(args)
            if res is None:
                print(f"speed: {spec} failed: {err}", file=sys.stderr)
                res = {"name": spec, "spec": spec, "error": err}
            else:
                print(f"speed: {res['name']}: {res['sentences_per_second']:,.0f} sentences/s, "
                      f"{res['latency_ms_median']:.3f} ms batch-1, {res['rss_after_load_mb']:.0f} MB RSS", file=sys.stderr)
            models.append(res)
    names = [m["name"] for m in models]
    if anchor is not None and anchor.isdigit():
        anchor = names[int(anchor)]
    if anchor not in names:
        anchor = next((m["name"] for m in models if m.get("kind") == "model2vec"), names[0] if names else None)
    return {"models": models, "anchor": anchor,
            "settings": {"sentences_file": str(sentences_file), "n_sentences": len(sentences), "seed": seed,
                         "repeats": repeats, "latency_calls": latency_calls, "slow_n": slow_n,
                         "threads": f"{os.cpu_count()} cores, library defaults"},
            "meta": provenance()}


def cmd_speed(args) -> int:
    from distill.cli_checks import EXIT_FAILED, UsageError, check_utf8_text

    from .report import emit, speed_markdown

    if not args.model and not args.distill_teacher:
        raise UsageError("nothing to measure: pass -m SPEC (repeatable) or --distill-teacher NAME")
    if args.sentences:
        sfile = check_utf8_text(args.sentences, "--sentences")
    else:
        sfile = default_sentences_file()
        if sfile is None:
            raise UsageError("no sentences file: pass --sentences FILE (default: <data>/corpus_general/sentences.txt)")
    for option in ("n", "slow_n", "repeats", "latency_calls"):
        if getattr(args, option) < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    report = run_speed(args.model or [], sentences_file=sfile, n=args.n, seed=args.seed, repeats=args.repeats,
                       latency_calls=args.latency_calls, slow_n=args.slow_n, anchor=args.anchor, device=args.device,
                       progress=not args.no_progress)
    if args.distill_teacher:
        out_dir = Path(args.distill_out) if args.distill_out else Path(".cache/benchmarks/distill")
        report["distill"] = []
        for t in args.distill_teacher:
            report["distill"] += time_distill(t, out_dir)
    failed = [m["spec"] for m in report["models"] if "error" in m]
    failed += [r["name"] for r in report.get("distill", []) if "error" in r]
    if failed:  # a table with a failed model is not a result: nothing is written
        print(f"error: {len(failed)} measurement(s) failed ({', '.join(failed)}); "
              f"{'nothing written to ' + args.out if args.out else 'no table printed'}", file=sys.stderr)
        return EXIT_FAILED
    emit(speed_markdown(report, title=args.title or "Speed"), report, args.out)
    return 0


def add_parser(sub) -> None:
    from .__main__ import SPEC_HELP

    p = sub.add_parser("speed", help="throughput, latency, memory and size of models (and distill time)")
    p.add_argument("--model", "-m", action="append", help=SPEC_HELP)
    p.add_argument("--sentences", default=None, help="one sentence a line (default: <data>/corpus_general/sentences.txt)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"sentences in the sample (default {DEFAULT_N})")
    p.add_argument("--slow-n", type=int, default=DEFAULT_SLOW_N,
                   help=f"sentences for slow models (teachers), first of the same sample (default {DEFAULT_SLOW_N})")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=300)
    p.add_argument("--anchor", default=None, help="model name (or index) for the ratios (default: the first Model2Vec)")
    p.add_argument("--distill-teacher", action="append", default=None,
                   help="also time our distill and Model2Vec's distill of this teacher (repeatable)")
    p.add_argument("--distill-out", default=None, help="where timed distills are saved (default .cache/benchmarks/distill)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--title", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_speed)


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
