"""Size study: size on disk against the quality suite for storage dtypes, dimensions and vocabulary clusters,
ours (``distill`` + ``StaticModel.quantize`` / ``truncate_dims`` / ``distill.quantize_vocabulary``) side by side with
Model2Vec's own distill and ``quantize_model`` (its ``vocabulary_quantization``) on the same teacher.

``python -m benchmarks size --data ../shared/data --out benchmarks/results/size`` builds every variant under
``--work`` (kept: a rerun reuses the folders and the per-model suite results), runs the quality suite on each
(``python -m benchmarks quality``, one model a process, in one study run) and writes ``OUT.md``, ``OUT.json`` and
``OUT_pareto.png`` (size on disk against the suite average, the Pareto front of each tool drawn as a line).

(Until it joined the ``python -m benchmarks`` registry this was ``python -m benchmarks.studies.size``, with the same
options: the command the committed results record.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.report import report_paths, save_figure, write, write_json

TASK_TYPES = ("sts", "classification", "pair_classification", "clustering", "retrieval", "word_similarity")
TOOLS = ("ours", "model2vec")
BASE_DIMS = 256  # both tools' float32 distill: PCA to 256 dims (Model2Vec's default), the widest a variant can be


@dataclass
class Variant:
    """One model of the study: how it is made from its tool's float32 distill."""

    tool: str
    dtype: str = "float16"
    dims: int = 256
    clusters: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The folder name, e.g. ``ours-float16-256d-8000c``."""
        return f"{self.tool}-{self.dtype}-{self.dims}d" + (f"-{self.clusters}c" if self.clusters else "")

    @property
    def label(self) -> str:
        """The table's label, e.g. ``Model2Vec 0.10: int8, 128 dims, 8k clusters``."""
        tool = "ours" if self.tool == "ours" else "Model2Vec 0.10"
        clusters = f", {self.clusters // 1000}k clusters" if self.clusters else ""
        return f"{tool}: {self.dtype}, {self.dims} dims{clusters}"


def default_variants(clusters: list[int], dims: list[int], combos: bool = True) -> list[Variant]:
    """Per tool: float32/float16/int8 at 256 dims; float16 at each of ``dims``; float16 at 256 dims with each of
    ``clusters``; and (``combos``) int8 with the smallest and largest cluster counts, at 256 and 128 dims."""
    out = []
    for tool in TOOLS:
        out += [Variant(tool, dtype) for dtype in ("float32", "float16", "int8")]
        out += [Variant(tool, "float16", d) for d in dims if d != 256]
        out += [Variant(tool, "float16", 256, k) for k in clusters]
        if combos and clusters:
            out += [Variant(tool, "int8", 256, min(clusters)), Variant(tool, "int8", 128, min(clusters))]
            if max(clusters) != min(clusters):
                out.append(Variant(tool, "int8", 256, max(clusters)))
    return out


# --------------------------------------------------------------------------- building


def build_ours(variants: list[Variant], work: Path, teacher: str, log: dict[str, Any]) -> None:
    """Our float32 distill once (PCA 256 as Model2Vec's default, SIF 1e-4), then each variant saved."""
    from distill import distill
    from distill.vocabulary_quantization import quantize_vocabulary
    from static_model import StaticModel

    def save(model: Any, v: Variant) -> None:
        if v.dims != model.dim:
            model = model.truncate_dims(v.dims)
        model.save_pretrained(work / v.name, dtype=v.dtype, overwrite=True)

    build_variants(
        "ours", variants, work, log,
        distill=lambda: distill(teacher, pca_dims=256, dtype="float32", show_progress_bar=False),  # Model2Vec's size
        save_base=lambda model, path: model.save_pretrained(path, overwrite=True),
        load_base=StaticModel.from_pretrained, cluster=quantize_vocabulary, save=save)


def build_model2vec(variants: list[Variant], work: Path, teacher: str, log: dict[str, Any]) -> None:
    """Model2Vec 0.10's float32 distill once (its defaults: PCA 256, SIF 1e-4), then ``quantize_model`` per variant
    (its ``vocabulary_quantization``: scikit-learn KMeans, random init, its default inits)."""
    from model2vec import StaticModel as Model2VecModel
    from model2vec.distill import distill as m2v_distill
    from model2vec.model import quantize_model

    from distill.resolve import resolve_teacher

    def save(model: Any, v: Variant) -> None:
        model = quantize_model(model, quantize_to=v.dtype, dimensionality=v.dims if v.dims != model.dim else None)
        model.save_pretrained(str(work / v.name))

    build_variants(
        "model2vec", variants, work, log,
        distill=lambda: m2v_distill(model_name=str(resolve_teacher(teacher)), pca_dims=256, quantize_to="float32"),
        save_base=lambda model, path: model.save_pretrained(str(path)),
        load_base=lambda path: Model2VecModel.from_pretrained(str(path)),
        cluster=lambda base, k: quantize_model(base, vocabulary_quantization=k), save=save)


