"""The report writer and the commands around it: --out names keep their dots, both files are written atomically and
checked before the run, the JSON is strict, and plot reads only well-formed reports (one-line errors, exit 2)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_data import write_tiny_data

from benchmarks import report
from benchmarks.__main__ import main
from distill.cli_checks import UsageError


def _strict_load(path: Path):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


# ----------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(("out", "stem"), [("minilm_v1.2", "minilm_v1.2"), ("a.b.c", "a.b.c"), ("q.md", "q"),
                                           ("q.JSON", "q"), ("v1.2.json", "v1.2"), ("plain", "plain")])
def test_report_paths_keep_every_dot_but_a_final_md_or_json(tmp_path, out, stem):
    md, js = report.report_paths(tmp_path / out)
    assert (md.name, js.name) == (f"{stem}.md", f"{stem}.json")
    assert md.parent == js.parent == tmp_path


def test_write_keeps_the_dots_of_the_name(tmp_path):
    md, js = report.write("# r\n", {"a": 1}, tmp_path / "res" / "minilm_v1.2")
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["minilm_v1.2.json", "minilm_v1.2.md"]
    assert md.read_text() == "# r\n" + report.json_digest_line(js.read_bytes()) and _strict_load(js) == {"a": 1}
    assert report.pair_matches(tmp_path / "res" / "minilm_v1.2")


@pytest.mark.parametrize("out", ["results/", ".md", ".json", "."])
def test_a_name_that_is_no_file_name_is_a_usage_error(tmp_path, out):
    with pytest.raises(UsageError, match="--out .*give a file name"):
        report.report_paths(out)


# ----------------------------------------------------------------------------------------- atomic


def test_write_goes_through_a_flushed_temporary_file_in_the_same_folder(tmp_path, monkeypatch):
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else "?"))
        return real_fsync(fd)

    def replace(src, dst):
        calls.append(("replace", f"{src} -> {dst}"))
        assert Path(src).parent == Path(dst).parent
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    report.write("# r\n", {"a": 1}, tmp_path / "r")
    replaces = [i for i, (kind, _) in enumerate(calls) if kind == "replace"]
    assert len(replaces) == 2  # the .md and the .json, each renamed into place
    for i in replaces:
        src = calls[i][1].split(" -> ")[0]
        assert calls[i - 1][0] == "fsync" and calls[i - 1][1] in (src, "?")  # the temporary file, flushed first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]  # no temporary left


def test_a_crash_while_writing_leaves_the_old_report_whole(tmp_path, monkeypatch):
    report.write("# old\n", {"old": True}, tmp_path / "r")

    def crash(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="No space"):
        report.write("# new\n", {"new": True}, tmp_path / "r")
    monkeypatch.undo()
    assert (tmp_path / "r.md").read_text().startswith("# old\n") and _strict_load(tmp_path / "r.json") == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"] and report.pair_matches(tmp_path / "r")


def test_a_crash_between_the_two_files_leaves_a_pair_that_says_it_does_not_match(tmp_path, monkeypatch):
    """The .md and .json are renamed one after the other: a kill between the two renames left a new .json beside
    the old .md, and nothing told them apart from a pair written together."""
    report.write("# old\n", {"old": True}, tmp_path / "r")
    real = report.atomic_write_text

    def killed_before_the_md(path, text):
        if path.suffix == ".md":
            raise KeyboardInterrupt  # the run stopped between the two writes
        real(path, text)

    monkeypatch.setattr(report, "atomic_write_text", killed_before_the_md)
    with pytest.raises(KeyboardInterrupt):
        report.write("# new\n", {"new": True}, tmp_path / "r")
    monkeypatch.undo()
    assert _strict_load(tmp_path / "r.json") == {"new": True}  # the JSON, the data of record, is written first
    assert (tmp_path / "r.md").read_text().startswith("# old\n")
    assert not report.pair_matches(tmp_path / "r")  # the old .md names the old .json's digest, not this one's
    report.write("# new\n", {"new": True}, tmp_path / "r")
    assert report.pair_matches(tmp_path / "r")
    (tmp_path / "r.md").write_text("# by hand\n")  # no digest line: not known to match
    assert not report.pair_matches(tmp_path / "r")
    (tmp_path / "r.json").unlink()
    assert not report.pair_matches(tmp_path / "r")


def test_a_report_that_cannot_be_serialized_touches_neither_file(tmp_path):
    report.write("# old\n", {"old": True}, tmp_path / "r")
    with pytest.raises(TypeError, match="object"):
        report.write("# new\n", {"bad": object()}, tmp_path / "r")
    assert (tmp_path / "r.md").read_text().startswith("# old\n") and _strict_load(tmp_path / "r.json") == {"old": True}


# ----------------------------------------------------------------------------------------- strict JSON


def test_json_is_strict_non_finite_values_become_null(tmp_path):
    obj = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "np": np.float32("nan"), "ok": np.float64(1.5),
           "arr": np.array([1.0, np.nan, np.inf]), "nested": [{"x": (math.nan, 2)}], "i": np.int64(3),
           "flag": np.bool_(True), "path": Path("a/b")}
    text = report.json_text(obj)
    back = json.loads(text, parse_constant=lambda t: pytest.fail(f"non-standard token {t}"))
    assert back == {"nan": None, "inf": None, "ninf": None, "np": None, "ok": 1.5, "arr": [1.0, None, None],
                    "nested": [{"x": [None, 2]}], "i": 3, "flag": True, "path": "a/b"}
    json.dumps(back, allow_nan=False)
    report.write_json(obj, tmp_path / "x.json")
    assert _strict_load(tmp_path / "x.json") == back


# ----------------------------------------------------------------------------------------- --out checked first


@pytest.fixture
def static_folder(tmp_path, tiny_model):
    folder = tmp_path / "tiny-static"
    tiny_model.save_pretrained(folder)
    return folder


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if a quality run starts (its first step loads the datasets)."""
    from benchmarks.quality import suite

    def started(args):
        raise AssertionError("the run started before --out was checked")

    monkeypatch.setattr(suite, "load_datasets", started)


