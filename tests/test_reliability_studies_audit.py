"""Audit of the studies' saved work and command lines: ``ablation`` reuses work only for the very same teacher and
never reads a cut-short vocabulary pass; ``protocol``, ``fidelity``, ``paired-bootstrap`` and ``size`` check their
selections and counts before any model runs (one ``error:`` line naming the options, exit 2)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_data import hide_distribution, write_tiny_data
from helpers.teachers import SENTENCES, make_wordpiece_teacher

import distill
from benchmarks.__main__ import main
from benchmarks.studies.ablation import SharedPasses, teacher_work_name
from static_model import StaticModel


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    return write_tiny_data(tmp_path / "data")


@pytest.fixture
def passes(monkeypatch) -> list[str]:
    """The vocabulary passes made (``distill.embed_vocabulary`` calls), by pooling."""
    made: list[str] = []
    real = distill.embed_vocabulary

    def counted(plan, **kwargs):
        made.append(kwargs.get("pooling", "auto"))
        return real(plan, **kwargs)

    monkeypatch.setattr(distill, "embed_vocabulary", counted)
    return made


@pytest.fixture
def no_model_loads(monkeypatch) -> None:
    """Any model load fails the test: the checks must come first."""
    import benchmarks.quality.encoders as encoders

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(encoders, "load_encoder", refuse)


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


# ------------------------------------------------------------------ ablation: the work of one teacher only
def _ablation(teacher: Path, tiny_data: Path, work: Path, cache: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["ablation", "--teacher", str(teacher), "--data", str(tiny_data), "--datasets", "STSBenchmark",
                     "--only", "default", "--pca-dims", "8", "--work-dir", str(work), "--cache-dir", str(cache),
                     "--no-progress"])


def _default_rows(work: Path) -> dict[str, np.ndarray]:
    return {f.parent.parent.name: StaticModel.from_pretrained(f.parent).embeddings.astype(np.float32)
            for f in sorted(work.glob("*/default/config.json"))}


def test_two_teachers_in_folders_of_one_name_never_share_variants_or_passes(tmp_path, tiny_data, passes):
    """The offline MiniLM package layout puts a teacher in ``.../model``: two such teachers shared the work folder
    ``model``, so the second was scored with the first one's variants (no pass of its own)."""
    first = make_wordpiece_teacher(tmp_path / "a" / "model", seed=0)
    second = make_wordpiece_teacher(tmp_path / "b" / "model", seed=1)
    work, cache = tmp_path / "work", tmp_path / "cache"
    assert _ablation(first, tiny_data, work, cache) == 0
    assert passes == ["mean"]
    assert _ablation(second, tiny_data, work, cache) == 0
    assert passes == ["mean", "mean"]  # its own pass, not the first teacher's raw-mean.npy
    rows = _default_rows(work)
    assert sorted(rows) == sorted([teacher_work_name(first), teacher_work_name(second)])
    assert all(name.startswith("model-") for name in rows)
    a, b = rows.values()
    assert a.shape == b.shape and not np.allclose(a, b)
    assert _ablation(first, tiny_data, work, cache) == 0  # the same teacher again: its work is reused
    assert passes == ["mean", "mean"]


def test_a_teacher_rewritten_in_place_is_not_given_its_old_work(tmp_path, tiny_data, passes):
    teacher = make_wordpiece_teacher(tmp_path / "teacher", seed=0)
    work, cache = tmp_path / "work", tmp_path / "cache"
    assert _ablation(teacher, tiny_data, work, cache) == 0
    before = _default_rows(work)
    make_wordpiece_teacher(teacher, seed=3)  # new weights, same path and settings
    assert _ablation(teacher, tiny_data, work, cache) == 0
    assert passes == ["mean", "mean"]
    after = _default_rows(work)
    (new,) = set(after) - set(before)
    (old,) = before
    assert new == teacher_work_name(teacher) != old and not np.allclose(after[new], before[old])


