"""speed (in-process and subprocess), plot, reports and the ablation's own variants (input embeddings, frequency
ranks, added vocabulary)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.plot import collect_points, plot_points
from benchmarks.speed import models as speed
from benchmarks.speed import workers
from benchmarks.speed.models import speed_markdown
from benchmarks.studies.ablation import ablation_markdown


@pytest.fixture
def static_folder(tmp_path, tiny_model):
    folder = tmp_path / "tiny-static"
    tiny_model.save_pretrained(folder)
    return folder


def test_sample_sentences_is_fixed(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n".join(f"line {i}" for i in range(100)) + "\n\n")
    a, b = workers.sample_sentences(f, 10, seed=1), workers.sample_sentences(f, 10, seed=1)
    assert a == b and len(set(a)) == 10
    assert len(workers.sample_sentences(f, 1000)) == 100


def test_read_status_kb():
    assert workers.read_status_kb("VmRSS") > 1000


def test_measure_in_process(static_folder):
    res = speed.measure(f"static:{static_folder}", ["the cat sat on the mat", "hello world"] * 50, repeats=2,
                        latency_calls=20)
    assert res["kind"] == "static" and res["n_sentences"] == 100 and res["sentences_per_second"] > 0
    assert res["latency_ms_median"] > 0 and res["rss_after_load_mb"] > 0 and res["size_on_disk"] > 0
    assert res["dim"] == 8 and res["num_parameters"] == 49 * 8


def test_run_speed_subprocess_and_markdown(static_folder, tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("\n".join(["the cat sat on the mat", "hello world", "a dog runs fast"] * 20))
    rep = speed.run_speed([f"ours=static:{static_folder}", "static:/nonexistent"],
                          sentences_file=f, n=40, repeats=1, latency_calls=5, anchor="ours", progress=False)
    ok = [m for m in rep["models"] if not m.get("error")]
    assert [m["name"] for m in ok] == ["ours"] and rep["anchor"] == "ours"
    assert rep["models"][1].get("error")
    assert ok[0]["n_sentences"] == 40 and ok[0]["rss_after_load_mb"] > 0
    md = speed_markdown(rep)
    assert "| ours | static |" in md and "1.00×" in md and "error:" in md and "sentences/s" in md


def _quality(models):
    return {"models": [{"name": n, "spec": s, "summary": {"average": a, "task_averages": {}}, "info": {}}
                       for n, s, a in models]}


def test_plot_png(tmp_path):
    q = _quality([("teacher", "teacher:x", 70.0), ("ours", "static:y", 60.0), ("nospeed", "z", 1.0)])
    s = {"models": [{"name": "teacher", "kind": "teacher", "sentences_per_second": 150.0, "num_parameters": 22_000_000},
                    {"name": "ours", "kind": "static", "sentences_per_second": 40000.0, "num_parameters": 7_000_000}]}
    pts = collect_points(q, s)
    assert [p["name"] for p in pts] == ["teacher", "ours"]
    out = plot_points(pts, tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ablation_markdown():
    rep = {"baseline": "default", "models": [
        {"name": "default", "variant": "default", "description": "d",
         "summary": {"average": 60.0, "task_averages": {"sts": 62.0, "classification": 58.0}}},
        {"name": "− PCA", "variant": "no_pca", "description": "x",
         "summary": {"average": 58.5, "task_averages": {"sts": 60.0, "classification": 57.0}}}]}
    md = ablation_markdown(rep)
    assert "| default | d | 62.0 | 58.0 | **60.0** | ±0.0 |" in md and "-1.5" in md


def test_ablation_input_embedding_variant(minilm_folder, tmp_path):
    """The input-embedding variant: MiniLM's embedding-layer rows, PCA + SIF like distill, as a StaticModel."""
    from benchmarks.studies.ablation import input_embedding_model, variants

    assert {v.key for v in variants(None)} >= {"default", "no_pca", "no_sif", "input_embeddings", "token_pooling"}
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line\n")
    by_key = {v.key: v for v in variants(None, corpus)}
    assert by_key["corpus_frequencies_a1e-3"].kwargs == {"token_frequencies": str(corpus), "sif_coefficient": 1e-3,
                                                         "frequency_weight": 1.0}  # the counts alone
    assert by_key["corpus_pooled_a3e-4"].kwargs == {"token_frequencies": str(corpus), "sif_coefficient": 3e-4}
    m = input_embedding_model(str(minilm_folder), pca_dims=32)
    assert m.dim == 32
    e = m.encode(["a cat sat on the mat", "a dog sat on the mat", "quantum chromodynamics"])
    assert e.shape == (3, 32) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-3)
    cos = e @ e.T
    assert cos[0, 1] > cos[0, 2]


