"""``python -m benchmarks speed``: the speed table. Throughput, batch-of-1 latency, resident memory and size on
disk, per model, each measured in a fresh subprocess on the same sentences; ratios against an anchor. (Distill time:
``python -m benchmarks distill-speed``.)

Throughput: best of ``--repeats`` single ``encode`` calls on the sentence sample after a warm-up call.
Slow models (teachers) use the first ``--slow-n`` sentences of the same sample and one repeat by default, so a
run stays in minutes (their throughput is per sentence, so the ratio still holds).
Latency: median over ``--latency-calls`` calls with one sentence each.
Memory: VmRSS from /proc/self/status, right after loading the model (no psutil).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.quality.encoders import SPEC_HELP
from benchmarks.report import emit, fmt, human_bytes, markdown_table
from benchmarks.speed.workers import (
    default_sentences_file,
    print_result,
    read_status_kb,
    run_worker,
    sample_sentences,
)

DEFAULT_N = 20_000
DEFAULT_SLOW_N = 2_000


# ------------------------------------------------------------------------------------------- worker
def measure(spec: str, sentences: list[str], *, repeats: int = 3, latency_calls: int = 300, slow_n: int | None = None,
            slow_repeats: int = 1, slow_latency_calls: int = 50, device: str | None = None) -> dict:
    """Load ``spec`` in this process and measure it (meant to run in a fresh subprocess)."""
    rss0 = read_status_kb("VmRSS")
    t0 = time.perf_counter()
    from benchmarks.quality.encoders import load_encoder

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


WORKER = ("import sys; from benchmarks.speed.models import worker_main; "
          "sys.exit(worker_main(sys.argv[1:]))")


def worker_main(argv: list[str]) -> int:
    """The fresh subprocess of one model's measurement: ``measure`` it and print the ``RESULT`` line."""
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
    print_result(res)
    return 0


