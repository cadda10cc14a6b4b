"""Trust audit of ``distill compare``: every number is what it says, or the command says why it cannot give it.

Each test names what the command once did: a Spearman correlation of 0.0 reported for one pair or two texts, for
constant gold scores and for a static model that maps every text to a zero vector; gold scores passed with texts
ignored; a NaN vector measured as a zero one; a teacher that is not the model's own called "its teacher"; a BOM or
a ``.JSONL`` name that changed what was read; --json without what was compared with what, and not strict JSON.
Tiny teachers only (``tests/helpers/teachers.py``).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

from distill import Teacher, compare
from distill.comparison import main, read_pairs, read_texts

UNKNOWN = ["§§§", "¤¤¤", "©©©", "®®®", "¶¶¶"]  # no token of the tiny WordPiece vocabulary: a zero static vector


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("teachers") / "tiny-wp")


@pytest.fixture(scope="module")
def other_wp_dir(tmp_path_factory):
    return make_wordpiece_teacher(tmp_path_factory.mktemp("teachers-other") / "other-wp", seed=1)


@pytest.fixture(scope="module")
def static_dir(wp_dir, tmp_path_factory):
    from distill import distill

    out = tmp_path_factory.mktemp("static") / "tiny-static"
    distill(str(wp_dir), pca_dims=8, show_progress_bar=False).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(static_dir, wp_dir):
    from static_model import StaticModel

    return StaticModel.from_pretrained(static_dir), Teacher(wp_dir)


class _Fixed:
    """An encoder that returns ``vectors`` for its texts (by position in ``texts``)."""

    def __init__(self, texts: list[str], vectors: np.ndarray):
        self.rows = {t: np.asarray(v, dtype=np.float32) for t, v in zip(texts, vectors)}

    def encode(self, texts, batch_size=256):
        return np.stack([self.rows[t] for t in texts])


# --------------------------------------------------------------------------- correlations with no ranking


def test_one_pair_or_two_texts_are_refused_not_reported_as_no_relation(tmp_path):
    """One pair has no ranking: its Spearman correlation was reported as 0.000 ("no relation")."""
    missing = tmp_path / "no-model"  # never loaded: the input is checked first
    with pytest.raises(ValueError, match="at least two pairs, got 1"):
        compare(missing, "no-such-teacher", pairs=[("a cat", "a dog")])
    with pytest.raises(ValueError, match="at least three distinct texts, got 2"):
        compare(missing, "no-such-teacher", texts=["a cat", "a dog", "a cat"])


def test_constant_gold_scores_are_refused(tmp_path):
    """Gold scores that are all one value were correlated to 0.000 for both models."""
    with pytest.raises(ValueError, match="Every gold score is 1.0"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=[("a", "b"), ("c", "d"), ("e", "f")],
                scores=[1, 1, 1])


def test_the_cli_refuses_a_single_pair_two_texts_and_constant_scores_naming_the_file(static_dir, tmp_path, capsys):
    one_pair = tmp_path / "one.tsv"
    one_pair.write_text("a cat\ta dog\t1\n", encoding="utf-8")
    two = tmp_path / "two.txt"
    two.write_text("a cat\na dog\na cat\n", encoding="utf-8")
    flat = tmp_path / "flat.jsonl"
    flat.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": 3})
                            + "\n" for a, b in zip(SENTENCES, SENTENCES[1:4])), encoding="utf-8")
    for argv, needles in [(["--pairs", str(one_pair)], ("--pairs", "one.tsv", "single pair")),
                          (["--texts", str(two)], ("--texts", "two.txt", "2 distinct text", "three")),
                          (["--pairs", str(flat)], ("--pairs", "flat.jsonl", "every gold score is 3.0"))]:
        assert main([str(static_dir), "no-such-teacher", *argv]) == 2  # before the teacher is looked up
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert all(needle in err for needle in needles), err


def test_a_static_model_with_no_known_token_gets_no_correlation_and_no_overlap(models):
    """Every text a zero vector: the cosines are all 0, and Spearman 0.000 and an overlap of the tie order (1.0 here)
    were reported as measurements."""
    static, teacher = models
    res = compare(static, teacher, texts=UNKNOWN)
    assert res["static_zero_vectors"] == len(UNKNOWN)
    assert res["spearman"] is None and res["neighbour_overlap@4"] is None
    assert "zero vector under the static model" in res["not_measured"]["spearman"]
    assert "zero vector under the static model" in res["not_measured"]["neighbour_overlap@4"]
    # the gold correlation of the static model is not measured either; the teacher's still is
    pairs = [(UNKNOWN[0], UNKNOWN[1]), (UNKNOWN[2], UNKNOWN[3]), (UNKNOWN[1], UNKNOWN[4])]
    res = compare(static, teacher, pairs=pairs, scores=[0.0, 1.0, 2.0])
    assert res["spearman_static_vs_gold"] is None and isinstance(res["spearman_teacher_vs_gold"], float)
    assert set(res["not_measured"]) == {"spearman", "spearman_static_vs_gold", "neighbour_overlap@4"}


def test_the_report_says_why_a_number_is_missing_and_json_holds_null(static_dir, wp_dir, tmp_path, capsys):
    texts = tmp_path / "unknown.txt"
    texts.write_text("\n".join(UNKNOWN) + "\n", encoding="utf-8")
    assert main([str(static_dir), str(wp_dir), "--texts", str(texts)]) == 0
    report = capsys.readouterr().out
    assert "pairs of texts: not measured: every text has a zero vector under the static model" in report
    assert "Neighbour overlap@4: not measured" in report
    assert main([str(static_dir), str(wp_dir), "--texts", str(texts), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["spearman"] is None and "spearman" in res["not_measured"]


def test_texts_with_the_same_vector_under_the_teacher_get_no_correlation():
    """A teacher that gives every text one vector: its cosines are all 1, nothing to rank."""
    texts = ["one", "two", "three", "four"]
    rng = np.random.default_rng(0)
    static = _Fixed(texts, rng.normal(size=(4, 6)))
    flat = _Fixed(texts, np.tile(rng.normal(size=(1, 6)), (4, 1)))
    res = compare(static, flat, texts=texts)
    assert res["spearman"] is None and res["neighbour_overlap@3"] is None
    assert "the teacher gives every pair of texts the same cosine, 1.000" in res["not_measured"]["spearman"]
    # the same data with a varied teacher is measured as before
    res = compare(static, static, texts=texts)
    assert res["spearman"] == pytest.approx(1.0) and "not_measured" not in res


# --------------------------------------------------------------------------- numbers that say what they are


def test_a_nan_vector_is_an_error_not_a_zero_vector_measured():
    """l2_normalize makes a NaN row a zero vector: a model that gave NaN was measured as one that gave zeros."""
    texts = ["one", "two", "three", "four"]
    rng = np.random.default_rng(1)
    good = rng.normal(size=(4, 6))
    bad = good.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"the static model gave NaN or infinite vectors for 1 of the 4 texts "
                                         r"\(the first: 'three'\)"):
        compare(_Fixed(texts, bad), _Fixed(texts, good), texts=texts)
    with pytest.raises(ValueError, match="the teacher gave NaN or infinite vectors"):
        compare(_Fixed(texts, good), _Fixed(texts, bad), texts=texts)


def test_scores_with_texts_are_refused_not_ignored(tmp_path):
    with pytest.raises(ValueError, match="scores= are the gold scores of pairs="):
        compare(tmp_path / "no-model", "no-such-teacher", texts=SENTENCES, scores=[1.0, 2.0])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
def test_batch_size_is_checked_before_any_model_loads(tmp_path, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        compare(tmp_path / "no-model", "no-such-teacher", texts=SENTENCES, batch_size=batch_size)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_text_is_refused(tmp_path, blank):
    """A blank text is a zero vector under the static model and [CLS] [SEP] under the teacher: compared as a text."""
    with pytest.raises(ValueError, match=r"texts\[1\] is blank"):
        compare(tmp_path / "no-model", "no-such-teacher", texts=["a cat", blank, "a dog"])
    with pytest.raises(ValueError, match=r"pairs\[0\]\[0\] is blank"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=[(blank, "a"), ("b", "c")])


def test_blank_texts_in_files_are_refused_naming_the_line(tmp_path):
    texts = tmp_path / "t.jsonl"
    texts.write_text('{"text": "a cat"}\n{"text": "  "}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="t.jsonl line 2: 'text' is blank"):
        read_texts(texts)
    pairs = tmp_path / "p.tsv"
    pairs.write_text("a cat\ta dog\n \tthe horse\n", encoding="utf-8")
    with pytest.raises(ValueError, match="p.tsv line 2: sentence1 is blank"):
        read_pairs(pairs)
    pairs_json = tmp_path / "p.jsonl"
    pairs_json.write_text('{"sentence1": "a", "sentence2": ""}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="p.jsonl line 1: 'sentence2' is blank"):
        read_pairs(pairs_json)


def test_the_report_gives_the_chance_overlap_and_says_when_k_covers_every_text(models):
    """Five texts, k 10: each text's 4 nearest are all the others, so the overlap is 1 whatever the models."""
    from distill.comparison import format_report

    static, teacher = models
    few = compare(static, teacher, texts=SENTENCES[:5])
    assert few["neighbour_overlap@4"] == 1.0 and few["neighbour_overlap_chance"] == 1.0
    report = format_report(few, static_name="s", teacher_name="t", source="f", kind="texts")
    assert "every other text is among the 4 nearest, so the overlap is 1 whatever the models" in report
    many = compare(static, teacher, texts=SENTENCES)
    assert many["neighbour_overlap_chance"] == pytest.approx(10 / 14)
    assert "whatever the models" not in format_report(many, static_name="s", teacher_name="t", source="f",
                                                      kind="texts")


