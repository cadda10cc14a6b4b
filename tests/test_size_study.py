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


class _FakeModel:
    """Stands in for both tools' models: a dimension, a saved folder with a config.json, a record of what it was."""

    def __init__(self, what: str, dim: int = 256):
        self.what, self.dim = what, dim

    def truncate_dims(self, dims: int) -> _FakeModel:
        return _FakeModel(f"{self.what}|{dims}d", dims)

    def save_pretrained(self, path, dtype: str | None = None, overwrite: bool = False) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "config.json").write_text(json.dumps({"what": self.what, "dtype": dtype}))


def _fake_tools(monkeypatch) -> list[str]:
    """Both tools' distill, k-means and loading replaced by fakes that record their calls."""
    import model2vec
    import model2vec.distill
    import model2vec.model

    import distill
    import distill.resolve
    import distill.vocabulary_quantization
    import static_model

    calls: list[str] = []

    def load(path) -> _FakeModel:
        calls.append(f"load {Path(path).name}")
        return _FakeModel(json.loads((Path(path) / "config.json").read_text())["what"])

    def ours_distill(teacher, **kw):
        calls.append(f"distill ours {teacher} {kw['pca_dims']} {kw['dtype']}")
        return _FakeModel("ours")

    def m2v_distill(model_name, pca_dims, quantize_to):
        calls.append(f"distill model2vec {model_name} {pca_dims} {quantize_to}")
        return _FakeModel("m2v")

    def quantize_vocabulary(base, k):
        calls.append(f"kmeans ours {k}")
        return _FakeModel(f"{base.what}|{k}c")

    def quantize_model(model, vocabulary_quantization=None, quantize_to=None, dimensionality=None):
        if vocabulary_quantization:
            calls.append(f"kmeans model2vec {vocabulary_quantization}")
            return _FakeModel(f"{model.what}|{vocabulary_quantization}c")
        return _FakeModel(f"{model.what}|{quantize_to}|{dimensionality}", dimensionality or model.dim)

    monkeypatch.setattr(distill, "distill", ours_distill)
    monkeypatch.setattr(distill.vocabulary_quantization, "quantize_vocabulary", quantize_vocabulary)
    monkeypatch.setattr(static_model.StaticModel, "from_pretrained", staticmethod(load))
    monkeypatch.setattr(model2vec.distill, "distill", m2v_distill)
    monkeypatch.setattr(model2vec.model, "quantize_model", quantize_model)
    monkeypatch.setattr(model2vec.StaticModel, "from_pretrained", staticmethod(load))
    monkeypatch.setattr(distill.resolve, "resolve_teacher", lambda name: f"/teachers/{name}")
    return calls


def test_both_tools_distill_once_cluster_once_per_count_and_skip_what_is_built(tmp_path, monkeypatch):
    """build_ours and build_model2vec (one shared helper): the base distilled and timed once, each cluster count's
    k-means run and timed once, every variant saved from the right model, and nothing redone on a rerun."""
    from benchmarks.studies.size import build_model2vec, build_ours

    calls = _fake_tools(monkeypatch)
    variants = default_variants([4000], [256, 128])
    log: dict = {}
    build_ours(variants, tmp_path, "tiny-teacher", log)
    build_model2vec(variants, tmp_path, "tiny-teacher", log)
    assert calls == ["distill ours tiny-teacher 256 float32", "load ours-base-float32", "kmeans ours 4000",
                     "distill model2vec /teachers/tiny-teacher 256 float32", "load model2vec-base-float32",
                     "kmeans model2vec 4000"]
    assert set(log) == {"ours_distill_seconds", "ours_kmeans_seconds", "model2vec_distill_seconds",
                        "model2vec_kmeans_seconds"}
    assert set(log["ours_kmeans_seconds"]) == {"4000"} == set(log["model2vec_kmeans_seconds"])
    assert json.loads((tmp_path / "build_log.json").read_text())["model2vec_kmeans_seconds"].keys() == {"4000"}

    def made(name: str) -> dict:
        return json.loads((tmp_path / name / "config.json").read_text())

    assert made("ours-float32-256d") == {"what": "ours", "dtype": "float32"}
    assert made("ours-int8-128d-4000c") == {"what": "ours|4000c|128d", "dtype": "int8"}
    assert made("model2vec-float16-128d")["what"] == "m2v|float16|128"
    assert made("model2vec-int8-256d-4000c")["what"] == "m2v|4000c|int8|None"
    assert {p.name for p in tmp_path.iterdir() if (p / "config.json").exists()} == (
        {v.name for v in variants} | {"ours-base-float32", "model2vec-base-float32"})
    calls.clear()
    build_ours(variants, tmp_path, "tiny-teacher", log)
    build_model2vec(variants, tmp_path, "tiny-teacher", log)
    assert calls == []


def test_build_variants_reuses_a_distilled_base_and_builds_only_what_is_missing(tmp_path):
    from benchmarks.studies.size import build_variants

    calls: list[str] = []
    _FakeModel("old base").save_pretrained(tmp_path / "ours-base-float32")
    _FakeModel("done").save_pretrained(tmp_path / "ours-float16-256d-8000c")
    variants = [Variant("ours", "float16", 256, 8000), Variant("ours", "int8", 256, 8000),
                Variant("ours", "float16", 256), Variant("model2vec", "float16", 256)]
    log: dict = {}
    build_variants("ours", variants, tmp_path, log,
                   distill=lambda: calls.append("distill"),
                   save_base=lambda model, path: calls.append("save base"),
                   load_base=lambda path: calls.append(f"load {path.name}") or "base",
                   cluster=lambda base, k: calls.append(f"kmeans {base} {k}") or f"{base}+{k}",
                   save=lambda model, v: calls.append(f"save {v.name} from {model}"))
    assert calls == ["load ours-base-float32", "kmeans base 8000", "save ours-int8-256d-8000c from base+8000",
                     "save ours-float16-256d from base"]
    assert list(log) == ["ours_kmeans_seconds"] and (tmp_path / "build_log.json").is_file()
