"""The fidelity study (benchmarks.studies.fidelity): its text sets, its score and the command on a tiny teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

from benchmarks.__main__ import main
from benchmarks.quality.encoders import FunctionEncoder
from benchmarks.studies import fidelity


def write_corpus(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentences.txt").write_text("".join(t + "\n" for t, _ in rows), encoding="utf-8")
    (folder / "sentences.source.txt").write_text("".join(s + "\n" for _, s in rows), encoding="utf-8")
    return folder / "sentences.txt"


def test_source_sets_hold_out_the_first_lines_and_the_excluded_sources(tmp_path):
    rows = [(f"line {i} of {s}", s) for i in range(40) for s in ("news", "tweets", "wiki")] + [("rare one", "rare")]
    corpus = write_corpus(tmp_path / "c", rows)
    sets = fidelity.source_sets(corpus, per_set=5, skip=30, exclude=("wiki",))
    assert sorted(sets) == ["news", "tweets"]  # wiki excluded, rare has 1 line < 5
    for name, texts in sets.items():
        assert len(texts) == 5 == len(set(texts)) and all(t.endswith(f"of {name}") for t in texts)
        assert all(int(t.split()[1]) >= 10 for t in texts)  # line index >= 30: the first 10 rounds of 3 sources
    assert sets == fidelity.source_sets(corpus, per_set=5, skip=30, exclude=("wiki",))  # seeded
    (tmp_path / "c" / "sentences.source.txt").write_text("news\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sentences.source.txt has 1 lines"):
        fidelity.source_sets(corpus, per_set=5, skip=0)


def test_passages_are_consecutive_words_of_one_document(tmp_path):
    path = tmp_path / "books.txt"
    docs = [" ".join(f"a{i}" for i in range(50)), "too short", " ".join(f"b{i}" for i in range(30))]
    path.write_text("\n\n".join(docs), encoding="utf-8")
    out = fidelity.passages(path, 20, words=25)
    assert len(out) == 20
    for p in out:
        words = p.split()
        assert len(words) == 25 and len({w[0] for w in words}) == 1
        first = int(words[0][1:])
        assert [int(w[1:]) for w in words] == list(range(first, first + 25))
    with pytest.raises(ValueError, match="no document of 60 words"):
        fidelity.passages(path, 3, words=60)


def test_fidelity_is_100_for_the_teacher_up_to_a_rotation_and_lower_for_noise():
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(30, 8))
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    assert fidelity.fidelity_scores(teacher @ rotation * 3.0, teacher).score == pytest.approx(100.0)
    noisy = fidelity.fidelity_scores(teacher + rng.normal(size=teacher.shape), teacher)
    random = fidelity.fidelity_scores(rng.normal(size=teacher.shape), teacher)
    assert 100.0 > noisy.score > random.score and abs(random.score) < 20
    assert noisy.n == 30 * 29 // 2 and noisy.unit == "texts"
    assert noisy.on(np.arange(noisy.n)) == pytest.approx(noisy.score)
    with pytest.raises(ValueError, match="same 3 or more texts"):
        fidelity.fidelity_scores(teacher[:5], teacher)


def test_a_model_closer_to_the_teacher_wins_every_set():
    rng = np.random.default_rng(1)
    table: dict[str, np.ndarray] = {}

    def teacher_vec(text: str) -> np.ndarray:
        return table.setdefault(text, rng.normal(size=16))

    teacher = FunctionEncoder("teacher", lambda ts: np.stack([teacher_vec(t) for t in ts]))
    close = FunctionEncoder("close", lambda ts: np.stack([teacher_vec(t) + 0.3 * np.sin(np.arange(16) + len(t))
                                                         for t in ts]))
    far = FunctionEncoder("far", lambda ts: np.stack([teacher_vec(t) + 2.0 * np.cos(np.arange(16) * len(t))
                                                     for t in ts]))
    sets = {f"set {k}": [f"text {k} {i} " + "x" * i for i in range(25)] for k in range(3)}
    out = fidelity.compare(close, far, teacher, sets, resamples=50)
    assert out["summary"]["wins"] == 3 and out["summary"]["mean_diff"] > 0
    same = fidelity.compare(close, close, teacher, sets, resamples=20)
    assert same["summary"]["ties"] == 3 and same["summary"]["mean_diff"] == 0
    by_neighbours = fidelity.compare(close, far, teacher, sets, resamples=50, metric="neighbours")
    assert by_neighbours["summary"]["mean_diff"] > 0
    assert all(0 <= v["a"] <= 100 and v["n"] == 25 for v in by_neighbours["datasets"].values())
    with pytest.raises(ValueError, match="metric must be one of"):
        fidelity.compare(close, far, teacher, sets, metric="pearson")


def test_neighbour_scores_are_100_for_the_teacher_and_resample_texts():
    rng = np.random.default_rng(2)
    teacher = rng.normal(size=(30, 8))
    same = fidelity.neighbour_scores(teacher * 2.0, teacher)
    assert same.score == 100.0 and same.n == 30 and same.draw is None and same.unit == "items"
    noisy = fidelity.neighbour_scores(teacher + rng.normal(size=teacher.shape), teacher)
    assert 0 < noisy.score < 100 and noisy.on(np.arange(30)) == pytest.approx(noisy.score)
    with pytest.raises(ValueError, match="more than k=10"):
        fidelity.neighbour_scores(teacher[:10], teacher[:10])


def test_the_command_on_a_tiny_teacher_and_data_folder(tmp_path):
    from distill import distill

    teacher_dir = make_wordpiece_teacher(tmp_path / "teacher")
    model = distill(str(teacher_dir), pca_dims=8, batch_size=64, dtype="float32", show_progress_bar=False)
    model.save_pretrained(tmp_path / "a")
    model.truncate_dims(4).save_pretrained(tmp_path / "b")
    data = tmp_path / "data"
    rows = [(f"{SENTENCES[i % len(SENTENCES)]} {j}", s) for j in range(3) for i, s in
            enumerate(["news", "chat"] * len(SENTENCES))]
    write_corpus(data / "corpus_general", rows)
    (data / "corpus").mkdir()
    (data / "corpus" / "public_domain_english.txt").write_text(" ".join(SENTENCES * 3), encoding="utf-8")
    out = tmp_path / "fid"
    code = main(["fidelity", "-m", f"static:{tmp_path / 'a'}", "-m", f"static:{tmp_path / 'b'}",
                 "--teacher", str(teacher_dir), "--data", str(data), "--skip", "0", "--texts-per-set", "6",
                 "--passage-words", "12", "--resamples", "20", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(out)])
    assert code == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["datasets"]) == {"news", "chat", "books, 12-word passages"}
    assert all(-100 <= v["a"] <= 100 and v["n"] == 15 for v in report["datasets"].values())
    assert "## Fidelity to" in out.with_suffix(".md").read_text() and report["metric"] == "spearman"


def test_too_few_texts_for_ten_neighbours_is_a_usage_error(tmp_path, capsys, tiny_model):
    tiny_model.save_pretrained(tmp_path / "a")
    code = main(["fidelity", "--metric", "neighbours", "--texts-per-set", "10", "-m", f"static:{tmp_path / 'a'}",
                 "-m", f"static:{tmp_path / 'a'}", "--data", str(tmp_path)])
    assert code == 2 and "--texts-per-set must exceed 10" in capsys.readouterr().err


def test_one_model_is_a_usage_error_naming_the_option(tmp_path, capsys, tiny_model):
    tiny_model.save_pretrained(tmp_path / "a")
    code = main(["fidelity", "-m", f"static:{tmp_path / 'a'}", "--data", str(tmp_path)])
    assert code == 2 and "give exactly two models (-m A -m B), got 1" in capsys.readouterr().err


def test_each_set_is_resampled_from_its_own_stream():
    """Every text set has ``--texts-per-set`` texts, so with one seed for all the sets drew the very same texts;
    two identical sets now get the same score and different intervals, reproducibly."""
    rng = np.random.default_rng(4)
    texts = [f"t{i}" for i in range(30)]
    teacher_table = {t: rng.normal(size=8) for t in texts}
    noise = {t: rng.normal(size=8) for t in texts}

    def enc(name: str, scale: float) -> FunctionEncoder:
        return FunctionEncoder(name, lambda ts: np.stack([teacher_table[t] + scale * noise[t] for t in ts]))

    sets = {"one": texts, "two": list(texts)}
    for metric in fidelity.METRICS:
        out = fidelity.compare(enc("a", 0.3), enc("b", 1.0), enc("teacher", 0.0), sets, resamples=200, seed=5,
                               metric=metric)
        one, two = out["datasets"]["one"], out["datasets"]["two"]
        assert one["diff"] == two["diff"] and one["ci95"] != two["ci95"]
        again = fidelity.compare(enc("a", 0.3), enc("b", 1.0), enc("teacher", 0.0), sets, resamples=200, seed=5,
                                 metric=metric)
        assert again == out
