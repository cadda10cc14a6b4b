"""The quality pipeline end to end on the tiny folder: perfect encoder = 100 everywhere, cache/resume, specs, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.benchmark_data import DIM, noise_vector, perfect_encode, random_encode, write_tiny_data

from benchmarks.quality import data, tasks
from benchmarks.quality.cache import EmbeddingCache
from benchmarks.quality.encoders import CachedEncoder, FunctionEncoder, detect_kind, parse_spec


@pytest.fixture
def tiny(tmp_path):
    root = write_tiny_data(tmp_path / "data")
    return root, data.load_available(data.select(root), root)


def test_perfect_encoder_scores_100_everywhere(tiny):
    _, datasets = tiny
    results = tasks.evaluate_all(FunctionEncoder("perfect", perfect_encode), datasets, progress=False)
    assert len(results) == 11
    for r in results:
        assert r.score == pytest.approx(100.0), (r.dataset, r.score)
    summary = tasks.summarize(results)
    assert summary["average"] == pytest.approx(100.0) and len(summary["task_averages"]) == 6


def test_random_encoder_scores_well_below(tiny):
    _, datasets = tiny
    results = tasks.evaluate_all(FunctionEncoder("random", random_encode), datasets, progress=False)
    assert tasks.summarize(results)["average"] < 70


def test_duplicates_are_encoded_once():
    seen = []

    def enc(texts):
        seen.extend(texts)
        return np.ones((len(texts), 3), dtype=np.float32)

    out = tasks.encode_unique(FunctionEncoder("x", enc), ["a", "b", "a", "c", "b"])
    assert out.shape == (5, 3) and seen == ["a", "b", "c"]


def test_cache_second_run_is_free_and_interrupted_run_resumes(tmp_path):
    texts = [f"text number {i}" for i in range(50)]
    calls = []

    def enc(batch):
        calls.append(len(batch))
        return np.stack([noise_vector(t, 1.0) for t in batch])

    cache = EmbeddingCache(tmp_path, "teacher-x")
    first = cache.get_or_encode(texts, enc, chunk_size=16, progress=False)
    assert sum(calls) == 50 and first.shape == (50, DIM)
    calls.clear()
    again = EmbeddingCache(tmp_path, "teacher-x").get_or_encode(texts[::-1], enc, progress=False)
    assert calls == [] and np.array_equal(again, first[::-1])

    # interrupted: the encoder dies on the third chunk; what was encoded before is kept
    state = {"n": 0}

    def dying(batch):
        state["n"] += 1
        if state["n"] == 3:
            raise KeyboardInterrupt
        return enc(batch)

    more = [f"other {i}" for i in range(40)]
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(tmp_path, "teacher-y").get_or_encode(more, dying, chunk_size=10, progress=False)
    calls.clear()
    resumed = EmbeddingCache(tmp_path, "teacher-y").get_or_encode(more, enc, chunk_size=10, progress=False)
    assert sum(calls) == 20  # only the two chunks that never finished
    assert np.allclose(resumed, np.stack([noise_vector(t, 1.0) for t in more]))
    # a truncated chunk file (killed while writing) is ignored, not fatal
    (tmp_path / "teacher-y" / "chunk-broken.npz").write_bytes(b"PK\x03\x04garbage")
    assert len(EmbeddingCache(tmp_path, "teacher-y")) == 40


def test_cached_encoder_only_caches_slow_ones_by_default(tmp_path):
    fast = CachedEncoder(FunctionEncoder("fast", random_encode), tmp_path)
    slow = CachedEncoder(FunctionEncoder("slow", random_encode, slow=True), tmp_path, progress=False)
    assert fast.cache is None and slow.cache is not None
    slow.encode(["a", "b"])
    assert len(list((tmp_path / "custom-slow").glob("chunk-*.npz"))) == 1


def test_parse_spec_and_detect_kind(tmp_path):
    assert parse_spec("static:/x/y") == (None, "static", "/x/y")
    assert parse_spec("Ours=static:/x/y") == ("Ours", "static", "/x/y")
    assert parse_spec("ours: distill, 256d=static:/x/y") == ("ours: distill, 256d", "static", "/x/y")
    assert parse_spec("corpus, a=3e-4=static:/x/y?contrast=0") == ("corpus, a=3e-4", "static", "/x/y?contrast=0")
    assert parse_spec("plain=static:/x/y?contrast=0") == ("plain", "static", "/x/y?contrast=0")
    assert parse_spec("model2vec:m") == (None, "model2vec", "m")
    assert parse_spec("teacher:all-MiniLM-L6-v2") == (None, "teacher", "all-MiniLM-L6-v2")
    assert parse_spec("all-MiniLM-L6-v2") == (None, "teacher", "all-MiniLM-L6-v2")
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text(json.dumps([{"idx": 0, "type": "sentence_transformers.models.Transformer"}]))
    (st / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert detect_kind(str(st)) == "teacher"
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "config.json").write_text(json.dumps({"model_type": "model2vec", "distill": {"seconds": 1}}))
    assert detect_kind(str(ours)) == "static"
    (ours / "config.json").write_text(json.dumps({"model_type": "static_model"}))
    assert detect_kind(str(ours)) == "static"
    m2v = tmp_path / "m2v"
    m2v.mkdir()
    (m2v / "config.json").write_text(json.dumps({"model_type": "model2vec", "apply_pca": 256}))
    assert detect_kind(str(m2v)) == "model2vec"


def test_run_quality_report_markdown_and_json(tiny, tmp_path):
    from benchmarks.quality.suite import quality_markdown
    from benchmarks.report import write_json

    _, datasets = tiny
    report = tasks.run_quality([FunctionEncoder("perfect", perfect_encode), FunctionEncoder("random", random_encode)],
                               datasets, cache_dir=tmp_path / "cache", progress=False, argv=["x"])
    assert report["reference"] == "perfect"
    md = quality_markdown(report)
    assert "| Dataset (metric ×100) | perfect | random |" in md
    assert "**Average (mean of task types)** | **100.0**" in md
    assert "% of perfect | 100.0 |" in md
    for label in ("STS avg", "Classification avg", "Retrieval avg", "WordSim avg", "Clustering avg"):
        assert label in md
    write_json(report, tmp_path / "q.json")
    back = json.loads((tmp_path / "q.json").read_text())
    assert back["models"][0]["summary"]["average"] == pytest.approx(100.0)
    assert back["meta"]["machine"]["cores"] >= 1 and "numpy" in back["meta"]["versions"]


def test_cli_quality_on_a_static_model_folder(tiny, tmp_path, tiny_model, capsys):
    """The CLI end to end: our StaticModel folder, read as ours and through model2vec, side by side."""
    from benchmarks.__main__ import main

    root, _ = tiny
    folder = tmp_path / "tiny-static"
    tiny_model.save_pretrained(folder)
    out = tmp_path / "res" / "quality"
    rc = main(["quality", "-m", f"ours=static:{folder}", "-m", f"m2v=model2vec:{folder}", "--data", str(root),
               "--tasks", "sts,word_similarity,retrieval", "--cache-dir", str(tmp_path / "c"), "--no-progress",
               "--out", str(out)])
    assert rc == 0
    md = (tmp_path / "res" / "quality.md").read_text()
    assert "| ours | m2v |" in md and "SciFact" in md and "Command:" in md
    rep = json.loads((tmp_path / "res" / "quality.json").read_text())
    a, b = (m["summary"]["average"] for m in rep["models"])
    assert a == pytest.approx(b, abs=0.5)  # the same folder through both loaders
    assert rep["models"][0]["info"]["size_on_disk"] > 0


def test_static_spec_can_override_the_pooling_contrast(tmp_path, tiny_model):
    from benchmarks.quality.encoders import check_spec, load_encoder, static_options

    folder = tmp_path / "m"
    tiny_model.save_pretrained(folder)
    assert static_options(f"{folder}?contrast=1.5") == (str(folder), {"contrast": 1.5})
    assert static_options(str(folder)) == (str(folder), {})
    plain, sharp = load_encoder(f"static:{folder}"), load_encoder(f"c=static:{folder}?contrast=1.5")
    assert (plain.model.contrast, sharp.model.contrast, sharp.name) == (0.0, 1.5, "c")
    assert plain.fingerprint != sharp.fingerprint  # cached embeddings never mix the two poolings
    # the key follows the model, not only the folder's files: a model held in memory gets its own
    from benchmarks.quality.encoders import StaticEncoder

    assert StaticEncoder(str(folder), model=tiny_model).fingerprint == plain.fingerprint
    assert StaticEncoder(str(folder), model=tiny_model.truncate_dims(4)).fingerprint != plain.fingerprint
    texts = ["the cat sat on the mat", "money tax law"]
    np.testing.assert_allclose(sharp.encode(texts), tiny_model.encode(texts, contrast=1.5), atol=1e-6)
    for bad, match in ((f"static:{folder}?contrast=-1", "contrast"), (f"static:{folder}?temperature=1", "unknown"),
                       (f"static:{folder}?contrast=x", "not a number"),
                       (f"static:{tmp_path}/none?contrast=1", "exist")):
        with pytest.raises(ValueError, match=match):
            check_spec(bad)


def test_run_quality_checks_every_spec_before_running_any(tiny, tmp_path):
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    with pytest.raises(ValueError, match="does not exist"):
        tasks.run_quality([FunctionEncoder("first", encode), f"late typo=static:{tmp_path / 'missing'}"],
                          tiny, cache_dir=None, progress=False)
    assert calls == []


def test_paired_bootstrap_tells_a_real_gap_from_none(tiny):
    from benchmarks.studies import paired_bootstrap

    _, datasets = tiny
    pair_scored = [d for d in datasets if d.task in paired_bootstrap.PAIR_TASKS]
    assert {d.task for d in pair_scored} == set(paired_bootstrap.PAIR_TASKS)
    perfect, rand = FunctionEncoder("perfect", perfect_encode), FunctionEncoder("random", random_encode)
    same = paired_bootstrap.compare(perfect, perfect, pair_scored, resamples=50)
    for v in [*same["datasets"].values(), *same["task_types"].values()]:
        assert v["diff"] == 0 and v["ci95"] == [0.0, 0.0] and v["share_a_at_least_b"] == 1.0
    gap = paired_bootstrap.compare(perfect, rand, pair_scored, resamples=200)
    assert set(gap["task_types"]) == set(paired_bootstrap.PAIR_TASKS)
    sts = gap["task_types"]["sts"]
    assert sts["a"] == pytest.approx(100.0) and sts["diff"] > 0 and sts["ci95"][0] <= sts["diff"] <= sts["ci95"][1]
    md = paired_bootstrap.markdown("perfect", "random", gap, 200)
    assert "| **sts avg** |" in md and "MRPC" in md


def test_paired_bootstrap_rejects_mismatched_items_and_other_tasks(tiny):
    from benchmarks.studies import paired_bootstrap

    with pytest.raises(ValueError, match="one shape"):
        paired_bootstrap.bootstrap_differences("sts", np.zeros(3), np.zeros(4), np.zeros(3), resamples=5, seed=0)
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap.bootstrap_differences("sts", np.zeros(3), np.zeros(3), np.zeros(3), resamples=0, seed=0)
    clustering = next(d for d in tiny[1] if d.task == "clustering")
    with pytest.raises(TypeError, match="not scored per pair"):
        paired_bootstrap.compare(FunctionEncoder("perfect", perfect_encode), FunctionEncoder("random", random_encode),
                                 [clustering], resamples=5)


def test_teacher_cache_key_is_refinements_teacher_fingerprint(tmp_path):
    """Two different teachers at one path never share cached embeddings: the key is the teacher's content
    (refinement's fingerprint: weights, tokenizer, pooling), not its name or folder."""
    import shutil

    from helpers.teachers import make_wordpiece_teacher

    from benchmarks.quality.encoders import TeacherEncoder
    from distill.refine.featurize import teacher_fingerprint

    folder = tmp_path / "teacher"
    texts = ["the cat sat on the mat", "a dog is playing in the park"]
    keys, vectors = [], []
    for build in ({"seed": 0}, {"seed": 1}, {"seed": 0, "pooling": "cls"}):
        shutil.rmtree(folder, ignore_errors=True)
        make_wordpiece_teacher(folder, **build)
        encoder = TeacherEncoder(str(folder))
        assert encoder.fingerprint == f"teacher-{teacher_fingerprint(encoder.model)}"
        cached = CachedEncoder(encoder, tmp_path / "cache", progress=False)
        vectors.append((cached.encode(texts), encoder.encode(texts)))
        keys.append(encoder.fingerprint)
    assert len(set(keys)) == 3  # other weights, other pooling: other keys, though the path is the same
    for through_cache, direct in vectors:
        np.testing.assert_allclose(through_cache, direct, atol=1e-5)  # never the previous teacher's vectors
    assert not np.allclose(vectors[0][0], vectors[1][0])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(keys)
    shutil.rmtree(folder)
    make_wordpiece_teacher(folder, seed=0)  # the first teacher again: its cache is found
    assert TeacherEncoder(str(folder)).fingerprint == keys[0]
