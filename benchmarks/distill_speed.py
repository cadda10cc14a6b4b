"""Distillation time and peak memory: ``distill.distill`` against Model2Vec 0.10 ``model2vec.distill.distill``.

Each run is a fresh subprocess (imports included in the time), so peak RSS is that one run's: from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and ``/proc/self/status`` VmHWM. Both tools distill the same
local teacher folder with the same settings (PCA 256, SIF 1e-4, float16, mean pooling, CPU); runs are
interleaved (tool order alternates per repeat) so that load from other processes hits both alike. CPU
seconds (user + system) are reported beside wall time because the machine may be shared.

    python benchmarks/distill_speed.py --repeats 2 --output benchmarks/results/distill_speed.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()  # before any heavy import: the worker's time includes torch/transformers imports

TEACHERS = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
}
TOOLS = ("distill", "model2vec")


def _peak_rss_mib() -> tuple[float, float]:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    hwm = 0.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru, hwm


def worker(tool: str, folder: str, save_to: str | None = None) -> None:
    """One distillation in this process; prints one JSON line. ``save_to``: also save the model there
    (after the clock stops, so saving is not timed)."""
    import resource

    start = time.perf_counter()
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
        "wall_s": end - _T0,
        "distill_s": end - start,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_mib": rss,
        "vm_hwm_mib": hwm,
        "shape": shape,
        "explained_variance": explained,
        "torch_threads": torch.get_num_threads(),
    }), flush=True)


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "tokenizers", "numpy", "model2vec", "static-embeddings"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed (run from the source tree)" if pkg == "static-embeddings" else "-"
    return out


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs visible, {mem} RAM, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", nargs="+", metavar="TOOL FOLDER [SAVE_TO]", help=argparse.SUPPRESS)
    p.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=list(TEACHERS))
    p.add_argument("--tools", nargs="+", default=list(TOOLS), choices=list(TOOLS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--output", default="benchmarks/results/distill_speed.md")
    p.add_argument("--save-dir", default=None,
                   help="also save each tool's first model as SAVE_DIR/<tool>-<teacher> (saving is not timed)")
    args = p.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from the source tree too
    from distill.resolve import resolve_teacher

    folders = {name: str(resolve_teacher(hub)) for name, hub in TEACHERS.items() if name in args.teachers}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    rows: list[dict] = []
    loads = [os.getloadavg()]
    out = Path(args.output)
    argv = argv if argv is not None else sys.argv[1:]
    started = dt.datetime.now(dt.timezone.utc)
    for rep in range(args.repeats):
        for name, folder in folders.items():
            tools = list(args.tools) if rep % 2 == 0 else list(reversed(args.tools))
            for tool in tools:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, folder]
                if args.save_dir and rep == 0:
                    cmd.append(str(Path(args.save_dir) / f"{tool}-{name}"))
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode or not lines:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{tool} on {name} failed (exit {proc.returncode})")
                row = json.loads(lines[-1]) | {"teacher": name, "repeat": rep, "load1": os.getloadavg()[0]}
                rows.append(row)
                _write(out, rows, folders, started, [loads[0], os.getloadavg()], argv)  # a partial run still reports
                print(f"[{rep}] {name:18s} {tool:10s} wall {row['wall_s']:6.1f} s  cpu {row['cpu_s']:6.1f} s  "
                      f"peak {row['peak_rss_mib']:6.0f} MiB  load {row['load1']:.1f}", flush=True)
    print(_write(out, rows, folders, started, [loads[0], os.getloadavg()], argv))
    return 0


def _write(out: Path, rows, folders, started, loads, argv) -> str:
    report = _report(rows, folders, started, loads, argv)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return report


def _report(rows, folders, started, loads, argv) -> str:
    med = statistics.median
    lines = [
        "# Distillation speed and memory: `distill` vs Model2Vec 0.10",
        "",
        f"- Command: `{' '.join(['python', 'benchmarks/distill_speed.py', *map(shlex.quote, argv)])}`",
        f"- Date: {started.isoformat(timespec='seconds')}",
        f"- Machine: {_machine()}; CPU only; the machine may be shared (1-min load average "
        f"{loads[0][0]:.1f} at the start, {loads[-1][0]:.1f} at the end; per-run load below)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in _versions().items())}",
        "- Settings, both tools: the teacher's own vocabulary, PCA 256, SIF 1e-4, float16, mean pooling, CPU, "
        "default torch threads; each run a fresh subprocess; time = process start to model returned "
        "(imports, loading, vocabulary pass, post-processing; no saving).",
        "- Peak memory = `resource.getrusage(RUSAGE_SELF).ru_maxrss` of the run's process.",
        "",
        "| teacher | tool | runs | wall s (median) | wall s (min) | CPU s (median) | peak RSS MiB (max) | vs Model2Vec (wall, median) |",
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
    lines += ["", "All runs (in order):", "", "| repeat | teacher | tool | wall s | CPU s | peak RSS MiB | load1 after |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['repeat']} | {r['teacher']} | {r['tool']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['load1']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