def test_ablation_zipf_over_frequency_ranks(minilm_folder, tmp_path):
    """The frequency-rank variant keeps Zipf's probabilities but orders them by the corpus counts."""
    from benchmarks.studies.ablation import SharedPasses, frequency_rank_probabilities, variants
    from distill.frequencies import zipf_probabilities

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("zebra zebra zebra quantum quantum the\n" * 3)
    by_key = {v.key: v for v in variants(None, corpus)}
    assert by_key["zipf_corpus_ranks"].frequency_ranks
    plan = SharedPasses(str(minilm_folder)).plan(str(corpus))
    probs = frequency_rank_probabilities(plan)
    kept = plan.kept_ids
    zipf = zipf_probabilities(kept.size)
    assert np.allclose(np.sort(probs), np.sort(zipf))
    pos = {w: int(np.searchsorted(kept, plan.tokenizer.token_to_id(w))) for w in ("zebra", "quantum", "the")}
    assert [probs[pos[w]] for w in ("zebra", "quantum", "the")] == list(zipf[:3])
    unseen = np.ones(kept.size, dtype=bool)
    unseen[list(pos.values())] = False
    assert np.all(np.diff(probs[unseen]) < 0)  # the rest keep their id order


def test_ablation_vocabulary_variant_adds_the_first_words_of_the_list(tmp_path):
    """A vocabulary variant adds the first N words of the list that are not teacher tokens yet, via distill."""
    from helpers.teachers import make_wordpiece_teacher

    from benchmarks.studies.ablation import Variant, build_variants, variants
    from static_model import StaticModel

    words = tmp_path / "words.tsv"
    words.write_text("word\tfrequency\tzipf\nthe\t0.05\t7.7\nguitar\t0.001\t6.0\nfootball\t0.001\t6.0\n"
                     "weather\t0.001\t6.0\n")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the guitar and the football\n")
    by_key = {v.key: v for v in variants(words, corpus)}
    assert by_key["vocabulary_100k"].vocabulary_size == 100_000
    assert by_key["vocabulary_30k_corpus_frequencies"].kwargs["token_frequencies"] == str(corpus)
    assert by_key["vocabulary_30k_corpus_frequencies"].kwargs["frequency_weight"] == 1.0
    assert "frequency_weight" not in by_key["vocabulary_30k_corpus_pooled"].kwargs  # distill's default
    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    v = Variant("vocab3", "vocabulary 3", "first 3 words", {"vocabulary": str(words), "pca_dims": 8},
                vocabulary_size=3)
    folders, seconds = build_variants(str(teacher), [v], tmp_path / "variants", progress=False)
    model = StaticModel.from_pretrained(folders[0])
    config = model.config["distill"]
    assert config["added_words"]["added"] == 2 and config["added_words"]["already_single_token"] == 1
    assert model.dim == 8 and seconds["vocab3"] is not None
    ids = model.tokenizer.encode("guitar weather", add_special_tokens=False).ids
    assert model.tokenizer.token_to_id("guitar") in ids and model.tokenizer.token_to_id("weather") is None


def test_runtime_speed_head_to_head_on_a_tiny_folder(static_folder):
    pytest.importorskip("model2vec")
    from benchmarks.speed import runtime as runtime_speed

    a = [f"the cat sat on the mat {i}" for i in range(40)]
    b = [f"hello world {i}" for i in range(40)]
    result = runtime_speed.run_scenarios(static_folder, a, b, repeats=1, long_words=3)
    assert result["max_abs_diff"] < 1e-3  # both libraries read the same folder into the same vectors
    for which in ("ours", "model2vec"):
        for scenario in ("default", "one thread", "4 threads"):
            speeds = result["median"][which][scenario]
            assert min(speeds["first_per_s"], speeds["new_per_s"]) > 0
        assert result["median"][which]["long words"]["rss_end_mb"] > 0
    md = runtime_speed.to_markdown(result, folder=static_folder, n=40, repeats=1,
                                   command="python -m benchmarks runtime-speed x")
    assert "| ours: encode (2 threads) |" in md and "new texts" in md and "4 threads" in md


