"""benchmarks.studies.size: the variants it builds, the Pareto front and the report it writes (no suite run here)."""

from __future__ import annotations

import json

from benchmarks.studies.size import TASK_TYPES, Variant, default_variants, pareto, write_report


def _row(name: str, tool: str, size: int, average: float) -> dict:
    return {"name": name, "tool": tool, "label": f"{tool}: {name}", "folder_bytes": size, "weights_bytes": size - 1,
            "average": average, "task_types": dict.fromkeys(TASK_TYPES, average), "datasets": {}}


def test_variants_cover_dtypes_dims_and_clusters_for_both_tools():
    variants = default_variants([4000, 8000], [256, 128, 64])
    names = {v.name for v in variants}
    for tool in ("ours", "model2vec"):
        assert {f"{tool}-float32-256d", f"{tool}-int8-256d", f"{tool}-float16-64d", f"{tool}-float16-256d-8000c",
                f"{tool}-int8-128d-4000c"} <= names
    assert len(names) == len(variants)
    assert Variant("model2vec", "int8", 128, 8000).label == "Model2Vec 0.10: int8, 128 dims, 8k clusters"


def test_pareto_keeps_what_nothing_beats_on_size_and_score():
    rows = [_row("big", "ours", 100, 63.0), _row("mid", "ours", 50, 63.5), _row("small", "ours", 10, 58.0),
            _row("worse", "model2vec", 60, 60.0), _row("tie", "model2vec", 50, 63.5)]
    assert pareto(rows) == {"mid", "tie", "small"}


def test_report_files(tmp_path):
    rows = [_row("a", "ours", 2_000_000, 60.0), _row("b", "model2vec", 3_000_000, 61.0)]
    meta = {"title": "t", "command": "python -m benchmarks.studies.size", "date": "d", "machine": "m",
            "versions": "v", "build": {"ours_kmeans_seconds": {"4000": 1.0}}, "notes": ["cut: x"]}
    write_report(rows, tmp_path / "size", meta)
    text = (tmp_path / "size.md").read_text()
    assert "| ours: a | 2.0 MB | 2.00 MB | **60.00** |" in text and "- cut: x" in text
    assert json.loads((tmp_path / "size.json").read_text())["pareto"] == ["a", "b"]
    assert (tmp_path / "size_pareto.png").stat().st_size > 1000