def test_some_zero_vectors_are_reported(models):
    from distill.comparison import format_report

    static, teacher = models
    res = compare(static, teacher, texts=[*SENTENCES[:6], "§§§"])
    assert res["static_zero_vectors"] == 1 and res["teacher_zero_vectors"] == 0
    assert isinstance(res["spearman"], float)
    report = format_report(res, static_name="s", teacher_name="t", source="f", kind="texts")
    assert "1 of the 7 texts have a zero vector under the static model" in report


# --------------------------------------------------------------------------- what was compared with what


def test_a_teacher_that_is_not_the_models_own_is_named_as_such(static_dir, wp_dir, other_wp_dir, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    assert main([str(static_dir), str(other_wp_dir), "--texts", str(texts)]) == 0
    report = capsys.readouterr().out
    assert f"compared with the teacher {other_wp_dir}" in report and "its teacher" not in report.splitlines()[0]
    assert "the model's config names tiny-wp as its teacher, and this teacher is other-wp" in report
    assert main([str(static_dir), str(other_wp_dir), "--texts", str(texts), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["teacher"] == "other-wp" and res["model_config_teacher"] == "tiny-wp"
    assert res["static_model"] == str(static_dir) and res["teacher_given"] == str(other_wp_dir)
    assert res["source"] == str(texts) and res["input"] == "texts"
    # its own teacher: "its teacher", no note
    assert main([str(static_dir), str(wp_dir), "--texts", str(texts)]) == 0
    report = capsys.readouterr().out
    assert f"compared with its teacher {wp_dir}" in report and "names tiny-wp as its teacher" not in report


def test_json_is_strict(static_dir, wp_dir, tmp_path, capsys, monkeypatch):
    """NaN is no JSON: a non-finite number in the result is an error line, never ``NaN`` printed."""
    from distill.comparison import cli

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    real = cli.compare
    monkeypatch.setattr(cli, "compare", lambda *a, **kw: {**real(*a, **kw), "speed_ratio": math.nan})
    rc = main([str(static_dir), str(wp_dir), "--texts", str(texts), "--json"])
    out, err = capsys.readouterr()
    assert "NaN" not in out
    assert rc == 2 and err.startswith("error: ") and "JSON" in err


# --------------------------------------------------------------------------- file formats


def test_a_byte_order_mark_is_not_part_of_the_first_text(tmp_path):
    bom = "\ufeff"
    txt = tmp_path / "t.txt"
    txt.write_text(f"{bom}the cat\r\na dog\r\nthe cat\r\n", encoding="utf-8")
    assert read_texts(txt) == ["the cat", "a dog", "the cat"]  # the duplicate is one text, as it should be
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(f'{bom}{{"text": "the cat"}}\r\n{{"text": "a dog"}}\r\n', encoding="utf-8")
    assert read_texts(jsonl) == ["the cat", "a dog"]  # was: "not JSON (Unexpected UTF-8 BOM ...)"
    tsv = tmp_path / "p.tsv"
    tsv.write_text(f"{bom}the cat\ta dog\t1\r\nthe man\ta horse\t2\r\n", encoding="utf-8")
    assert read_pairs(tsv) == ([("the cat", "a dog"), ("the man", "a horse")], [1.0, 2.0])
    pj = tmp_path / "p.jsonl"
    pj.write_text(f'{bom}{{"sentence1": "a", "sentence2": "b", "score": 1}}\n', encoding="utf-8")
    assert read_pairs(pj) == ([("a", "b")], [1.0])


@pytest.mark.parametrize("name", ["t.JSONL", "t.json", "t.ndjson", "t.Jsonl"])
def test_json_lines_are_read_as_json_whatever_the_suffix_case(tmp_path, name):
    """data.JSONL was read as plain text: each raw JSON line was compared as a text, without a word."""
    path = tmp_path / name
    path.write_text('{"text": "the cat"}\n{"text": "a dog"}\n', encoding="utf-8")
    assert read_texts(path) == ["the cat", "a dog"]
    pairs = tmp_path / ("p" + path.suffix)
    pairs.write_text('{"sentence1": "a", "sentence2": "b"}\n', encoding="utf-8")
    assert read_pairs(pairs) == ([("a", "b")], None)


def test_a_lone_carriage_return_ends_a_line_as_in_refine_and_scale(tmp_path):
    """Old-Mac files (lines ended by a lone \\r) read as one line, then "1 distinct text"; refine's corpus reader and
    scale split there, as Python's universal newlines do."""
    txt = tmp_path / "mac.txt"
    txt.write_bytes(b"the cat\ra dog\r\nthe man\n\ra horse\r")
    assert read_texts(txt) == ["the cat", "a dog", "the man", "a horse"]
    tsv = tmp_path / "mac.tsv"
    tsv.write_bytes(b"the cat\ta dog\t1\rthe man\ta horse\t2\r")
    assert read_pairs(tsv) == ([("the cat", "a dog"), ("the man", "a horse")], [1.0, 2.0])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"one\rtwo\r\xff three\n")
    with pytest.raises(ValueError, match=r"bad.txt is not UTF-8 text \(line 3"):
        read_texts(bad)


def test_more_texts_than_memory_holds_all_pairs_of_is_refused_before_any_model_loads(monkeypatch):
    """The all-pairs measures grow with the square of the texts (8,000 texts: 2.7 GB); more than memory held was a
    raw MemoryError, or the kernel's OOM kill, after both models had encoded."""
    import os

    from distill.comparison import measure

    pages = {"SC_AVPHYS_PAGES": 100_000, "SC_PAGE_SIZE": 4096}  # 0.4 GB available
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name], raising=False)

    def no_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(measure, "load_models", no_load)
    texts = [f"text number {i}" for i in range(5000)]
    want = (r"5,000 distinct texts make 12,497,500 pairs, whose measures need about 1.2 GB, and 0.4 GB is available: "
            r"pass fewer texts \(--limit\), or --pairs")
    with pytest.raises(ValueError, match=want):
        measure.compare("unused", "unused", texts=texts)