def test_distill_speed_report_ratio_and_the_command_as_run():
    import datetime as dt

    from benchmarks.speed.distill_time import distill_speed_markdown

    rows = [{"repeat": r, "teacher": "t", "tool": tool, "wall_s": wall, "cpu_s": 1.0, "peak_rss_mib": 100.0,
             "load1": 0.5} for r, (tool, wall) in enumerate([("distill", 10.0), ("model2vec", 20.0)])]
    md = distill_speed_markdown(rows, {"t": "folder"}, dt.datetime(2026, 1, 1), [(0.1,), (0.2,)],
                                ["python", "-m", "benchmarks", "distill-speed", "--output", "a b.md"])
    assert "- Command: `python -m benchmarks distill-speed --output 'a b.md'`" in md
    assert "| t | distill | 1 | 10.0 | 10.0 | 1.0 | 100 | 0.50x |" in md


def test_ablation_frequency_grid(tmp_path):
    """--frequency-grid: the default and every (frequency weight, a) pair, each passed to distill's own arguments."""
    from benchmarks.studies.ablation import (
        FREQUENCY_GRID_COEFFICIENTS,
        FREQUENCY_GRID_WEIGHTS,
        frequency_grid,
        run_ablation,
    )

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line\n")
    grid = frequency_grid(corpus)
    assert grid[0].key == "default" and grid[0].kwargs == {}
    assert len(grid) == 1 + len(FREQUENCY_GRID_WEIGHTS) * len(FREQUENCY_GRID_COEFFICIENTS)
    by_key = {v.key: v for v in grid}
    assert by_key["grid_w0.25_a0.0003"].kwargs == {"token_frequencies": str(corpus), "sif_coefficient": 3e-4,
                                                   "frequency_weight": 0.25}
    with pytest.raises(ValueError, match="needs a frequency corpus"):
        run_ablation("unused", [], work_dir=tmp_path, corpus_file=tmp_path / "missing.txt", grid=True)


def test_ablation_shared_pass_matches_distill_for_pooled_frequencies(tmp_path):
    """A frequency variant built from the shared pass is the model distill.distill builds (--exact), bit for bit, the
    default frequency weight resolved the same way and recorded."""
    from helpers.teachers import make_wordpiece_teacher

    from benchmarks.studies.ablation import Variant, build_variants
    from static_model import StaticModel

    teacher = make_wordpiece_teacher(tmp_path / "teacher")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog is playing\n")
    v = Variant("pooled", "pooled", "", {"token_frequencies": str(corpus), "sif_coefficient": 3e-4, "pca_dims": 8})
    shared, _ = build_variants(str(teacher), [v], tmp_path / "shared", progress=False)
    exact, _ = build_variants(str(teacher), [v], tmp_path / "exact", exact=True, progress=False)
    a, b = StaticModel.from_pretrained(shared[0]), StaticModel.from_pretrained(exact[0])
    # the same stages (distill.prepare, embed_vocabulary, assemble) on the same device: the same bytes
    np.testing.assert_array_equal(a.embedding_matrix(), b.embedding_matrix())
    for m in (a, b):
        assert m.config["distill"]["parameters"]["frequency_weight"] == 0.25


def test_ablation_counts_each_frequency_source_once(tmp_path, monkeypatch):
    """Every frequency variant of one source reuses one count of it (a corpus read takes ~15 s on the shared one)."""
    from helpers.teachers import make_wordpiece_teacher

    from benchmarks.studies.ablation import SharedPasses, Variant, build_shared_variant
    from distill import frequencies as freq

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\n")
    calls = []
    real = freq.token_counts
    monkeypatch.setattr(freq, "token_counts", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    shared = SharedPasses(str(make_wordpiece_teacher(tmp_path / "teacher")))
    source = {"token_frequencies": str(corpus), "pca_dims": 8}
    alone, pooled, ranks = (build_shared_variant(shared, Variant(k, k, "", {**source, **kw}, frequency_ranks=r),
                                                 progress=False)
                            for k, kw, r in (("alone", {"frequency_weight": 1.0}, False), ("pooled", {}, False),
                                             ("ranks", {}, True)))
    assert calls == [str(corpus)]
    assert pooled.config["distill"]["parameters"]["frequency_weight"] == 0.25
    assert ranks.config["distill"]["parameters"]["token_frequencies"] == f"zipf-rank:{corpus.name}"
    for other in (alone, ranks):
        assert not np.allclose(other.embedding_matrix(), pooled.embedding_matrix())
