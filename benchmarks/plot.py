"""``python -m benchmarks plot``: average score against sentences/s (log x), one point per model, marker area
by parameter count, from our own quality and speed JSON reports."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import save_figure


def _norm(name: str) -> str:
    return name.strip().lower()


def _report_error(path: str | Path, problem: str) -> ValueError:
    from distill.cli_checks import UsageError

    return UsageError(f"{path}: {problem}")


def read_report(path: str | Path, kind: str) -> dict:
    """A ``quality`` or ``speed`` JSON report (``kind``) as written by ``benchmarks.report``, checked: a
    ``UsageError`` naming the file when it is missing, unreadable, not JSON or not shaped like such a report."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _report_error(path, f"the {kind} report does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _report_error(path, f"cannot read the {kind} report ({exc})") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _report_error(path, f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(report, dict) or not isinstance(report.get("models"), list):
        raise _report_error(path, f"not a {kind} report (no \"models\" list)")
    for i, model in enumerate(report["models"]):
        problem = _model_problem(model, kind)
        if problem:
            raise _report_error(path, f"models[{i}]: {problem}")
    return report


def _model_problem(model: Any, kind: str) -> str | None:
    """What makes one entry of a report's ``models`` unusable for the plot, or None."""
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return "not an object with a \"name\""
    if kind == "quality":
        summary = model.get("summary")
        if not isinstance(summary, dict) or "average" not in summary:
            return f"{model['name']}: no summary.average"
        if summary["average"] is not None and not _is_number(summary["average"]):
            return f"{model['name']}: summary.average is not a number"
    elif not model.get("error") and not (_is_number(model.get("sentences_per_second"))
                                         and model["sentences_per_second"] > 0):
        return f"{model['name']}: sentences_per_second is not a positive number"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def collect_points(quality: dict | list[dict], speed: dict | list[dict]) -> list[dict]:
    """Join quality and speed reports by model name (then by a non-empty spec); a quality model with no speed entry
    is left out and named on stderr."""
    qs = quality if isinstance(quality, list) else [quality]
    ss = speed if isinstance(speed, list) else [speed]
    speed_by: dict[str, dict] = {}
    for report in ss:
        for m in report["models"]:
            if not m.get("error"):
                speed_by[_norm(m["name"])] = m
                if _spec(m):  # a model without a spec is joined by name only (never by an empty spec)
                    speed_by[_norm(_spec(m))] = m
    points, seen, unmatched = [], set(), []
    for q in qs:
        for m in q["models"]:
            s = speed_by.get(_norm(m["name"])) or (speed_by.get(_norm(_spec(m))) if _spec(m) else None)
            if s is None and _norm(m["name"]) not in seen and m["name"] not in unmatched:
                unmatched.append(m["name"])
            if s is None or _norm(m["name"]) in seen:
                continue
            seen.add(_norm(m["name"]))
            if m["summary"]["average"] is None:  # NaN when it was scored (strict JSON writes null)
                print(f"note: {m['name']} has no average score (null); left out of the plot", file=sys.stderr)
                continue
            info = m.get("info") if isinstance(m.get("info"), dict) else {}
            params = next((v for v in (s.get("num_parameters"), info.get("num_parameters"))
                           if v is not None and _is_number(v) and v > 0), None)  # a string, 0 or -5: none
            points.append({"name": m["name"], "average": m["summary"]["average"], "kind": s.get("kind", ""),
                           "sentences_per_second": s["sentences_per_second"], "num_parameters": params})
    if points:  # with none, the command's error says that no model is in both
        for name in unmatched:
            print(f"note: {name} is in no speed report (by name or spec); left out of the plot", file=sys.stderr)
    return points


def _spec(model: dict) -> str:
    """A report entry's ``spec`` when it is a non-empty string, else ``""``."""
    spec = model.get("spec")
    return spec if isinstance(spec, str) and spec.strip() else ""


_COLORS = {"teacher": "tab:red", "st": "tab:red", "model2vec": "tab:blue", "static": "tab:green"}


def plot_points(points: list[dict], out: str | Path, *, title: str = "Quality vs speed (CPU)") -> Path:
    """Draw ``collect_points``' points (log-x sentences/s, y average, marker area ~ parameters) into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    params = np.asarray([p["num_parameters"] or 1e6 for p in points], dtype=float)
    # marker area proportional to parameter count, scaled into a readable range
    area = 60 + 1400 * np.sqrt(params / params.max()) if len(params) else params
    placed: list[tuple[float, float]] = []  # label anchors (log10 x, y): nearby points get stacked labels
    for p, a in sorted(zip(points, area), key=lambda pa: -pa[0]["average"]):
        x, y = p["sentences_per_second"], p["average"]
        ax.scatter(x, y, s=a, alpha=0.55, color=_COLORS.get(p["kind"], "tab:gray"), edgecolors="black",
                   linewidths=0.6)
        label = p["name"] + (f" ({p['num_parameters'] / 1e6:.1f}M params)" if p["num_parameters"] else "")
        ly = y + 0.6
        while any(abs(np.log10(x) - px) < 0.6 and abs(ly - py) < 0.75 for px, py in placed):
            ly -= 0.8
        placed.append((float(np.log10(x)), ly))
        ax.annotate(label, (x, y), xytext=(x * 1.35, ly), textcoords="data", fontsize=7.5, va="center",
                    arrowprops={"arrowstyle": "-", "color": "gray", "lw": 0.5})
    ax.set_xscale("log")
    ax.set_xlabel("sentences / second (log scale, CPU)")
    ax.set_ylabel("average score (mean of task-type averages, ×100)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=k, markersize=8, alpha=0.6)
               for k, c in (("teacher (transformer)", "tab:red"), ("Model2Vec 0.10", "tab:blue"),
                            ("ours (static_model)", "tab:green"))
               if any(_COLORS.get(p["kind"]) == c for p in points)]
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=8, title="marker area ~ parameters", title_fontsize=8)
    if points:
        xs = [p["sentences_per_second"] for p in points]
        ax.set_xlim(min(xs) / 2.5, max(xs) * 4)
        ys = [p["average"] for p in points]
        ax.set_ylim(min(ys) - 4 - 0.8 * len(ys), max(ys) + 4)
    fig.tight_layout()
    try:
        return save_figure(fig, out)
    finally:
        plt.close(fig)


def check_image_name(out: str) -> None:
    """``--out``'s suffix names an image format matplotlib writes (no suffix: PNG); a usage error otherwise (was
    matplotlib's ValueError traceback after reading the reports)."""
    from matplotlib.backend_bases import FigureCanvasBase

    from distill.cli_checks import UsageError

    suffix = Path(out).suffix.lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise UsageError(f"--out {out}: matplotlib cannot write .{suffix} images; use one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")


def run(args: argparse.Namespace) -> int:
    """Join the reports, draw the PNG, list the points on stderr. A missing or malformed report is a usage error
    naming the file (exit 2), as is no model in both."""
    from distill.cli_checks import UsageError

    check_image_name(args.out)
    quality = [read_report(p, "quality") for p in args.quality]
    speed = [read_report(p, "speed") for p in args.speed]
    points = collect_points(quality, speed)
    if not points:
        raise UsageError("no model appears in both the quality and the speed reports (names must match)")
    out = plot_points(points, args.out, title=args.title or "Quality vs speed (CPU)")
    for p in points:
        print(f"{p['name']}: avg {p['average']:.1f}, {p['sentences_per_second']:,.0f} sentences/s, "
              f"{p['num_parameters']} params", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``plot``."""
    p = subparsers.add_parser("plot", help="PNG of average score vs sentences/s from quality and speed JSON reports")
    p.add_argument("--quality", action="append", required=True, help="quality JSON (repeatable)")
    p.add_argument("--speed", action="append", required=True, help="speed JSON (repeatable)")
    p.add_argument("--out", default="benchmarks/results/quality_vs_speed.png")
    p.add_argument("--title", default=None)
    p.set_defaults(out_is_file=True)  # --out is the image itself, not a report name (benchmarks.__main__)
    return p