# --------------------------------------------------------------------------- device= with a teacher object


class _OnDevice(_Fixed):
    """A ``_Fixed`` encoder that says which device it runs on."""

    def __init__(self, texts: list[str], vectors: np.ndarray, device: str):
        super().__init__(texts, vectors)
        self.device = device


def test_a_device_the_teacher_object_is_not_on_is_refused_not_ignored(models):
    """device="cuda" with a Teacher built on the CPU ran the teacher on the CPU, and the report said so only in
    passing."""
    static, teacher = models
    assert teacher.device == "cpu"
    with pytest.raises(ValueError, match=r"device='cuda'.*the teacher given is on cpu"):
        compare(static, teacher, texts=SENTENCES[:5], device="cuda")
    res = compare(static, teacher, texts=SENTENCES[:5], device="cpu")  # its own device: measured as before
    assert res["teacher_device"] == "cpu"


def test_device_with_an_encoder_object_is_checked_against_its_device():
    texts = ["one", "two", "three", "four"]
    vectors = np.random.default_rng(2).normal(size=(4, 6))
    static = _Fixed(texts, vectors)
    on_gpu = _OnDevice(texts, vectors, "cuda:0")
    assert compare(static, on_gpu, texts=texts, device="cuda")["teacher_device"] == "cuda:0"  # one device, two names
    with pytest.raises(ValueError, match=r"device='cuda:1'.*the teacher given is on cuda:0"):
        compare(static, on_gpu, texts=texts, device="cuda:1")
    with pytest.raises(ValueError, match=r"device='cpu'.*the teacher given \(_Fixed\) has no device"):
        compare(static, _Fixed(texts, vectors), texts=texts, device="cpu")
    assert compare(static, _Fixed(texts, vectors), texts=texts)["spearman"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- gold scores under "label"


def _pairs_file(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_gold_scores_under_label_are_read_not_ignored(tmp_path):
    """GLUE STS-B keeps its gold similarity under "label": the file was read as unscored, without a word."""
    rows = [{"sentence1": "a", "sentence2": "b", "label": 4.2}, {"sentence1": "c", "sentence2": "d", "label": 1}]
    path = _pairs_file(tmp_path / "stsb.jsonl", rows)
    assert read_pairs(path) == ([("a", "b"), ("c", "d")], [4.2, 1.0])
    from distill.comparison import read_scored_pairs

    assert read_scored_pairs(path)[2] == "label"
    both = _pairs_file(tmp_path / "both.jsonl", [{**row, "score": i} for i, row in enumerate(rows)])
    assert read_pairs(both)[1] == [0.0, 1.0]  # a row with both: its score
    assert read_scored_pairs(both)[2] == "score"
    assert read_scored_pairs(tmp_path / "stsb.jsonl", limit=1)[1:] == ([4.2], "label")


@pytest.mark.parametrize(("rows", "needle"), [
    ([{"sentence1": "a", "sentence2": "b", "score": 1}, {"sentence1": "c", "sentence2": "d", "label": 0}],
     "line 2: the gold score is under 'label', while line 1 has it under 'score'"),
    ([{"sentence1": "a", "sentence2": "b", "label": 0}, {"sentence1": "c", "sentence2": "d", "label": 1, "score": 2}],
     "line 2: the gold score is under 'score', while line 1 has it under 'label'"),
    ([{"sentence1": "a", "sentence2": "b", "label": "entailment"}],
     "line 1: the label 'entailment' is not a finite number"),
    ([{"sentence1": "a", "sentence2": "b", "label": 1}, {"sentence1": "c", "sentence2": "d"}],
     "line 2: a pair without a score"),
])
def test_label_files_that_mix_meanings_or_hold_classes_are_refused_naming_the_line(tmp_path, rows, needle):
    path = _pairs_file(tmp_path / "p.jsonl", rows)
    with pytest.raises(ValueError, match=re.escape(f"{path} {needle}")):
        read_pairs(path)


def test_the_cli_compares_with_gold_scores_under_label_and_says_so(static_dir, wp_dir, tmp_path, capsys):
    rows = [{"sentence1": a, "sentence2": b, "label": float(i % 5)}
            for i, (a, b) in enumerate(zip(SENTENCES, SENTENCES[1:]))]
    path = _pairs_file(tmp_path / "stsb.jsonl", rows)
    assert main([str(static_dir), str(wp_dir), "--pairs", str(path)]) == 0
    report = capsys.readouterr().out
    assert "Spearman correlation with the gold pair scores: static model" in report
    assert "(the gold scores are the 'label' of each pair: the file has no 'score')" in report
    assert main([str(static_dir), str(wp_dir), "--pairs", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["gold_score_key"] == "label" and isinstance(res["spearman_static_vs_gold"], float)
    scored = _pairs_file(tmp_path / "scored.jsonl", [{**row, "score": row["label"]} for row in rows])
    assert main([str(static_dir), str(wp_dir), "--pairs", str(scored), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gold_score_key"] == "score"
    bad = _pairs_file(tmp_path / "nli.jsonl", [{**row, "label": "neutral"} for row in rows])
    assert main([str(static_dir), str(wp_dir), "--pairs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --pairs: ") and "nli.jsonl line 1: the label 'neutral'" in err, err


def test_nli_class_labels_are_refused_not_read_as_similarity(static_dir, wp_dir, tmp_path, capsys):
    """An NLI file's 'label' (0 entailment, 1 neutral, 2 contradiction) was read as a similarity score: the most
    alike pairs ranked lowest, and the correlations came out negative without a word."""
    from distill.comparison import read_scored_pairs

    rows = [{"sentence1": a, "sentence2": b, "label": i % 3} for i, (a, b) in enumerate(zip(SENTENCES, SENTENCES[1:]))]
    path = _pairs_file(tmp_path / "mnli.jsonl", rows)
    with pytest.raises(ValueError, match=re.escape(f"{path}: every 'label' is 0, 1 or 2, the classes of an NLI set")):
        read_scored_pairs(path)
    assert main([str(static_dir), str(wp_dir), "--pairs", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --pairs: ") and "Give the similarity under 'score'" in err, err
    graded = _pairs_file(tmp_path / "graded.jsonl", [{**row, "score": row.pop("label")} for row in rows])
    assert read_scored_pairs(graded)[1][:3] == [0.0, 1.0, 2.0]  # grades under 'score' are the user's word
    binary = _pairs_file(tmp_path / "mrpc.jsonl", [{**row, "label": i % 2} for i, row in enumerate(rows)])
    assert read_scored_pairs(binary)[2] == "label"  # 0/1: a paraphrase set's layout (1 = alike), read as given


def test_gold_scores_ranked_opposite_by_the_teacher_are_pointed_out():
    """RTE's binary 'label' is 0 for entailment: read as similarity, every correlation is negative. The report says
    the teacher ranks the pairs opposite to the gold scores, and why that may be."""
    from distill.comparison import format_report

    texts = ["a", "b", "c", "d", "e", "f"]
    vectors = np.asarray([[1, 0], [1, 0.1], [1, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    pairs = [("a", "b"), ("c", "d"), ("e", "f")]  # alike, unlike, half: the labels say the reverse
    res = compare(_Fixed(texts, vectors), _Fixed(texts, vectors), pairs=pairs, scores=[0.0, 1.0, 0.5])
    assert res["spearman_teacher_vs_gold"] == pytest.approx(-1.0)
    report = format_report(res, static_name="s", teacher_name="t", source="rte.jsonl", kind="pairs")
    assert "the teacher ranks the pairs opposite to the gold scores" in report
    res = compare(_Fixed(texts, vectors), _Fixed(texts, vectors), pairs=pairs, scores=[1.0, 0.0, 0.5])
    report = format_report(res, static_name="s", teacher_name="t", source="rte.jsonl", kind="pairs")
    assert "opposite" not in report


# --------------------------------------------------------------------------- pairs= and scores= of the wrong shape


def test_scores_given_as_one_str_or_number_are_refused(tmp_path):
    """scores="12" was read as one score a character, 1.0 and 2.0, and correlated; scores=3.0 was a raw
    "'float' object is not iterable"."""
    pairs = [("a cat", "a dog"), ("the man", "a horse")]
    with pytest.raises(TypeError, match="scores must be a list of numbers, one a pair, not a str"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=pairs, scores="12")
    with pytest.raises(TypeError, match="scores must be a list of numbers, one a pair, not a float"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=pairs, scores=3.0)


@pytest.mark.parametrize("bad", [5, {"x": "a", "y": "b"}, {"a", "b"}, None])
def test_a_pair_that_is_not_two_texts_is_refused_naming_it(tmp_path, bad):
    """A number, a dict or a set among the pairs was a raw TypeError or KeyError from inside the check."""
    with pytest.raises(TypeError, match=r"pairs\[1\] must be a pair of two texts, got "):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=[("a cat", "a dog"), bad])
    with pytest.raises(TypeError, match="pairs must be a list of"):
        compare(tmp_path / "no-model", "no-such-teacher", pairs=5)


def test_pairs_as_a_numpy_array_still_work():
    texts = ["one", "two", "three", "four"]
    enc = _Fixed(texts, np.random.default_rng(3).normal(size=(4, 6)))
    res = compare(enc, enc, pairs=np.asarray([["one", "two"], ["three", "four"], ["one", "four"]]))
    assert res["n_pairs"] == 3 and res["spearman"] == pytest.approx(1.0)



def test_texts_longer_than_the_teacher_reads_are_counted_and_said(models, static_dir, wp_dir, tmp_path, capsys):
    """The static model reads 512 tokens, the tiny teacher 62: a long text was compared on different content (the
    teacher's first 62 tokens against the static model's 512) without a word."""
    static, teacher = models
    long_text = " ".join(SENTENCES * 3)  # well past 62 tokens
    assert len(static.tokenize([long_text])[0]) > teacher.student_max_length
    texts = [long_text, *SENTENCES[:5]]
    result = compare(static, teacher, texts=texts)
    assert (result["texts_past_teacher_window"], result["teacher_window_tokens"]) == (1, 62)
    assert result["static_max_length"] == static.max_length == 512

    narrow = type(static).from_pretrained(static_dir, max_length=62)  # reads what the teacher reads: nothing to say
    assert "texts_past_teacher_window" not in compare(narrow, teacher, texts=texts)

    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert main([str(static_dir), str(wp_dir), "--texts", str(path)]) == 0
    assert "1 of the 6 texts are longer than the teacher reads: it sees their first 62 tokens, the static model up " \
           "to 512" in capsys.readouterr().out


def test_the_window_count_is_left_out_for_an_encoder_that_is_not_our_static_model(models):
    """Model2Vec's ``tokenize`` takes no ``max_length`` (a raw TypeError after both models had encoded), and
    sentence-transformers' returns a dict (its keys were counted as texts): only our StaticModel is counted."""
    static, teacher = models

    class Foreign:  # a Model2Vec-like encoder: encode, a max_length and a tokenize of its own
        max_length = 512

        def encode(self, texts, batch_size=256):
            return static.encode(texts)

        def tokenize(self, texts):
            return {"input_ids": [[1, 2]] * len(texts)}

    result = compare(Foreign(), teacher, texts=[" ".join(SENTENCES * 3), *SENTENCES[:5]])
    assert "texts_past_teacher_window" not in result and result["spearman"] is not None