def speed_markdown(report: dict, *, title: str = "Speed") -> str:
    """Models × throughput, batch-1 latency, memory and size, with ratios against the anchor."""
    rows = []
    anchor = report.get("anchor")
    models = report["models"]
    a = next((m for m in models if m["name"] == anchor), None)
    for m in models:
        if m.get("error"):
            rows.append([m["name"], m.get("kind", ""), f"error: {m['error']}"] + [""] * 7)
            continue
        ratio = (f"{m['sentences_per_second'] / a['sentences_per_second']:.2f}×"
                 if a and a.get("sentences_per_second") else "–")
        lat_ratio = (f"{m['latency_ms_median'] / a['latency_ms_median']:.2f}×"
                     if a and a.get("latency_ms_median") else "–")
        rss_ratio = (f"{m['rss_after_load_mb'] / a['rss_after_load_mb']:.2f}×"
                     if a and a.get("rss_after_load_mb") else "–")
        rows.append([m["name"], m.get("kind", ""), f"{m['sentences_per_second']:,.0f}", ratio,
                     fmt(m.get("latency_ms_median"), 3), lat_ratio, fmt(m.get("rss_after_load_mb"), 0),
                     fmt(m.get("rss_model_mb"), 0), rss_ratio, human_bytes(m.get("size_on_disk"))])
    header = ["Model", "kind", "sentences/s", f"× {anchor}" if anchor else "ratio", "batch-1 latency ms (median)",
              "latency ratio", "RSS after load MB", "RSS of model MB", "RSS ratio", "size on disk"]
    out = [f"## {title}", "", markdown_table(header, rows, ["---", "---"] + ["---:"] * 8), ""]
    s = report.get("settings", {})
    out += [f"{s.get('n_sentences')} sentences from `{s.get('sentences_file')}` (seed {s.get('seed')}), "
            f"throughput = best of {s.get('repeats')} single `encode` calls after a warm-up; latency = median of "
            f"{s.get('latency_calls')} batch-of-1 calls. RSS (VmRSS) read in a fresh subprocess per model after "
            f"loading it; 'RSS of model' = after load minus before load (same process, imports included). "
            f"Threads: {s.get('threads', 'default')}.", ""]
    if report.get("meta"):
        out.append(provenance_markdown(report["meta"]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- CLI
def run_speed(specs: list[str], *, sentences_file: Path, n: int = DEFAULT_N, seed: int = 42, repeats: int = 3,
              latency_calls: int = 300, slow_n: int = DEFAULT_SLOW_N, anchor: str | None = None,
              device: str | None = None, progress: bool = True, argv: list[str] | None = None) -> dict:
    """Each spec measured in its own fresh subprocess on one fixed-seed sample; the report with the anchor (an index
    or name; default the first Model2Vec model, else the first) the ratios are against."""
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
            args = ["-c", WORKER, "--worker", spec, "--sentences-file", str(sfile), "--repeats",
                    str(repeats), "--latency-calls", str(latency_calls), "--slow-n", str(slow_n)]
            if device:
                args += ["--device", device]
            res, err = run_worker(args)
            if res is None:
                print(f"speed: {spec} failed: {err}", file=sys.stderr)
                res = {"name": spec, "spec": spec, "error": err}
            else:
                print(f"speed: {res['name']}: {res['sentences_per_second']:,.0f} sentences/s, "
                      f"{res['latency_ms_median']:.3f} ms batch-1, {res['rss_after_load_mb']:.0f} MB RSS",
                      file=sys.stderr)
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
            "meta": provenance(argv)}


def run(args: argparse.Namespace) -> int:
    """Measure every ``-m`` model; print and write the table, or exit 1
    writing nothing when a measurement failed."""
    from distill.cli_checks import EXIT_FAILED, UsageError, check_utf8_text

    if not args.model:
        raise UsageError("nothing to measure: pass -m SPEC (repeatable); distill time: python -m benchmarks "
                         "distill-speed")
    found = Path(check_utf8_text(args.sentences, "--sentences")) if args.sentences else default_sentences_file()
    if found is None:
        raise UsageError("no sentences file: pass --sentences FILE (default: <data>/corpus_general/sentences.txt)")
    sfile = found
    for option in ("n", "slow_n", "repeats", "latency_calls"):
        if getattr(args, option) < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1, got {getattr(args, option)}")
    if args.anchor is not None and args.anchor.isdigit() and int(args.anchor) >= len(args.model):
        raise UsageError(f"--anchor {args.anchor}: there are {len(args.model)} models (-m), so an index is 0 to "
                         f"{len(args.model) - 1}")  # was an IndexError once every model had been measured
    report = run_speed(args.model or [], sentences_file=sfile, n=args.n, seed=args.seed, repeats=args.repeats,
                       latency_calls=args.latency_calls, slow_n=args.slow_n, anchor=args.anchor, device=args.device,
                       progress=not args.no_progress, argv=args.command_line)
    if args.anchor is not None and not args.anchor.isdigit() and report["anchor"] != args.anchor:
        print(f"warning: --anchor {args.anchor}: no model of that name (models: "
              f"{', '.join(m['name'] for m in report['models'])}); the ratios are against {report['anchor']}",
              file=sys.stderr)
    failed = [m["spec"] for m in report["models"] if "error" in m]
    if failed:  # a table with a failed model is not a result: nothing is written
        print(f"error: {len(failed)} measurement(s) failed ({', '.join(failed)}); "
              f"{'nothing written to ' + args.out if args.out else 'no table printed'}", file=sys.stderr)
        return EXIT_FAILED
    emit(speed_markdown(report, title=args.title or "Speed"), report, args.out)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``speed``."""
    p = subparsers.add_parser("speed", help="throughput, latency, memory and size of models")
    p.add_argument("--model", "-m", action="append", help=SPEC_HELP)
    p.add_argument("--sentences", default=None,
                   help="one sentence a line (default: <data>/corpus_general/sentences.txt)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"sentences in the sample (default {DEFAULT_N})")
    p.add_argument("--slow-n", type=int, default=DEFAULT_SLOW_N,
                   help=f"sentences for slow models (teachers), first of the same sample (default {DEFAULT_SLOW_N})")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--latency-calls", type=int, default=300)
    p.add_argument("--anchor", default=None, help="model name (or index) for the ratios (default: the first Model2Vec)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--title", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p
