"""Distillation time and peak memory: ``distill.distill`` against Model2Vec 0.10 ``model2vec.distill.distill``.

Each run is a fresh subprocess (imports included in the time), so peak RSS is that one run's: from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and ``/proc/self/status`` VmHWM. Both tools distill the same
local teacher folder with the same settings (PCA 256, SIF 1e-4, float16, mean pooling, CPU); runs are
interleaved (tool order alternates per repeat) so that load from other processes hits both alike. CPU
seconds (user + system) are reported beside wall time because the machine may be shared. The runs so far are
rewritten to OUT.partial.md and OUT.partial.json after each run; --output is written once every run is done (the
partial report is then removed), so a failed or interrupted run leaves the report there whole.

    python -m benchmarks distill-speed --repeats 2 --output benchmarks/results/distill_speed.md

(Until the benchmarks were grouped by job this was ``python benchmarks/distill_speed.py``, the command the committed
results record.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.provenance import command_line, cpu_name, machine_info, subprocess_env, versions
from benchmarks.report import report_paths, write
from benchmarks.speed.workers import read_status_kb

# The worker's clock starts before anything else is imported, so its time includes torch/transformers imports.
WORKER = ("import time; started = time.perf_counter(); import sys; from benchmarks.speed.distill_time import worker; "
          "worker(*sys.argv[1:], started=started)")

TEACHERS = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
}
TOOLS = ("distill", "model2vec")
DISTILL_PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "model2vec", "static-embeddings")


def _peak_rss_mib() -> tuple[float, float]:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return ru, (read_status_kb("VmHWM") or 0) / 1024


def worker(tool: str, folder: str, save_to: str | None = None, *, started: float) -> None:
    """One distillation in this process; prints one JSON line. ``started``: the ``perf_counter`` at the process's
    start; ``save_to``: also save the model there (after the clock stops, so saving is not timed)."""
    import resource

    start = time.perf_counter()
    model: Any
    if tool == "distill":
        from distill import distill

        model = distill(folder, pca_dims=256, sif_coefficient=1e-4, dtype="float16", show_progress_bar=False)
        shape = (model.vocab_size, model.dim)
        explained = model.config["distill"]["explained_variance"]
    else:
        from model2vec.distill import distill as m2v_distill

        model = m2v_distill(model_name=folder, pca_dims=256, sif_coefficient=1e-4, quantize_to="float16")
        shape = tuple(model.embedding.shape)
        explained = None
    end = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss, hwm = _peak_rss_mib()
    if save_to:  # ours replaces a model saved by an earlier run only when asked
        model.save_pretrained(save_to, **({"overwrite": True} if tool == "distill" else {}))
    import torch

    print(json.dumps({
        "tool": tool,
        "wall_s": end - started,
        "distill_s": end - start,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_mib": rss,
        "vm_hwm_mib": hwm,
        "shape": shape,
        "explained_variance": explained,
        "torch_threads": torch.get_num_threads(),
    }), flush=True)


def _machine() -> str:
    m = machine_info()
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs visible, {m['memory_gib'] or '?'} GiB RAM, {m['platform']}"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``distill-speed``."""
    p = subparsers.add_parser("distill-speed", help="distill time and peak memory against Model2Vec 0.10's distill",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=list(TEACHERS))
    p.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--output", default="benchmarks/results/distill_speed.md")
    p.add_argument("--save-dir", default=None,
                   help="also save each tool's first model as SAVE_DIR/<tool>-<teacher> (saving is not timed)")
    return p


def worker_failure(tool: str, teacher: str, proc: subprocess.CompletedProcess) -> str:
    """What went wrong in a worker run that printed no result: its exit status and the last line of its output (the
    exception's message, not its traceback)."""
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
    return f"{tool} on {teacher} failed (exit {proc.returncode}): {tail[0] if tail else 'no result printed'}"


def partial_out(out: str | os.PathLike) -> Path:
    """Where the report of the runs so far goes while a run is going: ``OUT.partial`` (``OUT.partial.md`` and
    ``OUT.partial.json``), so a run that fails or is interrupted never replaces a finished report at ``OUT``."""
    md_path, _ = report_paths(out, "--output")
    return md_path.with_name(md_path.stem + ".partial")


