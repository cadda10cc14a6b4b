"""benchmarks size: the variants it builds, the Pareto front, the report it writes, and the subcommand end to end
on a work folder that already holds the built variants and their suite results (no distill, no suite run here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.provenance import provenance
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
    meta = {"title": "t", **provenance(["python", "-m", "benchmarks", "size"]),
            "build": {"ours_kmeans_seconds": {"4000": 1.0}}, "notes": ["cut: x"]}
    paths = write_report(rows, tmp_path / "size.md", meta)  # a suffix on OUT is dropped, as every report does
    assert paths == [tmp_path / "size.md", tmp_path / "size.json", tmp_path / "size_pareto.png"]
    text = (tmp_path / "size.md").read_text()
    assert "| ours: a | 2.0 MB | 2.00 MB | **60.00** |" in text and "- cut: x" in text
    assert "- Command: `python -m benchmarks size`" in text and "- Plot: `size_pareto.png`" in text
    assert '- Build times (s, this loaded machine): {"ours_kmeans_seconds": {"4000": 1.0}}' in text
    report = json.loads((tmp_path / "size.json").read_text())
    assert report["pareto"] == ["a", "b"] and report["meta"]["versions"]["python"]
    assert (tmp_path / "size_pareto.png").stat().st_size > 1000


def _built(work: Path, name: str, label: str, average: float, weights: int) -> None:
    """A variant as a finished run leaves it: its folder and its suite report."""
    (work / name).mkdir(parents=True)
    (work / name / "config.json").write_text("{}")
    (work / name / "model.safetensors").write_bytes(b"\0" * weights)
    (work / "suite").mkdir(exist_ok=True)
    summary = {"average": average, "by_task": dict.fromkeys(TASK_TYPES, average)}
    model = {"name": label, "summary": summary, "results": [{"dataset": "sts-x", "score": average}]}
    (work / "suite" / f"{name}.json").write_text(json.dumps({"models": [model]}))


def test_the_subcommand_reports_from_a_work_folder(tmp_path, capsys):
    work, data, out = tmp_path / "work", tmp_path / "data", tmp_path / "res" / "size"
    data.mkdir()
    _built(work, "ours-float32-256d", "ours: float32, 256 dims", 63.0, 4000)
    _built(work, "ours-int8-256d", "ours: int8, 256 dims", 63.1, 1000)  # float16 not built: left out, said so
    (work / "build_log.json").write_text(json.dumps({"ours_distill_seconds": 1.5}))
    rc = main(["size", "--data", str(data), "--work", str(work), "--tools", "ours", "--clusters", "", "--dims",
               "256", "--report-only", "--out", str(out), "--note", "a note", "--note=second"])
    assert rc == 0
    assert "skipped ours-float16-256d: not built" in capsys.readouterr().out
    text = out.with_suffix(".md").read_text()
    assert "- a note\n- second\n" in text and "--note" not in text
    command = f"python -m benchmarks size --data {data} --work {work} --tools ours --clusters '' --dims 256"
    assert f"- Command: `{command} --report-only --out {out}`" in text
    assert "| ours: int8, 256 dims |" in text and '{"ours_distill_seconds": 1.5}' in text
    report = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in report["rows"]] == ["ours-float32-256d", "ours-int8-256d"]
    assert report["pareto"] == ["ours-int8-256d"] and report["meta"]["notes"] == ["a note", "second"]
    assert report["meta"]["machine"]["cores"] >= 1
    assert (tmp_path / "res" / "size_pareto.png").is_file()


def _status(argv: list[str]) -> int | str | None:
    """The exit status ``python -m benchmarks ARGV`` ends with (argparse's own errors exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(("argv", "named"), [
    (["--tools", "ours,m2v"], "--tools"),
    (["--clusters", "4k"], "--clusters"),
    (["--dims", "0"], "--dims"),
    (["--data", "/no/such/folder"], "--data"),
])
def test_bad_options_exit_2_naming_the_option_before_any_work(tmp_path, capsys, argv, named):
    assert _status(["size", "--work", str(tmp_path / "work"), "--report-only", *argv]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "work").exists()