def _bad_outs(tmp_path: Path) -> list[tuple[str, str]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "r.md").mkdir()
    return [(str(blocker / "sub" / "q"), "is a file, so no folder can be created"),
            (str(tmp_path / "a-folder"), "is a folder"),
            (str(tmp_path / "r"), "is a folder"),  # r.md is a folder: the report could not be written there
            (str(tmp_path) + "/", "give a file name")]


def test_quality_out_is_checked_before_the_run(tmp_path, static_folder, no_run, capsys):
    for out, problem in _bad_outs(tmp_path):
        rc = main(["quality", "-m", f"static:{static_folder}", "--data", str(tmp_path), "--out", out])
        err = capsys.readouterr().err.strip()
        assert rc == 2, out
        assert err.startswith("error: --out ") and problem in err and "\n" not in err, err


def test_output_of_the_speed_commands_is_checked_too(tmp_path, static_folder, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc = main(["runtime-speed", str(static_folder), "--output", str(blocker / "speed.md")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --output ") and "is a file" in err


def test_quality_out_with_dots_end_to_end(tmp_path, static_folder, capsys):
    root = write_tiny_data(tmp_path / "data")
    rc = main(["quality", "-m", f"static:{static_folder}", "--data", str(root), "--tasks", "sts,word_similarity",
               "--cache", "none", "--no-progress", "--out", str(tmp_path / "res" / "minilm_v1.2")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["minilm_v1.2.json", "minilm_v1.2.md"]
    rep = _strict_load(tmp_path / "res" / "minilm_v1.2.json")
    assert rep["models"][0]["name"] == "tiny-static"


# ----------------------------------------------------------------------------------------- plot


def _quality_report(*names_averages):
    return {"models": [{"name": n, "spec": f"static:{n}", "summary": {"average": a, "task_averages": {}},
                        "results": []} for n, a in names_averages]}


def _speed_report(*names_speeds):
    return {"models": [{"name": n, "kind": "static", "sentences_per_second": s, "num_parameters": 1000}
                       for n, s in names_speeds]}


def _plot(tmp_path: Path, quality, speed, capsys) -> tuple[int, str]:
    q, s = tmp_path / "q.json", tmp_path / "s.json"
    for path, content in ((q, quality), (s, speed)):
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    rc = main(["plot", "--quality", str(q), "--speed", str(s), "--out", str(tmp_path / "p.png")])
    return rc, capsys.readouterr().err.strip()


GOOD_Q = _quality_report(("a", 60.0), ("b", 50.0))
GOOD_S = _speed_report(("a", 1000.0), ("b", 5000.0))


@pytest.mark.parametrize(("quality", "speed", "file", "problem"), [
    (None, GOOD_S, "q.json", "the quality report does not exist"),
    ("{not json", GOOD_S, "q.json", "not JSON (line 1"),
    ("", GOOD_S, "q.json", "not JSON"),
    ([1, 2], GOOD_S, "q.json", "no \"models\" list"),
    ({"models": [{"name": "a"}]}, GOOD_S, "q.json", "models[0]: a: no summary.average"),
    ({"models": [{"name": "a", "summary": {"average": "high"}}]}, GOOD_S, "q.json", "not a number"),
    ({"models": [{"summary": {"average": 1.0}}]}, GOOD_S, "q.json", "models[0]: not an object with a \"name\""),
    (GOOD_Q, {"models": "x"}, "s.json", "not a speed report"),
    (GOOD_Q, _speed_report(("a", "fast")), "s.json", "sentences_per_second is not a positive number"),
    (GOOD_Q, _speed_report(("a", 0)), "s.json", "sentences_per_second is not a positive number"),
])
def test_plot_on_a_missing_or_malformed_report_is_one_line_naming_the_file(tmp_path, capsys, quality, speed, file,
                                                                            problem):
    if isinstance(quality, list):
        quality = json.dumps(quality)
    rc, err = _plot(tmp_path, quality, speed, capsys)
    assert rc == 2, err
    assert err.startswith(f"error: {tmp_path / file}: ") and problem in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists()


def test_plot_with_no_model_in_both_is_a_usage_error(tmp_path, capsys):
    rc, err = _plot(tmp_path, GOOD_Q, _speed_report(("other", 10.0)), capsys)
    assert rc == 2 and err == "error: no model appears in both the quality and the speed reports (names must match)"


def test_plot_leaves_out_a_model_without_an_average_and_says_so(tmp_path, capsys):
    """A NaN average is written as null (strict JSON): that model is named on stderr, the others are plotted."""
    report.write("# q\n", _quality_report(("a", math.nan), ("b", 50.0)), tmp_path / "q")
    rc, err = _plot(tmp_path, None, GOOD_S, capsys)
    assert rc == 0, err
    assert "note: a has no average score (null); left out of the plot" in err and "b: avg 50.0" in err
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_out_is_checked_before_reading_anything(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc = main(["plot", "--quality", str(tmp_path / "missing.json"), "--speed", str(tmp_path / "missing.json"),
               "--out", str(blocker / "p.png")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --out ") and "is a file" in err


def test_plot_out_in_a_format_matplotlib_cannot_write_is_a_usage_error(tmp_path, capsys):
    """Was matplotlib's ValueError traceback, after the reports were read."""
    rc = main(["plot", "--quality", str(tmp_path / "missing.json"), "--speed", str(tmp_path / "missing.json"),
               "--out", str(tmp_path / "p.foo")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --out ") and "cannot write .foo images" in err and ".png" in err
    assert "\n" not in err and not (tmp_path / "p.foo").exists()