def run(args: argparse.Namespace) -> int:
    """Every teacher with every tool, ``--repeats`` times interleaved. The runs so far are rewritten to
    ``partial_out`` after each run; ``--output`` is written once, when every run is done, and the partial report
    is then removed. A worker that fails ends the run: one ``error:`` line (``worker_failure``), exit 1."""
    from distill.cli_checks import EXIT_FAILED, UsageError
    from distill.resolve import resolve_teacher

    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {args.repeats}")
    folders = {name: str(resolve_teacher(hub)) for name, hub in TEACHERS.items() if name in args.teachers}
    env = subprocess_env(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    rows: list[dict] = []
    loads = [os.getloadavg()]
    out = Path(args.output)
    partial = partial_out(out)
    argv = args.command_line
    started = dt.datetime.now(dt.timezone.utc)
    for rep in range(args.repeats):
        for name, folder in folders.items():
            tools = list(args.tools) if rep % 2 == 0 else list(reversed(args.tools))
            for tool in tools:
                cmd = [sys.executable, "-c", WORKER, tool, folder]
                if args.save_dir and rep == 0:
                    cmd.append(str(Path(args.save_dir) / f"{tool}-{name}"))
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode or not lines:
                    if proc.stderr.strip():  # the worker's own traceback, for the details
                        print(proc.stderr[-3000:].rstrip(), file=sys.stderr)
                    print(f"error: {worker_failure(tool, name, proc)}; {args.output} left as it was"
                          + (f", the runs so far in {partial}.md" if rows else ""), file=sys.stderr, flush=True)
                    return EXIT_FAILED
                row = json.loads(lines[-1]) | {"teacher": name, "repeat": rep, "load1": os.getloadavg()[0]}
                rows.append(row)
                _write(partial, rows, folders, started, [loads[0], os.getloadavg()], argv)  # a partial run reports
                print(f"[{rep}] {name:18s} {tool:10s} wall {row['wall_s']:6.1f} s  cpu {row['cpu_s']:6.1f} s  "
                      f"peak {row['peak_rss_mib']:6.0f} MiB  load {row['load1']:.1f}", flush=True)
    print(_write(out, rows, folders, started, [loads[0], os.getloadavg()], argv))
    for path in report_paths(partial):
        path.unlink(missing_ok=True)
    return 0


def _write(out: Path, rows: list[dict], folders: dict[str, str], started: dt.datetime,
           loads: list[tuple[float, ...]], argv: list[str]) -> str:
    report = distill_speed_markdown(rows, folders, started, loads, argv)
    write(report, rows, out)
    return report


def distill_speed_markdown(rows: list[dict], folders: dict[str, str], started: dt.datetime,
                           loads: list[tuple[float, ...]], argv: list[str]) -> str:
    """The medians table and every run, with the header (``argv``: the command as run, e.g. ``["python", "-m",
    "benchmarks", "distill-speed", ...]``; ``loads``: the load averages at the start and the end)."""
    med = statistics.median
    lines = [
        "# Distillation speed and memory: `distill` vs Model2Vec 0.10",
        "",
        f"- Command: `{command_line(argv)}`",
        f"- Date: {started.isoformat(timespec='seconds')}",
        f"- Machine: {_machine()}; CPU only; the machine may be shared (1-min load average "
        f"{loads[0][0]:.1f} at the start, {loads[-1][0]:.1f} at the end; per-run load below)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in versions(DISTILL_PACKAGES).items())}",
        "- Settings, both tools: the teacher's own vocabulary, PCA 256, SIF 1e-4, float16, mean pooling, CPU, "
        "default torch threads; each run a fresh subprocess; time = process start to model returned "
        "(imports, loading, vocabulary pass, post-processing; no saving).",
        "- Peak memory = `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the run's process.",
        "",
        "| teacher | tool | runs | wall s (median) | wall s (min) | CPU s (median) | peak RSS MiB (max) "
        "| vs Model2Vec (wall, median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in folders:
        ref = [r["wall_s"] for r in rows if r["teacher"] == name and r["tool"] == "model2vec"]
        for tool in TOOLS:
            rs = [r for r in rows if r["teacher"] == name and r["tool"] == tool]
            if not rs:
                continue
            wall = [r["wall_s"] for r in rs]
            ratio = f"{med(wall) / med(ref):.2f}x" if ref and tool != "model2vec" else ""
            lines.append(
                f"| {name} | {tool} | {len(rs)} | {med(wall):.1f} | {min(wall):.1f} | "
                f"{med([r['cpu_s'] for r in rs]):.1f} | {max(r['peak_rss_mib'] for r in rs):.0f} | {ratio} |"
            )
    lines += ["", "All runs (in order):", "",
              "| repeat | teacher | tool | wall s | CPU s | peak RSS MiB | load1 after |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['repeat']} | {r['teacher']} | {r['tool']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['load1']:.1f} |")
    return "\n".join(lines) + "\n"

