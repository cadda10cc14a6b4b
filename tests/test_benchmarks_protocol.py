"""The selection protocol (benchmarks.studies.protocol) on the tiny data folder of helpers.benchmark_data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from helpers.benchmark_data import hide_distribution, perfect_encode, random_encode, write_tiny_data

from benchmarks.__main__ import main
from benchmarks.quality import data, tasks
from benchmarks.quality.encoders import FunctionEncoder
from benchmarks.studies import protocol


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    root = write_tiny_data(tmp_path / "data")
    hide_distribution(monkeypatch, "gensim")  # LP50 (a package dataset) unavailable, whether or not it is installed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the development splits the tiny folder lacks are skipped
        return root, protocol.load_split(root, "all")


def test_every_task_type_scores_as_the_suite_does(tiny):
    _, datasets = tiny
    assert {d.task for d in datasets} == set(data.TASK_TYPES)
    for enc in (FunctionEncoder("perfect", perfect_encode), FunctionEncoder("random", random_encode)):
        for ds in datasets:
            got = protocol.item_scores(enc, ds)
            assert got.score == pytest.approx(tasks.evaluate(enc, ds).score, abs=1e-9), ds.name
            assert got.on(np.arange(got.n)) == pytest.approx(got.score)


def test_load_split_halves(tiny):
    root, both = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test, dev = protocol.load_split(root, "test"), protocol.load_split(root, "dev")
    assert [d.name for d in test] == [s.name for s in data.REGISTRY]
    assert {d.name for d in dev} == {"TREC-heldout", "Banking77-heldout", "Banking77-train", "SciFact-train"}
    assert {d.name for d in both} == {d.name for d in test} | {d.name for d in dev}
    assert {protocol.split_of(d.name) for d in dev} == {"dev"} and protocol.split_of("SST-2") == "test"
    with pytest.raises(ValueError, match="datasets must be one of"):
        protocol.load_split(root, "train")


def test_a_model_against_itself_ties_everywhere(tiny):
    _, datasets = tiny
    perfect = FunctionEncoder("perfect", perfect_encode)
    out = protocol.compare(perfect, perfect, datasets, resamples=30)
    for v in out["datasets"].values():
        assert v["diff"] == 0 and v["ci95"] == [0.0, 0.0] and v["result"] == "tie"
    s = out["summary"]
    assert (s["wins"], s["losses"], s["ties"]) == (0, 0, len(datasets))
    assert s["mean_diff"] == 0 and s["lodo"]["min"] == 0 and s["lodo"]["max"] == 0


def test_perfect_beats_random_and_the_order_flips_the_verdict(tiny):
    _, datasets = tiny
    perfect, rand = FunctionEncoder("perfect", perfect_encode), FunctionEncoder("random", random_encode)
    sts = [d for d in datasets if d.name == "STSBenchmark"]
    win = protocol.compare(perfect, rand, sts, resamples=200)["datasets"]["STSBenchmark"]
    loss = protocol.compare(rand, perfect, sts, resamples=200)["datasets"]["STSBenchmark"]
    assert win["a"] == pytest.approx(100.0) and win["diff"] > 0
    assert win["ci95"][0] <= win["diff"] <= win["ci95"][1]
    assert loss["diff"] == pytest.approx(-win["diff"])
    assert {win["result"], loss["result"]} <= {"win", "loss", "tie"}
    assert (win["result"], loss["result"]) in (("win", "loss"), ("tie", "tie"))


def test_verdict_and_leave_one_out_by_hand():
    assert protocol.verdict([0.1, 2.0]) == "win"
    assert protocol.verdict([-2.0, -0.1]) == "loss"
    assert protocol.verdict([-0.1, 0.1]) == "tie" and protocol.verdict([0.0, 1.0]) == "tie"
    per = {"a": {"task": "sts", "diff": 3.0, "result": "win"},
           "b": {"task": "sts", "diff": 1.0, "result": "tie"},
           "c": {"task": "retrieval", "diff": -4.0, "result": "loss"}}
    s = protocol.leave_one_out(per)
    assert (s["wins"], s["losses"], s["ties"]) == (1, 1, 1)
    assert s["mean_diff"] == pytest.approx(0.0)
    # without a: (1 - 4) / 2 = -1.5; without b: -0.5; without c: 2.0
    assert s["lodo"] == {"min": -1.5, "min_without": "a", "max": 2.0, "max_without": "c"}
    # task-type means: sts 2.0, retrieval -4.0 -> -1.0; without c only sts remains (2.0); without a: (1-4)/2
    assert s["task_type_mean_diff"] == pytest.approx(-1.0)
    assert s["lodo_task_type"]["max"] == pytest.approx(2.0) and s["lodo_task_type"]["max_without"] == "c"
    assert s["lodo_task_type"]["min"] == pytest.approx(-1.5)
    assert "lodo" not in protocol.leave_one_out({"a": per["a"]})


def test_mismatched_items_are_refused():
    a = protocol.ItemScores("sts", 3, 1.0, lambda idx: 1.0)
    b = protocol.ItemScores("sts", 4, 1.0, lambda idx: 1.0)
    with pytest.raises(ValueError, match="different items"):
        protocol.compare_dataset(a, b, resamples=5, seed=0)
    with pytest.raises(ValueError, match="resamples"):
        protocol.compare(None, None, [], resamples=0)


def test_cli_on_two_static_folders(tiny, tmp_path, tiny_model, capsys):
    root, _ = tiny
    plain, sharp = tmp_path / "plain", tmp_path / "sharp"
    tiny_model.save_pretrained(plain)
    tiny_model.contrast = 1.0
    tiny_model.save_pretrained(sharp)
    out = tmp_path / "res" / "protocol"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["protocol", "-m", f"sharp=static:{sharp}", "-m", f"plain=static:{plain}", "--data", str(root),
                   "--datasets", "dev", "--resamples", "20", "--out", str(out)])
        assert main(["protocol", "-m", f"static:{sharp}", "-m", f"static:{plain}", "--data", str(root),
                     "--datasets", "dev", "--tasks", "retrieval", "--resamples", "5",
                     "--out", str(tmp_path / "r")]) == 0
    assert rc == 0
    md = (tmp_path / "res" / "protocol.md").read_text()
    assert "sharp (A) against plain (B)" in md and "leaving one dataset out" in md
    assert "- Command: `python -m benchmarks protocol -m sharp=static:" in md
    rep = json.loads((tmp_path / "res" / "protocol.json").read_text())
    assert set(rep["datasets"]) == {"TREC-heldout", "Banking77-heldout", "Banking77-train", "SciFact-train"}
    assert set(rep["splits"].values()) == {"dev"} and rep["summary"]["datasets"] == 4
    assert list(json.loads((tmp_path / "r.json").read_text())["datasets"]) == ["SciFact-train"]


@pytest.mark.parametrize("argv, message", [
    (["-m", "static:A"], "exactly two"),
    (["-m", "static:A", "-m", "static:A", "--resamples", "0"], "--resamples"),
    (["-m", "static:A", "-m", "static:A", "--train-cap", "0"], "--train-cap"),
    (["-m", "static:/nonexistent/a", "-m", "static:A"], "/nonexistent/a"),
    (["-m", "static:A", "-m", "static:A", "--tasks", "sts,poetry", "--data", "."], "unknown ['poetry']"),
])
def test_cli_bad_arguments(argv, message, tmp_path, tiny_model, capsys):
    """Each bad argument exits 2 with one error line naming it, before any model or dataset is loaded."""
    tiny_model.save_pretrained(tmp_path / "A")
    argv = [a.replace("static:A", f"static:{tmp_path / 'A'}") for a in argv]
    assert main(["protocol", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_an_all_pairs_dataset_resamples_its_texts():
    from benchmarks.studies.paired_bootstrap import all_pairs_design, text_resampler

    docs = [f"document {i}" for i in range(6)]
    left, right = zip(*[(docs[i], docs[j]) for i in range(6) for j in range(i + 1, 6)])
    pairs = all_pairs_design(list(left), list(right))
    assert pairs is not None and pairs.shape == (15, 2)
    assert all_pairs_design(["a", "b", "c"], ["b", "c", "d"]) is None  # STS-like: pairs of different texts
    assert all_pairs_design(list(left[:-1]), list(right[:-1])) is None  # one pair missing
    draw = text_resampler(pairs)
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert set(np.unique(draw(rng))) <= set(range(15))
    # every text drawn once: every pair exactly once
    class EveryTextOnce:
        def integers(self, low, high, size):
            return np.arange(high)

    np.testing.assert_array_equal(draw(EveryTextOnce()), np.arange(15))

    class FirstTextTwice:
        def integers(self, low, high, size):
            return np.array([0, 0, 1, 2, 3, 4])  # text 5 left out, text 0 twice

    idx = draw(FirstTextTwice())
    counts = np.bincount(idx, minlength=15)
    for k, (i, j) in enumerate(pairs):
        expected = 0 if 5 in (i, j) else (2 if 0 in (i, j) else 1)
        assert counts[k] == expected, (i, j)


def test_an_all_pairs_dataset_gets_a_wider_interval_than_resampling_its_pairs():
    from benchmarks.studies.paired_bootstrap import resampled_differences

    rng = np.random.default_rng(0)
    n_docs = 30
    pairs = [(i, j) for i in range(n_docs) for j in range(i + 1, n_docs)]
    doc_noise = rng.normal(size=n_docs)  # model A is off on some documents: every pair of those moves together
    gold = rng.random(len(pairs))
    a = np.array([g + 0.5 * (doc_noise[i] + doc_noise[j]) for g, (i, j) in zip(gold, pairs)])
    b = gold + rng.normal(scale=0.5, size=len(pairs))
    docs = [f"d{i}" for i in range(n_docs)]
    left, right = [docs[i] for i, _ in pairs], [docs[j] for _, j in pairs]
    def score_a(idx):
        return float(np.corrcoef(a[idx], gold[idx])[0, 1])

    def score_b(idx):
        return float(np.corrcoef(b[idx], gold[idx])[0, 1])

    from benchmarks.studies.paired_bootstrap import all_pairs_design, text_resampler

    design = all_pairs_design(left, right)
    assert design is not None
    by_pairs = resampled_differences(score_a, score_b, len(gold), resamples=300, seed=0)
    by_texts = resampled_differences(score_a, score_b, len(gold), resamples=300, seed=0, draw=text_resampler(design))
    assert np.std(by_texts) > 1.5 * np.std(by_pairs)