# ------------------------------------------------------------------ ablation: the vocabulary-pass cache file
def test_a_cut_short_vocabulary_pass_is_made_again_not_a_traceback(tmp_path, passes):
    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    cache_file = tmp_path / "work" / "raw-mean.npy"
    first = SharedPasses(str(teacher)).vectors("mean", cache_file, progress=False).vectors
    assert passes == ["mean"] and np.array_equal(np.load(cache_file), first)
    whole = cache_file.read_bytes()
    cache_file.write_bytes(whole[: len(whole) // 2])  # a writer killed mid-way (the old fixed-name temporary)
    again = SharedPasses(str(teacher)).vectors("mean", cache_file, progress=False).vectors
    assert passes == ["mean", "mean"] and np.array_equal(again, first)
    assert cache_file.read_bytes() == whole  # replaced by a whole file
    np.save(cache_file, first[:-1])  # whole, but not this teacher's kept tokens (another teacher's pass)
    SharedPasses(str(teacher)).vectors("mean", cache_file, progress=False)
    assert passes == ["mean"] * 3 and np.array_equal(np.load(cache_file), first)
    SharedPasses(str(teacher)).vectors("mean", cache_file, progress=False)
    assert passes == ["mean"] * 3  # a good file is read, as before


def test_the_vocabulary_pass_is_written_through_a_temporary_of_its_own(tmp_path, passes):
    """Two runs wrote ``raw-mean.tmp.npy``: one overwrote and renamed away the other's half-written file."""
    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    cache_file = tmp_path / "work" / "raw-mean.npy"
    cache_file.parent.mkdir()
    other = cache_file.with_suffix(".tmp.npy")
    other.write_bytes(b"another run, half-way")
    vectors = SharedPasses(str(teacher)).vectors("mean", cache_file, progress=False).vectors
    assert other.read_bytes() == b"another run, half-way"
    assert np.array_equal(np.load(cache_file), vectors)
    assert sorted(p.name for p in cache_file.parent.iterdir()) == ["raw-mean.npy", "raw-mean.tmp.npy"]


# ------------------------------------------------------------------ protocol
@pytest.fixture
def two_models(tmp_path, tiny_model) -> list[str]:
    tiny_model.save_pretrained(tmp_path / "A")
    return ["-m", f"static:{tmp_path / 'A'}", "-m", f"static:{tmp_path / 'A'}"]


def test_protocol_tasks_and_split_that_select_nothing_is_one_error_naming_both(tiny_data, two_models, capsys,
                                                                               monkeypatch, no_model_loads):
    hide_distribution(monkeypatch, "gensim")
    # word similarity has no development split: this was a misleading "no dataset under DATA"
    assert main(["protocol", *two_models, "--data", str(tiny_data), "--datasets", "dev",
                 "--tasks", "word_similarity"]) == 2
    _one_error_line(capsys, "--tasks word_similarity", "--datasets dev")


@pytest.mark.parametrize("command", ["protocol", "paired-bootstrap"])
def test_a_negative_seed_is_a_usage_error_before_any_model(command, tiny_data, two_models, capsys, no_model_loads):
    # it was a ValueError traceback from the resampler's SeedSequence, after both models had run
    assert main([command, *two_models, "--data", str(tiny_data), "--seed", "-1"]) == 2
    _one_error_line(capsys, "--seed")


def test_protocol_selection_still_runs_the_same_datasets(tiny_data, two_models, tmp_path, monkeypatch):
    hide_distribution(monkeypatch, "gensim")
    out = tmp_path / "p"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["protocol", *two_models, "--data", str(tiny_data), "--datasets", "all", "--tasks",
                     "sts,retrieval", "--resamples", "5", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert list(report["datasets"]) == ["STSBenchmark", "SICK-R", "SciFact", "SciFact-train"]
    assert report["splits"] == {"STSBenchmark": "test", "SICK-R": "test", "SciFact": "test", "SciFact-train": "dev"}


# ------------------------------------------------------------------ paired-bootstrap
def test_paired_bootstrap_tasks_and_datasets_that_select_nothing_name_both(tiny_data, two_models, capsys,
                                                                           no_model_loads):
    # MRPC is pair classification: this was "no sts dataset under DATA", as if the data folder lacked it
    assert main(["paired-bootstrap", *two_models, "--data", str(tiny_data), "--tasks", "sts",
                 "--datasets", "MRPC"]) == 2
    _one_error_line(capsys, "--tasks sts", "--datasets MRPC", "no named dataset")
    assert main(["paired-bootstrap", *two_models, "--data", str(tiny_data), "--datasets", "SciFact"]) == 2
    _one_error_line(capsys, "--tasks sts pair_classification word_similarity", "--datasets SciFact")


# ------------------------------------------------------------------ fidelity
def _fidelity_data(root: Path, *, lines_per_source: int = 20, book_words: int = 60) -> Path:
    (root / "corpus_general").mkdir(parents=True)
    rows = [(f"{SENTENCES[i % len(SENTENCES)]} {i}", ("news", "chat")[i % 2]) for i in range(2 * lines_per_source)]
    (root / "corpus_general" / "sentences.txt").write_text("".join(t + "\n" for t, _ in rows), encoding="utf-8")
    (root / "corpus_general" / "sentences.source.txt").write_text("".join(s + "\n" for _, s in rows),
                                                                  encoding="utf-8")
    (root / "corpus").mkdir()
    words = " ".join(f"w{i}" for i in range(book_words))
    (root / "corpus" / "public_domain_english.txt").write_text(words, encoding="utf-8")
    return root


def _fidelity(two_models: list[str], data: Path, *extra: str) -> list[str]:
    return ["fidelity", *two_models, "--teacher", "unused", "--data", str(data), "--texts-per-set", "6",
            "--passage-words", "12", "--resamples", "5", *extra]


def test_fidelity_a_skip_past_every_source_is_an_error_not_a_books_only_run(tmp_path, two_models, capsys,
                                                                            no_model_loads):
    data = _fidelity_data(tmp_path / "fdata")
    assert main(_fidelity(two_models, data, "--skip", "100")) == 2
    _one_error_line(capsys, "--texts-per-set 6", "--skip 100", "no source")


def test_fidelity_passages_longer_than_every_book_is_an_error_before_any_model(tmp_path, two_models, capsys,
                                                                              no_model_loads):
    data = _fidelity_data(tmp_path / "fdata", book_words=10)  # was a ValueError traceback after both models loaded
    assert main(_fidelity(two_models, data, "--skip", "0")) == 2
    _one_error_line(capsys, "--passage-words 12", "no document of 12 words")


def test_fidelity_a_corpus_without_its_source_sidecar_is_an_error_before_any_model(tmp_path, two_models, capsys,
                                                                                  no_model_loads):
    data = _fidelity_data(tmp_path / "fdata")
    (data / "corpus_general" / "sentences.source.txt").unlink()
    assert main(_fidelity(two_models, data, "--skip", "0")) == 2
    _one_error_line(capsys, "--data", "sentences.source.txt")


def test_fidelity_a_negative_seed_is_a_usage_error(tmp_path, two_models, capsys, no_model_loads):
    data = _fidelity_data(tmp_path / "fdata")
    assert main(_fidelity(two_models, data, "--skip", "0", "--seed", "-2")) == 2
    _one_error_line(capsys, "--seed")


# ------------------------------------------------------------------ size
def _size(tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "sdata").mkdir(exist_ok=True)
    return ["size", "--data", str(tmp_path / "sdata"), "--work", str(tmp_path / "work"), "--report-only",
            "--out", str(tmp_path / "res" / "size"), *extra]


def test_size_a_mistyped_skip_is_an_error_not_a_full_run(tmp_path, capsys):
    assert main(_size(tmp_path, "--skip", "ours-float32-256dd")) == 2  # was a run with every variant in
    _one_error_line(capsys, "--skip ours-float32-256dd", "'ours-float32-256dd'", "ours-float32-256d")
    assert not (tmp_path / "res").exists()


def test_size_tools_and_skip_that_leave_nothing_are_one_error_naming_both(tmp_path, capsys):
    skip = "ours-float32-256d,ours-float16-256d,ours-int8-256d"
    assert main(_size(tmp_path, "--tools", "ours", "--clusters", "", "--dims", "256", "--skip", skip)) == 2
    _one_error_line(capsys, "--tools ours", f"--skip {skip}", "every variant is left out")
    assert not (tmp_path / "res").exists()  # was an empty report


def test_size_dims_wider_than_the_distill_are_an_error_before_it(tmp_path, capsys):
    assert main(_size(tmp_path, "--dims", "256,512")) == 2  # truncate_dims refused 512 after the distill
    _one_error_line(capsys, "--dims 256,512", "[512]")


@pytest.mark.parametrize("other", ["--no-build", "--report-only"])
def test_size_build_only_with_no_build_is_an_error_not_a_run_of_nothing(tmp_path, capsys, other):
    argv = ["size", "--work", str(tmp_path / "work"), "--build-only", other]
    assert main(argv) == 2  # was exit 0 having done nothing
    _one_error_line(capsys, "--build-only", other)


def test_paired_bootstrap_takes_a_comma_list_of_datasets_as_quality_does(tiny_data, two_models, capsys,
                                                                          no_model_loads):
    """``--datasets A,B`` (quality's spelling) was one unknown name 'A,B'; each name is now checked alone."""
    assert main(["paired-bootstrap", *two_models, "--data", str(tiny_data), "--tasks", "sts",
                 "--datasets", "STSBenchmark,Bogus"]) == 2
    line = _one_error_line(capsys, "unknown dataset name(s) 'Bogus'")
    assert "'STSBenchmark,Bogus'" not in line


# ------------------------------------------------------------------ ablation: a variant's own input files
def _corpus_variant(corpus: Path) -> list:
    from benchmarks.studies.ablation import Variant

    return [Variant("corpus", "corpus", "SIF from the corpus", {"token_frequencies": str(corpus), "pca_dims": 8,
                                                                 "frequency_weight": 1.0})]


def test_a_frequency_file_edited_in_place_rebuilds_its_variant(tmp_path):
    """The variant folder was reused whatever the file at its frequency path now held: the old model was scored as if
    made from the new counts."""
    from benchmarks.studies.ablation import build_variants

    teacher = str(make_wordpiece_teacher(tmp_path / "teacher"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog is playing\n", encoding="utf-8")
    root, vs = tmp_path / "variants", _corpus_variant(corpus)
    (folder,), first = build_variants(teacher, vs, root, progress=False)
    before = StaticModel.from_pretrained(folder).embeddings.astype(np.float32)
    corpus.write_text("weather weather weather football\nguitar guitar\n", encoding="utf-8")  # same path
    _, second = build_variants(teacher, vs, root, progress=False)
    assert first["corpus"] is not None and second["corpus"] is not None  # rebuilt, not the old model
    after = StaticModel.from_pretrained(folder).embeddings.astype(np.float32)
    assert not np.allclose(before, after)


def test_a_variant_with_unchanged_inputs_is_reused_and_an_old_folder_rebuilt_once(tmp_path):
    from benchmarks.studies.ablation import build_variants, variant_record_file

    teacher = str(make_wordpiece_teacher(tmp_path / "teacher"))
    corpus = tmp_path / "corpus.txt"
    text = "the cat sat on the mat\nthe dog is playing\n"
    corpus.write_text(text, encoding="utf-8")
    root, vs = tmp_path / "variants", _corpus_variant(corpus)
    build_variants(teacher, vs, root, progress=False)
    corpus.write_text(text, encoding="utf-8")  # rewritten with the same content: a newer file, the same counts
    _, again = build_variants(teacher, vs, root, progress=False)
    assert again == {"corpus": None}
    variant_record_file(root, vs[0]).unlink()  # a folder saved before variants recorded their inputs
    _, old = build_variants(teacher, vs, root, progress=False)
    assert old["corpus"] is not None
    _, then = build_variants(teacher, vs, root, progress=False)
    assert then == {"corpus": None}


def test_size_a_teacher_narrower_than_the_study_is_an_error_naming_it_before_any_distill(tmp_path, capsys,
                                                                                          monkeypatch):
    """The study distills both tools to PCA 256 and names every folder ``...-256d``: a 32-dim teacher was a PCA
    error after the teacher loaded (ours), or a model2vec model of 32 dims in a folder named 256d."""
    teacher = make_wordpiece_teacher(tmp_path / "narrow")
    capsys.readouterr()  # the teacher's own save progress

    def refuse(*args, **kwargs):
        raise AssertionError("a distill ran before the teacher's width was checked")

    monkeypatch.setattr(distill, "distill", refuse)
    argv = ["size", "--teacher", str(teacher), "--work", str(tmp_path / "work"), "--build-only", "--tools", "ours",
            "--clusters", "", "--no-combos", "--dims", "256"]
    assert main(argv) == 2
    _one_error_line(capsys, f"--teacher {teacher}", "32 dims", "256")
    assert not (tmp_path / "work" / "ours-base-float32").exists()

    # a rerun whose base is saved distills nothing: the teacher is not needed (it may be gone, or a hub id offline)
    base = tmp_path / "work" / "ours-base-float32"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}", encoding="utf-8")
    from benchmarks.studies import size

    monkeypatch.setattr(size, "build_ours", lambda *args: None)
    assert main([*argv[:2], str(tmp_path / "no-such-teacher"), *argv[3:]]) == 0
