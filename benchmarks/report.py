"""Markdown and JSON reports, with the run's provenance (command, machine, date, versions)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from .data import TASK_LABELS, TASK_TYPES


# ------------------------------------------------------------------------------------------- provenance
def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except Exception:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "platform": platform.platform(),
            "load_average_at_start": load}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "scipy", "sklearn", "torch", "transformers", "tokenizers", "sentence_transformers",
                "model2vec", "numba"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception:
            continue
    try:
        root = Path(__file__).resolve().parents[1]
        out["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                           text=True, timeout=5).stdout.strip() or None
    except Exception:
        pass
    return out


def provenance(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith("__main__.py"):
        argv = ["python", "-m", "benchmarks", *argv[1:]]
    head = argv[:3] if argv[:2] == ["python", "-m"] else argv[:1]
    command = " ".join([*head, *map(shlex.quote, argv[len(head):])])  # a command one can paste back
    return {"command": command, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_info(), "versions": versions()}


def provenance_markdown(meta: dict) -> str:
    m, v = meta.get("machine", {}), meta.get("versions", {})
    vs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    return (f"- Command: `{meta.get('command', '')}`\n- Date: {meta.get('date', '')}\n"
            f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB"
            f"{'; load average at start ' + str(m['load_average_at_start']) if m.get('load_average_at_start') else ''}\n"
            f"- Versions: {vs}\n")


# ------------------------------------------------------------------------------------------- helpers
def fmt(x, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{nd}f}"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def human_count(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}K"
    return str(n)


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- quality
def quality_markdown(report: dict, *, title: str = "Quality") -> str:
    """Datasets × models, task-type averages, overall average, % of the reference model."""
    models = report["models"]
    names = [m["name"] for m in models]
    ref = report.get("reference") or (names[0] if names else None)
    scores = {m["name"]: {(r["task"], r["dataset"]): r for r in m["results"]} for m in models}
    datasets: list[tuple[str, str]] = []
    for m in models:
        for r in m["results"]:
            if (r["task"], r["dataset"]) not in datasets:
                datasets.append((r["task"], r["dataset"]))
    datasets.sort(key=lambda td: TASK_TYPES.index(td[0]) if td[0] in TASK_TYPES else 99)
    rows = []
    for task, ds in datasets:
        metric = next((scores[n][(task, ds)]["metric"] for n in names if (task, ds) in scores[n]), "")
        rows.append([f"{TASK_LABELS.get(task, task)} / {ds} ({metric})"]
                    + [fmt(scores[n].get((task, ds), {}).get("score")) for n in names])
    tasks_present = [t for t in TASK_TYPES if any(td[0] == t for td in datasets)]
    for t in tasks_present:
        rows.append([f"**{TASK_LABELS.get(t, t)} avg**"]
                    + [fmt(m["summary"]["task_averages"].get(t)) for m in models])
    rows.append(["**Average (mean of task types)**"] + [f"**{fmt(m['summary']['average'])}**" for m in models])
    ref_model = next((m for m in models if m["name"] == ref), None)
    if ref_model is not None:
        ra = ref_model["summary"]["average"]
        rows.append([f"% of {ref}"] + [fmt(100.0 * m["summary"]["average"] / ra) if ra else "–" for m in models])
    info_rows = []
    if any(m.get("info", {}).get("num_parameters") for m in models):
        info_rows.append(["Parameters"] + [human_count(m.get("info", {}).get("num_parameters")) for m in models])
    if any(m.get("info", {}).get("size_on_disk") for m in models):
        info_rows.append(["Size on disk"] + [human_bytes(m.get("info", {}).get("size_on_disk")) for m in models])
    out = [f"## {title}", "", _table(["Dataset (metric ×100)"] + names, rows + info_rows), ""]
    extras = []
    for m in models:
        for r in m["results"]:
            if r.get("task") == "word_similarity" and r.get("extra", {}).get("coverage", 100) < 100:
                extras.append(f"{m['name']} {r['dataset']} coverage {r['extra']['coverage']}%")
    if extras:
        out += ["Word coverage below 100%: " + "; ".join(extras), ""]
    if report.get("config"):
        cfg = report["config"]
        out += [f"Protocol: classification train cap {cfg.get('train_cap')}, LogisticRegression max_iter "
                f"{cfg.get('max_iter')}, seed {cfg.get('seed')}; clustering MiniBatchKMeans batch "
                f"{cfg.get('kmeans_batch_size')}, V-measure mean of {cfg.get('kmeans_runs', 1)} seeds; retrieval nDCG@{cfg.get('ndcg_k')}. "
                f"Average = mean of the task-type averages.", ""]
    if report.get("meta"):
        out += [provenance_markdown(report["meta"])]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- speed
def speed_markdown(report: dict, *, title: str = "Speed") -> str:
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
    out = [f"## {title}", "", _table(header, rows, ["---", "---"] + ["---:"] * 8), ""]
    s = report.get("settings", {})
    out += [f"{s.get('n_sentences')} sentences from `{s.get('sentences_file')}` (seed {s.get('seed')}), "
            f"throughput = best of {s.get('repeats')} single `encode` calls after a warm-up; latency = median of "
            f"{s.get('latency_calls')} batch-of-1 calls. RSS (VmRSS) read in a fresh subprocess per model after "
            f"loading it; 'RSS of model' = after load minus before load (same process, imports included). "
            f"Threads: {s.get('threads', 'default')}.", ""]
    if report.get("distill"):
        out += ["### Distill time", "", _table(["Distill", "seconds", "output"],
                                                [[d["name"], fmt(d.get("seconds"), 1), d.get("output", "")]
                                                 for d in report["distill"]], ["---", "---:", "---"]), ""]
    if report.get("meta"):
        out.append(provenance_markdown(report["meta"]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- ablation
def ablation_markdown(report: dict, *, title: str = "Ablation") -> str:
    models = report["models"]
    tasks_present = [t for t in TASK_TYPES if any(t in m["summary"]["task_averages"] for m in models)]
    base = next((m for m in models if m.get("variant") == report.get("baseline")), models[0] if models else None)
    rows = []
    for m in models:
        ta = m["summary"]["task_averages"]
        delta = m["summary"]["average"] - base["summary"]["average"] if base else float("nan")
        rows.append([m["name"], m.get("description", "")] + [fmt(ta.get(t)) for t in tasks_present]
                    + [f"**{fmt(m['summary']['average'])}**", ("±0.0" if m is base else f"{delta:+.1f}")])
    header = ["Variant", "what changes"] + [TASK_LABELS[t] for t in tasks_present] + ["Average", "Δ vs default"]
    out = [f"## {title}", "", _table(header, rows, ["---", "---"] + ["---:"] * (len(header) - 2)), ""]
    if report.get("build"):
        out += [f"Variants built with: {report['build']}. Average = mean of the task-type averages.", ""]
    if report.get("meta"):
        out.append(provenance_markdown(report["meta"]))
    return "\n".join(out)


def emit(md: str, report: dict, out: str | None) -> None:
    """Print the Markdown report; with ``out``, also write ``OUT.md`` and ``OUT.json``."""
    print(md)
    if out is None:
        return
    stem = Path(out)
    if stem.suffix.lower() in (".md", ".json"):
        stem = stem.with_suffix("")
    md_path, json_path = stem.with_suffix(".md"), stem.with_suffix(".json")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md)
    write_json(report, json_path)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)


def write_json(obj: dict, path: str | os.PathLike) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))