def build_variants(tool: str, variants: list[Variant], work: Path, log: dict[str, Any], *,
                   distill: Callable[[], Any], save_base: Callable[[Any, Path], None],
                   load_base: Callable[[Path], Any], cluster: Callable[[Any, int], Any],
                   save: Callable[[Any, Variant], None]) -> None:
    """What ``build_ours`` and ``build_model2vec`` share, for ``tool``'s variants not built yet (no
    ``work/NAME/config.json``): the float32 base distilled once into ``work/<tool>-base-float32`` (``distill``
    timed as ``log["<tool>_distill_seconds"]``, then ``save_base``), loaded (``load_base``), each cluster count's
    model made once from it (``cluster`` timed as ``log["<tool>_kmeans_seconds"][k]``, the log saved after each),
    and ``save`` given each variant's model (the base or its clustered model)."""
    todo = [v for v in variants if v.tool == tool and not (work / v.name / "config.json").exists()]
    if not todo:
        return
    base_dir = work / f"{tool}-base-float32"
    if not (base_dir / "config.json").exists():
        start = time.perf_counter()
        model = distill()
        log[f"{tool}_distill_seconds"] = round(time.perf_counter() - start, 1)
        save_base(model, base_dir)
    base = load_base(base_dir)
    clustered: dict[int, Any] = {}
    for v in todo:
        if v.clusters and v.clusters not in clustered:
            start = time.perf_counter()
            clustered[v.clusters] = cluster(base, v.clusters)
            log.setdefault(f"{tool}_kmeans_seconds", {})[str(v.clusters)] = round(time.perf_counter() - start, 1)
            _save_log(work, log)
        save(clustered[v.clusters] if v.clusters else base, v)
        print(f"built {v.name}", flush=True)


def needs_distill(variants: list[Variant], work: Path) -> bool:
    """Whether building ``variants`` in ``work`` distills a base (``build_variants``): some variant not built yet
    whose tool has no saved base. A rerun that distills nothing does not need the teacher."""
    return any(not (work / v.name / "config.json").exists()
               and not (work / f"{v.tool}-base-float32" / "config.json").exists() for v in variants)


def check_teacher_width(teacher: str) -> None:
    """A ``UsageError`` naming ``--teacher`` and its width when the teacher is narrower than the ``BASE_DIMS`` both
    tools distill to (every variant's folder is named for those dims); read from its config, no weights load."""
    from distill.cli_checks import UsageError
    from distill.resolve import TeacherNotFoundError, resolve_teacher
    from distill.teacher import TeacherError, read_teacher_spec

    try:
        width = read_teacher_spec(resolve_teacher(teacher)).hidden_size
    except (TeacherError, TeacherNotFoundError) as exc:
        raise UsageError(f"--teacher {teacher}: {exc}") from None
    if width < BASE_DIMS:
        raise UsageError(f"--teacher {teacher}: {width} dims wide, narrower than the {BASE_DIMS} dims both tools "
                         f"distill to (PCA {BASE_DIMS}); the size study needs a teacher of at least {BASE_DIMS} dims")


def _save_log(work: Path, log: dict[str, Any]) -> None:
    write_json(log, work / "build_log.json")


# --------------------------------------------------------------------------- measuring


def folder_bytes(path: Path) -> tuple[int, int]:
    """(every file of the folder, its ``model.safetensors``) in bytes."""
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total, (path / "model.safetensors").stat().st_size


