"""Loader tests on a tiny folder laid out like shared/data/MANIFEST.md (and, when present, the real folder)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_data import CLS_TEST, CLS_TRAIN, STS_ROWS, write_jsonl, write_tiny_data
from helpers.paths import SHARED_DATA

from benchmarks.quality import data


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return write_tiny_data(tmp_path / "data")


def test_registry_covers_manifest_tasks():
    assert {s.task for s in data.REGISTRY} == set(data.TASK_TYPES)
    assert len({s.name for s in data.REGISTRY}) == len(data.REGISTRY) == 11


def test_load_every_registry_dataset(tiny_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = data.load_available(data.select(tiny_data), tiny_data)
    by = {d.name: d for d in loaded}
    assert len(loaded) == 11
    sts = by["STSBenchmark"]
    assert sts.sentences1[2] == "sts-a 2" and sts.scores.tolist() == [0, 1, 2, 3, 4, 5]
    cls = by["Banking77"]
    assert len(cls.train_texts) == 15 and len(cls.test_texts) == 9 and cls.test_labels.dtype.kind == "i"
    pair = by["MRPC"]
    assert pair.labels.tolist() == [1, 0, 1, 0, 1, 0, 1, 0]
    clu = by["StackOverflow"]
    assert len(clu.texts) == 18 and sorted(set(clu.labels.tolist())) == [1, 2, 3]
    ret = by["SciFact"]
    assert ret.corpus_texts[0] == "doc 0 body 0"  # title + " " + text
    assert ret.query_ids == ["q0", "q1"]  # only the queries judged in the test split
    assert ret.qrels == {"q0": {"d0": 1}, "q1": {"d1": 1, "d2": 1}}
    ws = by["WS-353"]
    assert ws.words1 == ["w1", "w3", "w5", "w7"] and ws.scores.tolist() == [3.0, 1.0, 2.0, 0.5]


def test_missing_datasets_are_skipped_with_a_warning(tiny_data):
    import shutil

    shutil.rmtree(tiny_data / "retrieval")
    (tiny_data / "classification/trec/train.jsonl").unlink()
    with pytest.warns(UserWarning, match="skipping"):
        loaded = data.load_available(data.select(tiny_data), tiny_data)
    names = {d.name for d in loaded}
    assert "SciFact" not in names and "TREC" not in names and len(names) == 9


def test_select_filters_and_discovers_extra_datasets(tiny_data):
    write_jsonl(tiny_data / "sts/my_sts/test.jsonl", STS_ROWS)
    write_jsonl(tiny_data / "classification/mine/train.jsonl", CLS_TRAIN)
    write_jsonl(tiny_data / "classification/mine/validation.jsonl", CLS_TEST)  # no test split: not picked up
    (tiny_data / "word_similarity/EN-RG-65.tsv").write_text("word1\tword2\tscore\na\tb\t1\nc\td\t2\n")
    assert [s.name for s in data.select(tiny_data, tasks=["sts"])] == ["STSBenchmark", "SICK-R"]
    assert [s.name for s in data.select(tiny_data, names=["sick-r"])] == ["SICK-R"]
    extra = {s.name: s for s in data.discover(tiny_data)}
    assert set(extra) == {"my_sts", "RG-65"}
    loaded = data.load_available(data.select(tiny_data, discover_extra=True), tiny_data)
    assert {"my_sts", "RG-65"} <= {d.name for d in loaded}
    with pytest.raises(ValueError):
        data.select(tiny_data, tasks=["nope"])


def test_dev_splits_only_when_named(tiny_data):
    assert "SciFact-train" not in {s.name for s in data.select(tiny_data)}
    assert "SciFact-train" not in {s.name for s in data.select(tiny_data, discover_extra=True)}
    (spec,) = data.select(tiny_data, names=["SciFact-train"])
    assert (spec.task, spec.path, spec.split) == ("retrieval", "retrieval/scifact", "train")
    assert data.select(tiny_data, tasks=["sts"], names=["SciFact-train"]) == []
    every = data.select(tiny_data, names=["dev"])
    assert [s.name for s in every] == [s.name for s in data.DEV_SPLITS]
    assert not {s.name for s in every} & {s.name for s in data.REGISTRY}
    assert [s.name for s in data.select(tiny_data, names=["dev", "TREC"])] == ["TREC"] + [s.name for s in every]


def test_heldout_split_scores_a_fixed_fifth_of_train_and_trains_on_the_rest(tiny_data):
    folder = tiny_data / "classification/trec"
    a = data.load_classification(folder, "TREC-heldout", data.HELDOUT_SPLIT, "train")
    b = data.load_classification(folder, "TREC-heldout", data.HELDOUT_SPLIT, "train")
    assert len(a.test_texts) == len(CLS_TRAIN) // 5 and len(a.train_texts) == len(CLS_TRAIN) - len(a.test_texts)
    assert not set(a.test_texts) & set(a.train_texts)
    assert sorted(a.test_texts + a.train_texts) == sorted(r["text"] for r in CLS_TRAIN)
    assert a.test_texts == b.test_texts and np.array_equal(a.test_labels, b.test_labels)  # fixed, not per call
    order = [r["text"] for r in CLS_TRAIN]
    assert a.test_texts == sorted(a.test_texts, key=order.index)  # file order kept
    for r, lab in zip(a.test_texts, a.test_labels):
        assert r.startswith(f"cls {lab} ")
    write_jsonl(tiny_data / "classification/one/train.jsonl", CLS_TRAIN[:1])
    with pytest.raises(ValueError, match="at least 2 train rows"):
        data.load_classification(tiny_data / "classification/one", "x", data.HELDOUT_SPLIT, "train")
    specs = {s.name: s for s in data.select(tiny_data, names=["dev"])}
    assert specs["Banking77-train"].task == "clustering"
    clustered = data.load(specs["Banking77-train"], tiny_data)
    assert clustered.texts == [r["text"] for r in CLS_TRAIN]


def test_dev_alias_and_unknown_keys(tmp_path):
    write_jsonl(tmp_path / "d/validation.jsonl", STS_ROWS)
    assert len(data.load_sts(tmp_path / "d", "x", "dev").scores) == 6


SHARED = SHARED_DATA


@pytest.mark.skipif(not (SHARED / "MANIFEST.md").is_file(), reason="shared data folder not present")
def test_real_shared_data_counts():
    loaded = {d.name: d for d in data.load_available(data.select(SHARED), SHARED)}
    assert len(loaded) == 11
    assert len(loaded["STSBenchmark"].scores) == 1379
    assert len(loaded["SICK-R"].scores) == 4927
    assert len(loaded["Banking77"].test_texts) == 3080 and len(loaded["Banking77"].train_texts) == 10003
    assert len(loaded["MRPC"].labels) == 1725 and int(loaded["MRPC"].labels.sum()) == 1147
    assert len(loaded["StackOverflow"].texts) == 20000 and len(np.unique(loaded["StackOverflow"].labels)) == 20
    assert len(loaded["SciFact"].query_ids) == 300 and len(loaded["SciFact"].corpus_ids) == 5183
    assert sum(len(v) for v in loaded["SciFact"].qrels.values()) == 339
    assert len(loaded["WS-353"].scores) == 353 and len(loaded["SimLex-999"].scores) == 999
    (dev,) = data.load_available(data.select(SHARED, names=["SciFact-train"]), SHARED)
    assert len(dev.query_ids) == 809 and sum(len(v) for v in dev.qrels.values()) == 919
    devs = {d.name: d for d in data.load_available(data.select(SHARED, names=["dev"]), SHARED)}
    assert {s.name for s in data.DEV_SPLITS if s.source is None} <= set(devs)  # package datasets: when installed
    assert len(devs["STSBenchmark-dev"].scores) == 1500 and len(devs["SICK-R-trial"].scores) == 500
    assert len(devs["SST-2-dev"].test_texts) == 872 and len(devs["Emotion-validation"].test_texts) == 2000
    assert len(devs["MRPC-train"].labels) == 4076
    assert len(devs["TREC-heldout"].test_texts) == 1090 and len(devs["TREC-heldout"].train_texts) == 4362
    assert len(devs["Banking77-heldout"].test_texts) == 2000 and len(devs["Banking77-heldout"].train_texts) == 8003
    assert len(devs["Banking77-train"].texts) == 10003 and len(np.unique(devs["Banking77-train"].labels)) == 77


def test_resolve_data_dir_one_rule_for_every_tool(tmp_path, monkeypatch):
    from benchmarks.quality.data import default_data_dir, resolve_data_dir

    assert resolve_data_dir(str(tmp_path)) == tmp_path
    missing = tmp_path / "missing"
    with pytest.raises(data.DataDirError, match=rf"^--data {re.escape(str(missing))}: not a folder$"):
        resolve_data_dir(missing)
    monkeypatch.setenv("STATIC_EMBEDDINGS_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path == resolve_data_dir(None)
    monkeypatch.setenv("STATIC_EMBEDDINGS_DATA", str(missing))  # was: ../shared/data used in its place, silently
    with pytest.raises(data.DataDirError, match=r"^\$STATIC_EMBEDDINGS_DATA=.*missing: not a folder"):
        resolve_data_dir(None)


def test_an_empty_data_option_is_an_error_but_an_empty_variable_is_unset(tmp_path, monkeypatch):
    """``--data ""`` (a script's unset variable) used the default folder in its place; an empty
    ``$STATIC_EMBEDDINGS_DATA`` is, by convention, the variable unset."""
    monkeypatch.setenv("STATIC_EMBEDDINGS_DATA", str(tmp_path))  # a default that would be found
    with pytest.raises(data.DataDirError, match=r"^--data is empty: pass the data folder"):
        data.resolve_data_dir("")
    monkeypatch.setenv("STATIC_EMBEDDINGS_DATA", "")
    monkeypatch.setattr(data, "SOURCE_ROOT", tmp_path / "checkout")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "shared")  # ../shared/data from here
    assert data.default_data_dir() == data.resolve_data_dir(None) == Path.cwd().parent / "shared" / "data"


def test_no_data_folder_anywhere_is_a_typed_usage_error_not_an_exit(tmp_path, monkeypatch):
    from distill.cli_checks import UsageError

    monkeypatch.delenv("STATIC_EMBEDDINGS_DATA", raising=False)
    monkeypatch.setattr(data, "SOURCE_ROOT", tmp_path / "checkout")  # no shared/data beside it
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)  # nor beside the working directory
    assert data.default_data_dir() is None
    with pytest.raises(data.DataDirError, match=r"^no --data given and no default data folder exists") as info:
        data.resolve_data_dir(None)
    assert isinstance(info.value, UsageError)


# ------------------------------------------------------------------------------ malformed files are errors


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD_STS = json.dumps(STS_ROWS[0])


@pytest.mark.parametrize(("line", "problem"), [
    ('{"sentence1": "a", "sentence2": "b", "score": 1.0', "line 3: not JSON"),
    ('["a", "b", 1.0]', "line 3: a JSON object expected, got list"),
    ('{"sentence1": "a", "score": 1.0}', "line 3: missing field 'sentence2'"),
    ('{"sentence1": "a", "sentence2": "b", "score": "high"}', "line 3: field 'score' must be a finite number"),
    ('{"sentence1": "a", "sentence2": "b", "score": NaN}', "line 3: field 'score' must be a finite number"),
    ('{"sentence1": "a", "sentence2": 7, "score": 1.0}', "line 3: field 'sentence2' must be a string"),
])
def test_a_malformed_sts_line_is_an_error_naming_file_and_line(tiny_data, line, problem):
    path = _write_lines(tiny_data / "sts/stsbenchmark/test.jsonl", [GOOD_STS, "", line, GOOD_STS])
    with pytest.raises(data.DataFormatError) as info:
        data.load_available(data.select(tiny_data, names=["STSBenchmark"]), tiny_data)
    assert str(info.value).startswith(f"{path}: {problem}"), str(info.value)


@pytest.mark.parametrize(("row", "problem"), [
    ({"text": "x", "label": 1.5}, "field 'label' must be an integer"),
    ({"text": "x", "label": True}, "field 'label' must be an integer"),
    ({"text": "x", "label": "1"}, "field 'label' must be an integer"),
    ({"label": 1}, "missing field 'text'"),
])
def test_wrong_types_in_classification_and_clustering_are_errors(tiny_data, row, problem):
    for folder, name in (("classification/trec", "TREC"), ("clustering/stackoverflow_stc2", "StackOverflow")):
        split = "train" if name == "TREC" else "test"
        path = tiny_data / folder / f"{split}.jsonl"
        write_jsonl(path, CLS_TRAIN[:2] + [row])
        with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(path))}: line 3: {re.escape(problem)}"):
            data.load_available(data.select(tiny_data, names=[name]), tiny_data)


def test_an_empty_split_file_is_an_error(tiny_data):
    path = _write_lines(tiny_data / "pair_classification/mrpc/test.jsonl", ["", ""])
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(path))}: no rows"):
        data.load_available(data.select(tiny_data, names=["MRPC"]), tiny_data)


@pytest.mark.parametrize(("content", "problem"), [
    ("word1\tword2\tscore\na\tb\t1\nc\td\n", "line 3: fewer fields than the header"),
    ("word1\tword2\tscore\na\tb\t1\tx\n", "line 2: more fields than the header"),
    ("word1\tword2\tscore\na\tb\t1\nc\td\thigh\n", "line 3: column 'score' must be a finite number, got 'high'"),
    ("word1\tword2\tscore\n\tb\t1\n", "line 2: column 'word1' is empty"),
    ("word1\tword2\tsim\na\tb\t1\n", "line 1: the header lacks column(s) score"),
    ("word1\tword2\tscore\n", "no rows"),
])
def test_a_malformed_word_similarity_file_is_an_error(tiny_data, content, problem):
    path = tiny_data / "word_similarity/EN-WS-353-ALL.tsv"
    path.write_text(content)
    with pytest.raises(data.DataFormatError) as info:
        data.load_available(data.select(tiny_data, names=["WS-353"]), tiny_data)
    assert str(info.value) == f"{path}: {problem}"


def test_retrieval_files_are_checked(tiny_data):
    folder = tiny_data / "retrieval/scifact"
    qrels = folder / "qrels/test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq9\td1\t1\n")
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(qrels))}: line 3: query 'q9' is not in"):
        data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\tyes\n")
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(qrels))}: line 2: column 'score'"):
        data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    corpus = _write_lines(folder / "corpus.jsonl", ['{"_id": "d0", "title": null, "text": "body"}', '{"title": "t"}'])
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(corpus))}: line 2: missing field '_id'"):
        data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    _write_lines(folder / "corpus.jsonl", ['{"_id": 7, "title": null, "text": "body"}'])
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\t7\t1\n")
    (ret,) = data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    assert ret.corpus_ids == ["7"] and ret.corpus_texts == ["body"]  # integer ids and null titles are allowed
    assert ret.qrels == {"q0": {"7": 1}}


def test_a_judged_document_missing_from_the_corpus_is_an_error_naming_qrels_line_and_id(tiny_data):
    qrels = tiny_data / "retrieval/scifact/qrels/test.tsv"
    corpus = tiny_data / "retrieval/scifact/corpus.jsonl"
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td7\t1\nq1\td1\t1\nq0\td8\t1\nq0\td7\t0\n")
    with pytest.raises(data.DataFormatError) as info:
        data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    assert str(info.value) == (f"{qrels}: line 3: document 'd7' is not in {corpus} (2 judged documents missing)")
    # The same ids, all in the corpus: loads, every judgement kept.
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td4\t1\n")
    (ret,) = data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)
    assert ret.qrels == {"q0": {"d0": 1}, "q1": {"d4": 1}} and ret.query_ids == ["q0", "q1"]


def test_duplicate_ids_and_conflicting_judgements_are_errors(tiny_data):
    """A document id twice could take two places of one ranking (its relevance counted twice); a pair judged twice
    with two scores kept the last one silently."""
    folder = tiny_data / "retrieval/scifact"
    qrels, corpus, queries = folder / "qrels/test.tsv", folder / "corpus.jsonl", folder / "queries.jsonl"

    def load():
        return data.load_available(data.select(tiny_data, names=["SciFact"]), tiny_data)

    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq0\td0\t1\nq1\td4\t1\n")  # the same twice: fine
    (ret,) = load()
    assert ret.qrels == {"q0": {"d0": 1}, "q1": {"d4": 1}}
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td4\t1\nq0\td0\t2\n")
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(qrels))}: line 4: query 'q0' and document "
                                                   "'d0' are judged 1 and again 2$"):
        load()
    qrels.write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    for path in (corpus, queries):
        rows = path.read_text().splitlines()
        path.write_text("\n".join([*rows, rows[0]]) + "\n")
        with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(path))}: id '.+' is in rows 1 and "
                                                       rf"{len(rows) + 1} \(ids must be unique\)$"):
            load()
        path.write_text("\n".join(rows) + "\n")


def test_heldout_with_too_few_rows_names_the_file(tiny_data):
    path = tiny_data / "classification/one/train.jsonl"
    write_jsonl(path, CLS_TRAIN[:1])
    with pytest.raises(data.DataFormatError, match=rf"^{re.escape(str(path))}: a held-out split needs at least 2"):
        data.load_classification(path.parent, "x", data.HELDOUT_SPLIT, "train")


def test_the_cli_reports_a_malformed_dataset_in_one_line_and_exits_2(tiny_data, tmp_path, tiny_model, capsys):
    from benchmarks.__main__ import main

    folder = tmp_path / "m"
    tiny_model.save_pretrained(folder)
    path = _write_lines(tiny_data / "sts/sickr/test.jsonl", [GOOD_STS, '{"sentence1": "a"'])
    rc = main(["quality", "-m", f"static:{folder}", "--data", str(tiny_data), "--tasks", "sts", "--cache", "none",
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith(f"error: {path}: line 2: not JSON"), err