def run_suite(v: Variant, work: Path, data: str) -> dict[str, Any]:
    """The quality suite on one variant, in its own process; its JSON report (reused when already there)."""
    out = work / "suite" / v.name
    json_path = report_paths(out)[1]
    if not json_path.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        kind = "static" if v.tool == "ours" else "model2vec"
        cmd = [sys.executable, "-m", "benchmarks", "quality", "-m", f"{v.label}={kind}:{work / v.name}",
               "--data", data, "--no-progress", "--cache", "none", "--out", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    report = json.loads(json_path.read_text())
    return report["models"][0]


def row_of(v: Variant, work: Path, suite: dict[str, Any]) -> dict[str, Any]:
    """A variant's line: how it was made, its sizes, the suite's average and task-type means."""
    total, weights = folder_bytes(work / v.name)
    summary = suite["summary"]
    by_type = summary.get("by_task") or summary.get("task_averages") or {}
    return {**asdict(v), "name": v.name, "label": v.label, "folder_bytes": total, "weights_bytes": weights,
            "average": summary["average"], "task_types": {t: by_type.get(t) for t in TASK_TYPES},
            "datasets": {r["dataset"]: r["score"] for r in suite["results"]}}


def pareto(rows: list[dict[str, Any]]) -> set[str]:
    """Names of the rows no other row beats on both size (smaller) and average (higher)."""
    front = set()
    for r in rows:
        if not any(o["folder_bytes"] <= r["folder_bytes"] and o["average"] >= r["average"]
                   and (o["folder_bytes"], o["average"]) != (r["folder_bytes"], r["average"]) for o in rows):
            front.add(r["name"])
    return front


# --------------------------------------------------------------------------- reporting


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], plot_name: str) -> str:
    """The report: one line per variant (Pareto marks), the notes, the run's provenance, build times and the plot."""
    front = pareto(rows)
    fronts = {tool: pareto([r for r in rows if r["tool"] == tool]) for tool in TOOLS}
    head = ["model", "size on disk", "model.safetensors", "average", "STS", "Class.", "Pair", "Clust.", "Retr.",
            "WordSim", "Pareto"]
    lines = [f"## {meta['title']}", "", "| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for r in sorted(rows, key=lambda r: (r["tool"] != "ours", -r["folder_bytes"])):
        types = [r["task_types"].get(t) for t in TASK_TYPES]
        mark = "**all**" if r["name"] in front else ("own tool" if r["name"] in fronts[r["tool"]] else "")
        lines.append("| " + " | ".join([
            r["label"], f"{r['folder_bytes'] / 1e6:.1f} MB", f"{r['weights_bytes'] / 1e6:.2f} MB",
            f"**{r['average']:.2f}**", *(f"{t:.1f}" if isinstance(t, (int, float)) else "" for t in types), mark,
        ]) + " |")
    lines += ["", "Size on disk: every file of the saved folder (weights, tokenizer.json, config, model card); the "
              "tokenizer alone is about 0.7 MB. Average: mean of the six task-type means (README \"Benchmarks\"). "
              "Pareto: no other model is both smaller and better (**all**: among every model; own tool: among that "
              "tool's). Clusters: vocabulary quantization (k-means over the token rows, one row per cluster, a "
              "token → row mapping and per-token weights); 30k = the unquantized table (30,522 token rows).", ""]
    lines += [f"- {note}" for note in meta.get("notes", [])]
    return ("\n".join(lines) + "\n" + provenance_markdown(meta)
            + f"- Build times (s, this loaded machine): {json.dumps(meta['build'])}\n- Plot: `{plot_name}`\n")


def write_report(rows: list[dict[str, Any]], out: str | Path, meta: dict[str, Any]) -> list[Path]:
    """``OUT.md``, ``OUT.json`` (``rows``, ``pareto``, ``meta``) and ``OUT_pareto.png``; returns the three paths."""
    md_path, _ = report_paths(out)
    png = md_path.with_name(f"{md_path.stem}_pareto.png")
    front = pareto(rows)
    md_path, json_path = write(markdown(rows, meta, png.name), {"rows": rows, "pareto": sorted(front), "meta": meta},
                               out)
    plot(rows, front, png, meta["title"])
    return [md_path, json_path, png]


def plot(rows: list[dict[str, Any]], front: set[str], path: Path, title: str) -> None:
    """Size on disk (log x) against the suite average; each tool's Pareto front as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for tool, color in (("ours", "tab:green"), ("model2vec", "tab:blue")):
        mine = [r for r in rows if r["tool"] == tool]
        if not mine:
            continue
        ax.scatter([r["folder_bytes"] / 1e6 for r in mine], [r["average"] for r in mine], color=color, alpha=0.7,
                   edgecolors="black", linewidths=0.5, label="ours" if tool == "ours" else "Model2Vec 0.10")
        own = sorted((r for r in mine if r["name"] in pareto(mine)), key=lambda r: r["folder_bytes"])
        ax.plot([r["folder_bytes"] / 1e6 for r in own], [r["average"] for r in own], color=color, alpha=0.6)
        for r in mine:
            short = r["label"].split(": ", 1)[1].replace(" dims", "d").replace(" clusters", "")
            ax.annotate(short, (r["folder_bytes"] / 1e6, r["average"]), fontsize=6,
                        xytext=(3, 3) if tool == "ours" else (3, -9), textcoords="offset points", color=color)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel("size on disk (MB, log scale)")
    ax.set_ylabel("suite average (mean of 6 task types)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


def _without_notes(argv: list[str]) -> list[str]:
    """The command line less ``--note TEXT`` (the report lists the notes themselves)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg == "--note" or arg.startswith("--note="):
            skip = arg == "--note"
            continue
        out.append(arg)
    return out


def _ints(text: str) -> list[int]:
    """A comma list of positive integers (``--clusters``, ``--dims``)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of integers") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be positive")
    return values


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``size``."""
    p = subparsers.add_parser("size", help="size on disk vs quality: dtypes, dims, vocabulary clusters, ours and "
                              "Model2Vec", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--teacher", default="all-MiniLM-L6-v2")
    p.add_argument("--data", default=None, help="evaluation data folder (default ../shared/data)")
    p.add_argument("--work", default=".cache/size_study", help="folder for the built models and per-model results")
    p.add_argument("--out", default="benchmarks/results/size", help="writes OUT.md, OUT.json and OUT_pareto.png")
    p.add_argument("--clusters", type=_ints, default=[4000, 8000, 16000], help="cluster counts for ours")
    p.add_argument("--model2vec-clusters", type=_ints, default=None,
                   help="cluster counts for Model2Vec (default: --clusters; its k-means runs 10 inits)")
    p.add_argument("--dims", type=_ints, default=[256, 128, 64])
    p.add_argument("--no-combos", action="store_true", help="leave out the int8 + clusters combinations")
    p.add_argument("--tools", default="ours,model2vec", help="comma list of ours, model2vec")
    p.add_argument("--build-only", action="store_true")
    p.add_argument("--no-build", action="store_true", help="run the suite on the variants already built")
    p.add_argument("--skip", default="", help="comma list of variant names to leave out (e.g. model2vec-float32-256d)")
    p.add_argument("--report-only", action="store_true", help="write the report from what the work folder has")
    p.add_argument("--note", action="append", default=[], help="a line for the report's notes (repeatable)")
    return p


def run(args: argparse.Namespace) -> int:
    """Build the variants, run the suite on each, write the report and the plot."""
    from benchmarks.quality.data import resolve_data_dir
    from distill.cli_checks import UsageError

    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown or not tools:
        raise UsageError(f"--tools {args.tools}: choose from {', '.join(TOOLS)}")
    if args.build_only and (args.no_build or args.report_only):
        raise UsageError(f"--build-only and --{'no-build' if args.no_build else 'report-only'}: nothing to do; give "
                         "one of them")
    too_wide = [d for d in args.dims if d > BASE_DIMS]
    if too_wide:  # a failure after the distill otherwise (truncate_dims / quantize_model cannot widen)
        raise UsageError(f"--dims {','.join(map(str, args.dims))}: {too_wide} above the {BASE_DIMS} dims both tools "
                         "distill to")
    ours = [v for v in default_variants(args.clusters, args.dims, not args.no_combos) if v.tool == "ours"]
    m2v_clusters = args.clusters if args.model2vec_clusters is None else args.model2vec_clusters
    m2v = [v for v in default_variants(m2v_clusters, args.dims, not args.no_combos) if v.tool == "model2vec"]
    skip = {name for name in args.skip.split(",") if name}
    not_variants = sorted(skip - {v.name for v in ours + m2v})
    if not_variants:  # a typo left every variant in, silently
        raise UsageError(f"--skip {args.skip}: no variant named {', '.join(map(repr, not_variants))}; the variants: "
                         f"{', '.join(v.name for v in ours + m2v)}")
    variants = [v for v in ours + m2v if v.tool in tools and v.name not in skip]
    if not variants:
        raise UsageError(f"--tools {args.tools} and --skip {args.skip}: every variant is left out")
    data = None if args.build_only else str(resolve_data_dir(args.data))
    work = Path(args.work)
    if not (args.report_only or args.no_build) and needs_distill(variants, work):
        check_teacher_width(args.teacher)  # before any distill: a narrower teacher fails after its vocabulary pass
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / "build_log.json"
    log = json.loads(log_file.read_text()) if log_file.exists() else {}
    meta = provenance(_without_notes(getattr(args, "command_line", None) or ["python", "-m", "benchmarks", "size"]))
    if not (args.report_only or args.no_build):
        if "ours" in tools:
            build_ours(variants, work, args.teacher, log)
            _save_log(work, log)
        if "model2vec" in tools:
            build_model2vec(variants, work, args.teacher, log)
            _save_log(work, log)
    if data is None:
        return 0
    rows = []
    for v in variants:
        if not (work / v.name / "config.json").exists():
            print(f"skipped {v.name}: not built", flush=True)
            continue
        if args.report_only and not (work / "suite" / f"{v.name}.json").exists():
            print(f"skipped {v.name}: no suite result", flush=True)
            continue
        start = time.perf_counter()
        rows.append(row_of(v, work, run_suite(v, work, data)))
        print(f"suite {v.name}: {rows[-1]['average']:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    meta = {"title": f"Size on disk vs quality: {args.teacher}, ours vs Model2Vec 0.10 (dtypes, dims, vocabulary "
                     "clusters)", **meta, "build": log, "notes": args.note}
    paths = write_report(rows, args.out, meta)
    print("wrote " + ", ".join(map(str, paths)))
    return 0
