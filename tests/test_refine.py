"""distill.refine on a tiny random teacher and a tiny corpus (each test runs in seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers.teachers import SENTENCES, make_corpus  # noqa: E402

from distill.refine.config import DEFAULT_REFINED_CONTRAST  # noqa: E402


def _corpus(n: int = 240, seed: int = 0) -> list[str]:
    return make_corpus(n, seed)


@pytest.fixture(scope="module")
def base_model(teacher_dir):
    from distill import distill

    return distill(str(teacher_dir), pca_dims=8, batch_size=64, dtype="float32", show_progress_bar=False)


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    from distill import Teacher

    return Teacher(str(teacher_dir), device="cpu")


def _config(**options):
    from distill.refine import RefineConfig

    options = {"epochs": 8, "batch_size": 32, "learning_rate": 1e-2, "patience": 8, "chunk_size": 64,
               "device": "cpu", **options}
    return RefineConfig.from_options(**options)


def _refine(base_model, teacher, tmp_path, corpus=None, targets=None, **options):
    from distill.refine import refine

    return refine(base_model, teacher, _corpus() if corpus is None else corpus, _config(**options),
                  cache_dir=tmp_path / "cache", targets=targets, show_progress_bar=False)


def test_refine_loss_goes_down_and_output_loads(base_model, teacher, tmp_path):
    from static_model import StaticModel

    model = _refine(base_model, teacher, tmp_path)
    info = model.config["refine"]
    assert info["val_loss"]["best"] < info["val_loss"]["initial"]
    assert info["val_cosine"]["best"] > info["val_cosine"]["initial"]
    train_losses = [h["train_loss"] for h in info["history"][1:]]
    assert train_losses[-1] < train_losses[0]
    assert info["best_epoch"] >= 1 and info["passages"] == 240
    assert model.dim == base_model.dim and model.vocab_size == base_model.vocab_size
    model.save_pretrained(tmp_path / "out")
    loaded = StaticModel.from_pretrained(tmp_path / "out")
    assert loaded.config["refine"]["passages"] == 240
    vecs = loaded.encode(["the cat sat on the mat", "music and rain"])
    assert vecs.shape == (2, 8) and np.all(np.isfinite(vecs))
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-3)


def test_refined_model_pools_with_contrast_unless_told(base_model, teacher, tmp_path):
    base = base_model.truncate_dims(base_model.dim)
    base.contrast = 0.0
    assert _refine(base, teacher, tmp_path, epochs=1).contrast == DEFAULT_REFINED_CONTRAST == 1.0
    assert _refine(base, teacher, tmp_path, epochs=1, contrast=0).contrast == 0.0
    assert _refine(base, teacher, tmp_path, epochs=1, contrast=0.7).contrast == 0.7
    with pytest.raises(ValueError, match="contrast"):
        _refine(base, teacher, tmp_path, epochs=1, contrast=-2)


@pytest.mark.parametrize("center_targets", [False, True])
def test_refined_model_is_closer_to_teacher_than_base(base_model, teacher, tmp_path, center_targets):
    corpus = _corpus(400, seed=1)
    model = _refine(base_model, teacher, tmp_path, corpus=corpus, sif_coefficient=None, epochs=15,
                    center_targets=center_targets)
    assert model.config["refine"]["targets_centered"] is center_targets
    held = _corpus(120, seed=7)[len(SENTENCES):]
    # default: the targets keep the teacher's mean, so the student learns the teacher's own cosines;
    # centred targets (plain PCA): compare with the centred teacher embeddings
    t = teacher.encode(held)
    if center_targets:
        t = t - teacher.encode(corpus).mean(axis=0)

    def pair_corr(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = x @ x.T
        return s[np.triu_indices(len(x), 1)]

    ref = pair_corr(t)
    # training fits the plain mean (contrast pooling is an encode-time choice on top)
    base_c = np.corrcoef(ref, pair_corr(base_model.encode(held, contrast=0)))[0, 1]
    ref_c = np.corrcoef(ref, pair_corr(model.encode(held, contrast=0)))[0, 1]
    assert ref_c > base_c


def test_cosine_and_mse_losses_and_inits(base_model, teacher, tmp_path):
    for loss, init in (("mse", "linear-map"), ("cosine", "table")):
        model = _refine(base_model, teacher, tmp_path, loss=loss, init=init, epochs=3)
        info = model.config["refine"]
        assert info["train"]["loss"] == loss and info["train"]["init"] == init
        assert info["val_loss"]["best"] <= info["val_loss"]["initial"]


def test_seeded_runs_are_identical(base_model, teacher, tmp_path):
    a = _refine(base_model, teacher, tmp_path, epochs=2)
    b = _refine(base_model, teacher, tmp_path, epochs=2)
    np.testing.assert_array_equal(a.embedding_matrix(), b.embedding_matrix())


def test_featurize_resumes_after_interruption(teacher, tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    texts = _corpus(200)
    full = rf.featurize(teacher, texts, cache_dir=tmp_path / "ref", chunk_size=1000, show_progress_bar=False)
    np.testing.assert_allclose(full, teacher.encode(texts), atol=1e-5)

    calls = []
    real = rf.encode_chunk

    def counting(t, chunk, **kw):
        calls.append(len(chunk))
        return real(t, chunk, **kw)

    monkeypatch.setattr(rf, "encode_chunk", counting)
    cache = tmp_path / "cache"
    with pytest.raises(InterruptedError):
        rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, max_new_chunks=2, show_progress_bar=False)
    assert calls == [64, 64]
    assert len(list(cache.glob("chunk-*.npy"))) == 2
    assert not list(cache.glob("*.tmp*"))
    calls.clear()
    again = rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == [64, 8]  # only the missing chunks are encoded
    np.testing.assert_allclose(again, full, atol=1e-5)
    calls.clear()
    rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == []
    # a changed passage invalidates only its chunk
    texts2 = list(texts)
    texts2[70] = "a completely different passage"
    rf.featurize(teacher, texts2, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == [64]
    # a corrupt chunk is re-encoded
    calls.clear()
    victim = sorted(cache.glob("chunk-00000-*.npy"))[0]
    victim.write_bytes(b"garbage")
    rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    assert calls == [64]
    assert json.loads((cache / "meta.json").read_text())["dim"] == teacher.dim


# Featurize in a child that is killed (SIGKILL) while it writes its second chunk's temporary file.
_KILLED_MID_CHUNK = """
import os, sys, time
from distill import Teacher
from distill.refine import featurize as rf
real_fsync = os.fsync
def stall_on_second_chunk(fd):
    folder = rf.Path(sys.argv[2])
    if len(list(folder.glob("chunk-*.npy"))) == 1 and list(folder.glob(".chunk-*.tmp-*")):  # the second's temporary
        print("stalled", flush=True)
        time.sleep(600)
    real_fsync(fd)
rf.os.fsync = stall_on_second_chunk
texts = [line for line in sys.argv[3].split("|")]
rf.featurize(Teacher(sys.argv[1], device="cpu"), texts, cache_dir=sys.argv[2], chunk_size=64, show_progress_bar=False)
"""


def test_temporaries_of_a_killed_run_are_removed_once_abandoned(teacher, teacher_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from distill.refine import featurize as rf
    from static_model.atomic_file import ABANDONED_AFTER_SECONDS

    texts = _corpus(200)
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_MID_CHUNK, str(teacher_dir), str(cache), "|".join(texts)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "stalled"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = sorted(cache.glob(".chunk-*.tmp-*"))
    whole = list(cache.glob("chunk-*.npy"))
    assert len(left) == 1 and len(whole) == 1  # the first chunk whole, the second one's temporary
    in_progress = cache / ".chunk-00009-feed.npy.tmp-1-beef"  # another run writing now: kept
    in_progress.write_bytes(b"partial")
    hour_ago = os.stat(left[0]).st_mtime - ABANDONED_AFTER_SECONDS - 1
    os.utime(left[0], (hour_ago, hour_ago))
    again = rf.featurize(teacher, texts, cache_dir=cache, chunk_size=64, show_progress_bar=False)
    np.testing.assert_allclose(again, teacher.encode(texts), atol=1e-5)
    assert sorted(cache.glob(".chunk-*.tmp-*")) == [in_progress]


def test_default_cache_is_one_folder_a_teacher_and_a_longer_corpus_reuses_its_start(teacher, tmp_path, monkeypatch):
    from distill.refine import featurize as rf

    a = rf.default_cache_dir(teacher)
    assert a.parts[:2] == (".cache", "refine")
    assert a.name == rf.teacher_fingerprint(teacher)
    calls = []
    real = rf.encode_chunk
    monkeypatch.setattr(rf, "encode_chunk", lambda t, chunk, **kw: calls.append(len(chunk)) or real(t, chunk, **kw))
    texts = _corpus(200)
    rf.featurize(teacher, texts[:128], cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    calls.clear()
    longer = rf.featurize(teacher, texts, cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    assert calls == [64, 8]  # the first 128 passages came from the shorter run's chunks
    np.testing.assert_allclose(longer, teacher.encode(texts), atol=1e-5)


def test_file_digest_reads_the_whole_file(tmp_path):
    """Was the size and the first and last MiB: a fine-tune that changed only middle layers shared its cache."""
    import os

    from distill.refine.featurize import file_digest

    data = bytearray(os.urandom(5 << 20))
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.write_bytes(data)
    data[len(data) // 2] ^= 1
    b.write_bytes(data)
    assert file_digest(a) != file_digest(b)
    before = file_digest(a)
    data[len(data) // 2] ^= 1
    data[-1] ^= 1
    a.write_bytes(data)  # changed in place: the remembered digest is not reused
    os.utime(a, ns=(1, 1))
    assert file_digest(a) != before


def test_cache_key_is_the_teacher_content_not_its_name(teacher_dir, tmp_path):
    import shutil

    from distill import Teacher
    from distill.refine.featurize import teacher_fingerprint

    copy = tmp_path / "same-teacher-elsewhere"
    shutil.copytree(teacher_dir, copy)
    original = teacher_fingerprint(Teacher(str(teacher_dir), device="cpu"))
    assert teacher_fingerprint(Teacher(str(copy), device="cpu")) == original
    config = json.loads((copy / "config.json").read_text())
    config["num_hidden_layers"] = config.get("num_hidden_layers", 2) + 1
    (copy / "config.json").write_text(json.dumps(config))
    assert teacher_fingerprint(Teacher(str(copy), device="cpu")) != original


def test_cache_key_covers_the_lower_casing_of_sentence_bert_config(teacher_dir, tmp_path):
    """``do_lower_case`` in sentence_bert_config.json lowers every text before the tokenizer (other targets for a
    tokenizer that keeps case); flipping it kept the key, so the cache served the other setting's targets."""
    import shutil

    from distill import Teacher
    from distill.refine.featurize import teacher_fingerprint

    original = teacher_fingerprint(Teacher(str(teacher_dir), device="cpu"))
    fingerprints = []
    for lower in (False, True):
        copy = tmp_path / f"lower-{lower}"
        shutil.copytree(teacher_dir, copy)
        config_file = copy / "sentence_bert_config.json"
        config = json.loads(config_file.read_text()) if config_file.is_file() else {}
        config_file.write_text(json.dumps({**config, "do_lower_case": lower}))
        teacher = Teacher(str(copy), device="cpu")
        assert teacher.spec.do_lower_case is lower
        fingerprints.append(teacher_fingerprint(teacher))
    assert fingerprints[0] == original  # the setting's default keeps every existing key
    assert fingerprints[1] != original


def test_cache_key_covers_every_weight_shard(teacher_dir, tmp_path):
    """A large teacher's weights come in shards (``model-00001-of-0000N.safetensors`` and an index); two that differ
    in one middle shard only got one key, so the second would have trained on the first one's cached targets."""
    import shutil

    import torch
    from transformers import BertModel

    from distill import Teacher
    from distill.refine.featurize import teacher_fingerprint

    def sharded_copy(name: str, nudge: float):
        folder = tmp_path / name
        shutil.copytree(teacher_dir, folder)
        (folder / "model.safetensors").unlink()
        model = BertModel.from_pretrained(teacher_dir)
        with torch.no_grad():
            model.encoder.layer[0].output.dense.weight[0, 0] += nudge
        model.save_pretrained(folder, max_shard_size="20KB")
        return folder

    a, b = sharded_copy("a", 0.0), sharded_copy("b", 0.5)
    shards = sorted(p.name for p in a.glob("model-*.safetensors"))
    assert len(shards) > 2 and (a / "model.safetensors.index.json").is_file()
    teacher_a, teacher_b = Teacher(str(a), device="cpu"), Teacher(str(b), device="cpu")
    assert not np.allclose(teacher_a.encode(["the cat sat"]), teacher_b.encode(["the cat sat"]))
    assert teacher_fingerprint(teacher_a) != teacher_fingerprint(teacher_b)
    assert teacher_fingerprint(teacher_a) == teacher_fingerprint(Teacher(str(a), device="cpu"))


def test_vocabulary_extension(base_model, teacher, tmp_path):
    corpus = _corpus() + ["unbelievable outcomes"] * 10
    model = _refine(base_model, teacher, tmp_path, corpus=corpus, vocabulary_size=5, epochs=2)
    assert model.config["refine"]["added_words"] >= 1
    assert model.vocab_size > base_model.vocab_size
    ids = model.tokenize(["playing"])[0]
    assert len(ids) == 1  # "playing" (play ##ing) was frequent enough to become one token
    model.save_pretrained(tmp_path / "ext")
    from static_model import StaticModel

    assert StaticModel.from_pretrained(tmp_path / "ext").tokenize(["playing"])[0].tolist() == ids.tolist()


def test_iterable_corpus_and_errors(base_model, teacher, tmp_path):
    from distill.refine import refine
    from distill.refine.corpus import read_corpus

    assert read_corpus(iter(["a", " ", "b\n"])) == ["a", "b"]
    assert read_corpus(["a", "b", "c"], max_sentences=2) == ["a", "b"]
    with pytest.raises(ValueError):
        read_corpus(["", "  "])
    with pytest.raises(ValueError):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="at least"):
        refine(base_model, teacher, ["the cat"] * 4, cache_dir=tmp_path / "c", show_progress_bar=False)
    with pytest.raises(ValueError, match="targets"):
        refine(base_model, teacher, _corpus(), targets=np.zeros((3, 32), np.float32))
    with pytest.raises(TypeError, match="config must be a RefineConfig"):
        refine(base_model, teacher, _corpus(), {"loss": "mse"})  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "field"), [
    ({"loss": "l1"}, "loss"),
    ({"weight_learning_rate": 0.0}, "weight_learning_rate"),
    ({"epochs": 0}, "epochs"),
    ({"max_sentences": 0}, "corpus.max_sentences"),
    ({"chunk_size": 0}, "featurize.chunk_size"),
    ({"teacher_batch_size": -1}, "featurize.batch_size"),
    ({"dtype": "bfloat16"}, "output.dtype"),
    ({"sif_coefficient": 1.5}, "output.sif_coefficient"),
    ({"contrast": -2}, "output.contrast"),
    ({"vocabulary_size": -1}, "vocabulary_size"),
    ({"learning_rate": float("inf")}, "learning_rate"),  # trained nothing: every epoch NaN, the init restored
    ({"weight_learning_rate": float("inf")}, "weight_learning_rate"),
    ({"max_length": 0}, "max_length"),  # these two failed only after featurizing
    ({"seed": -1}, "seed"),
])
def test_a_bad_setting_names_its_field(options, field):
    from distill.refine import RefineConfig

    with pytest.raises(ValueError, match=field):
        RefineConfig.from_options(**options)


def test_config_is_frozen_and_grouped():
    import dataclasses

    from distill.refine import CorpusConfig, RefineConfig, TrainConfig

    config = RefineConfig.from_options(loss="cosine", max_sentences=500, prefer_sources="wiki", teacher_batch_size=8)
    assert config.train == TrainConfig(loss="cosine") and config.corpus == CorpusConfig(500, ("wiki",))
    assert config.featurize.batch_size == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown refine option.*learning_rat;"):
        RefineConfig.from_options(learning_rat=0.1)
    with pytest.raises(TypeError, match="RefineConfig.train must be a TrainConfig"):
        RefineConfig(train={"loss": "mse"})  # type: ignore[arg-type]


def test_prefer_sources_takes_those_passages_first_and_keeps_file_order(tmp_path):
    from distill.refine.corpus import read_corpus

    corpus = tmp_path / "lines.txt"
    corpus.write_text("a1\nb1\n\nb2\na2\nc1\n", encoding="utf-8")
    (tmp_path / "lines.source.txt").write_text("a\nb\nb\nb\na\nc\n", encoding="utf-8")
    assert read_corpus(corpus, 3) == ["a1", "b1", "b2"]
    assert read_corpus(corpus, 3, prefer_sources=("a",)) == ["a1", "b1", "a2"]
    assert read_corpus(corpus, 4, prefer_sources="c") == ["a1", "b1", "b2", "c1"]
    assert read_corpus(corpus, None, prefer_sources=("a", "c")) == ["a1", "b1", "b2", "a2", "c1"]
    with pytest.raises(ValueError, match="never occur"):
        read_corpus(corpus, 3, prefer_sources=("wiki",))
    with pytest.raises(ValueError, match="iterable"):
        read_corpus(["a1"], prefer_sources=("a",))
    (tmp_path / "lines.source.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fewer than"):
        read_corpus(corpus, 3, prefer_sources=("a",))
    (tmp_path / "lines.source.txt").unlink()
    with pytest.raises(ValueError, match="lines.source.txt"):
        read_corpus(corpus, 3, prefer_sources=("a",))


def test_refine_records_the_preferred_sources(base_model, teacher, tmp_path):
    from distill.refine import refine

    corpus = tmp_path / "c.txt"
    texts = _corpus()
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "c.source.txt").write_text("\n".join("odd" if i % 2 else "even" for i in range(len(texts))) + "\n")
    model = refine(base_model, teacher, corpus, _config(max_sentences=200, prefer_sources=("odd",), epochs=1),
                   cache_dir=tmp_path / "cache", show_progress_bar=False)
    info = model.config["refine"]
    assert info["prefer_sources"] == ["odd"] and info["passages"] == 200
    # a shared model records its corpus by file name, never a local path (issue #20, item 10)
    assert info["corpus"] == "c.txt" and str(tmp_path) not in json.dumps(model.config)
    from distill.refine.featurize import teacher_fingerprint

    assert info["teacher_fingerprint"] == teacher_fingerprint(teacher)
    plain = refine(base_model, teacher, corpus, _config(max_sentences=200, epochs=1), cache_dir=tmp_path / "cache",
                   show_progress_bar=False)
    assert plain.config["refine"]["prefer_sources"] == []  # another corpus than the default: no preference


def test_prefer_sources_option():
    from distill.refine.cli import build_parser, config_from_args
    from distill.refine.corpus import DEFAULT_PREFER_SOURCES

    def parsed(*extra):
        return config_from_args(build_parser().parse_args(["model", "-o", "out", *extra])).corpus.prefer_sources

    assert parsed() is None and DEFAULT_PREFER_SOURCES == ("wikipedia_en_2015",)
    assert parsed("--prefer-sources", "a,b") == ("a", "b")
    assert parsed("--prefer-sources", "none") == ()


def test_cli(base_model, teacher_dir, tmp_path, capsys):
    from distill.refine.cli import main

    base_model.save_pretrained(tmp_path / "base")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus()) + "\n", encoding="utf-8")
    argv = [str(tmp_path / "base"), "--teacher", str(teacher_dir), "--corpus", str(corpus), "-o",
            str(tmp_path / "out"), "--epochs", "2", "--cache-dir", str(tmp_path / "cache"), "--quiet",
            "--device", "cpu", "--batch-size", "32", "--weight-learning-rate", "0.002"]
    assert main(argv) == 0
    assert "held-out cosine" in capsys.readouterr().out
    info = json.loads((tmp_path / "out" / "config.json").read_text())["refine"]
    assert info["passages"] == 240
    assert info["train"]["weight_learning_rate"] == 0.002
    assert main(argv) == 2  # output exists
    assert main(argv + ["--overwrite"]) == 0
    assert main([str(tmp_path / "base"), "--corpus", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o2"),
                 "--teacher", str(teacher_dir), "--quiet"]) == 2


def test_sif_reweighting_is_off_by_default_and_scales_rows_when_asked(base_model, teacher, tmp_path):
    plain = _refine(base_model, teacher, tmp_path, epochs=2)
    assert plain.config["refine"]["sif_coefficient"] is None
    weighted = _refine(base_model, teacher, tmp_path, epochs=2, sif_coefficient=1e-3)
    a, b = plain.embedding_matrix(), weighted.embedding_matrix()
    norms_a, norms_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    seen = norms_a > 0
    ratio = norms_b[seen] / norms_a[seen]
    assert np.all(ratio <= 1 + 1e-3) and ratio.min() < 0.9  # a / (a + p) shrinks frequent tokens' rows
    np.testing.assert_allclose(b[seen] / ratio[:, None], a[seen], rtol=1e-2, atol=1e-3)  # direction kept


def test_refine_variants_benchmark_parses_its_variants():
    import argparse

    from benchmarks.studies.refine_variants import parse_variant

    assert parse_variant('mse, no SIF={"loss": "mse"}') == ("mse, no SIF", {"loss": "mse"})
    for bad in ("no-equals", 'x=[1, 2]', "x={not json"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_variant(bad)


def test_refine_variants_benchmark_end_to_end(base_model, teacher_dir, tmp_path, capsys, monkeypatch):
    from helpers.benchmark_data import write_tiny_data

    from benchmarks.__main__ import main

    monkeypatch.chdir(tmp_path)  # the benchmark featurizes into the default .cache/refine of the working folder

    data = write_tiny_data(tmp_path / "data")
    base = tmp_path / "base"
    base_model.save_pretrained(base)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(_corpus()) + "\n")
    out = tmp_path / "variants"
    rc = main(["refine-variants", "--base", str(base), "--teacher", str(teacher_dir), "--corpus", str(corpus),
               "--max-sentences", "200",
               "--variant", 'mse={"loss": "mse", "epochs": 2}', "--variant", 'cosine={"loss": "cosine", "epochs": 2}',
               "--work-dir", str(tmp_path / "work"), "--data", str(data), "--out", str(out)])
    assert rc == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert [m["name"] for m in report["models"]] == ["mse", "cosine"]
    assert report["meta"]["command"].startswith("python -m benchmarks refine-variants --base")
    assert "--variant 'mse={\"loss\": \"mse\", \"epochs\": 2}'" in report["meta"]["command"]  # quoted once
    assert "| mse | cosine |" in out.with_suffix(".md").read_text()


def test_cli_defaults_are_the_config_defaults():
    from distill.refine import RefineConfig
    from distill.refine.cli import build_parser, config_from_args

    args = build_parser().parse_args(["model", "-o", "out"])
    assert config_from_args(args) == RefineConfig()
    args = build_parser().parse_args(["model", "-o", "out", "--loss", "cosine", "--max-sentences", "all"])
    config = config_from_args(args, device="cpu", dtype="int8", contrast=0.5)
    assert (config.train.loss, config.train.device, config.corpus.max_sentences) == ("cosine", "cpu", None)
    assert (config.output.dtype, config.output.contrast) == ("int8", 0.5)


@pytest.mark.parametrize("keep_mean", [True, False])
def test_pca_basis_projects_new_vectors_as_pca_did(keep_mean):
    """benchmarks.refine_gap projects new teacher vectors on ``pca_basis`` exactly as refine's PCA projected the
    training targets."""
    from distill.pca import pca, pca_basis, project

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(300, 12)) + 0.5).astype(np.float32)
    y, _ = pca(x, 5, keep_mean=keep_mean, chunk=64)
    mean, comps, _ = pca_basis(x, 5)
    offset = mean @ comps if keep_mean else 0.0
    np.testing.assert_allclose((x.astype(np.float64) - mean) @ comps + offset, y, atol=1e-4)
    np.testing.assert_allclose(project(x, mean, comps, keep_mean=keep_mean), y, atol=1e-6)


def test_refine_gap_refuses_a_model_without_a_corpus_file(base_model, teacher, tmp_path):
    from benchmarks.__main__ import main

    model = _refine(base_model, teacher, tmp_path, epochs=1)
    model.save_pretrained(tmp_path / "refined")
    with pytest.raises(SystemExit, match="no such corpus file at .*pass --corpus PATH"):  # refined on an iterable
        main(["refine-gap", str(tmp_path / "refined"), "--data", str(tmp_path)])
    base_model.save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit, match="not a refined model"):
        main(["refine-gap", str(tmp_path / "plain")])


def test_refine_gap_text_sets_use_only_held_out_lines(tmp_path):
    from benchmarks.studies.refine_gap import text_sets

    sci = tmp_path / "retrieval" / "scifact"
    sci.mkdir(parents=True)
    (sci / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": str(i), "title": f"T{i}", "text": f"a{i}. b{i}. c"})
                                                for i in range(5)) + "\n")
    (sci / "queries.jsonl").write_text("\n".join(json.dumps({"_id": str(i), "text": f"claim {i}"}) for i in range(5)))
    held = [f"held {i}" for i in range(6)]
    sets = text_sets(held, tmp_path, 4)
    assert set(sets["held-out corpus lines"]) <= set(held) and len(sets["held-out corpus lines"]) == 4
    assert all(t.count("held") == 8 for t in sets["8 held-out lines joined"])
    assert sets["SciFact claims"] == ["claim 0", "claim 1", "claim 2", "claim 3"]
    with pytest.raises(ValueError, match="held out"):
        text_sets(held[:2], tmp_path, 4)


# --------------------------------------------------------------------------- training streams its targets (#23)
# The PCA is fit in passes over the memory-mapped featurize chunks; training holds buffer_passages target rows.


def _refine_600(base_model, teacher, cache, **options):
    from distill.refine import refine

    return refine(base_model, teacher, _corpus(600, seed=2), _config(epochs=6, **options), cache_dir=cache,
                  show_progress_bar=False)


def test_a_buffer_of_one_chunk_trains_as_well_as_the_whole_split(base_model, teacher, tmp_path, monkeypatch):
    from distill.refine.targets import TargetShards

    whole = _refine_600(base_model, teacher, tmp_path / "cache")  # 540 training passages fit the default buffer
    reads: list[int] = []
    real = TargetShards.read

    def spy(self, rows):
        reads.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(TargetShards, "read", spy)
    streamed = _refine_600(base_model, teacher, tmp_path / "cache", buffer_passages=64)  # 10 chunks of 64 passages
    assert max(reads) <= 64 and sum(reads) > 6 * 500  # every epoch read the split again, a buffer at a time
    a, b = whole.config["refine"], streamed.config["refine"]
    assert (a["n_train"], a["n_val"]) == (b["n_train"], b["n_val"])
    assert a["val_cosine"]["initial"] == pytest.approx(b["val_cosine"]["initial"], abs=1e-6)  # same init, same split
    assert b["val_cosine"]["best"] > b["val_cosine"]["initial"] + 0.02
    assert abs(a["val_cosine"]["best"] - b["val_cosine"]["best"]) < 0.01
    texts = _corpus(80, seed=9)
    cos = np.sum(whole.encode(texts) * streamed.encode(texts), axis=1)  # both normalize
    assert cos.mean() > 0.97


def test_small_buffer_runs_are_seeded(base_model, teacher, tmp_path):
    a = _refine_600(base_model, teacher, tmp_path / "cache", buffer_passages=100)
    b = _refine_600(base_model, teacher, tmp_path / "cache", buffer_passages=100)
    np.testing.assert_array_equal(a.embedding_matrix(), b.embedding_matrix())
    c = _refine_600(base_model, teacher, tmp_path / "cache", buffer_passages=100, seed=1)
    assert not np.array_equal(a.embedding_matrix(), c.embedding_matrix())


def test_featurize_hands_training_the_memory_mapped_chunks(teacher, tmp_path):
    from distill.refine.featurize import featurize, featurize_shards

    texts = _corpus(200)
    shards = featurize_shards(teacher, texts, cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    assert [len(c) for c in shards.chunks] == [64, 64, 64, 8]
    assert all(isinstance(c, np.memmap) for c in shards.chunks)  # just encoded: saved, then mapped back
    again = featurize_shards(teacher, texts, cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    assert all(isinstance(c, np.memmap) for c in again.chunks)  # from the cache: mapped, not loaded
    array = featurize(teacher, texts, cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    np.testing.assert_array_equal(again.to_array(), array)
    rows = np.array([150, 3, 64, 199, 3])
    np.testing.assert_array_equal(again.read(rows), array[rows])


def test_training_from_memory_mapped_shards_equals_training_from_the_array(base_model, teacher, tmp_path):
    from distill.refine.featurize import featurize_shards
    from distill.refine.train import TrainConfig, train_table

    texts = _corpus(300)
    shards = featurize_shards(teacher, texts, cache_dir=tmp_path, chunk_size=64, show_progress_bar=False)
    y = shards.to_array()[:, : base_model.dim]
    ids = base_model.tokenize(texts)
    config = TrainConfig(epochs=2, batch_size=32, device="cpu")
    from_array = train_table(base_model.embedding_matrix(), ids, y, config, show_progress_bar=False)
    from distill.refine.targets import TargetShards

    mapped = TargetShards([c[:, : base_model.dim] for c in shards.chunks])
    from_disk = train_table(base_model.embedding_matrix(), ids, mapped, config, show_progress_bar=False)
    np.testing.assert_array_equal(from_array.table, from_disk.table)


def test_streaming_pca_is_the_in_memory_pca():
    from distill.pca import pca, pca_basis
    from distill.refine.targets import TargetShards, fit_pca

    rng = np.random.default_rng(4)
    x = (rng.normal(size=(5000, 24)) * rng.uniform(0.1, 3, 24) + 0.7).astype(np.float32)
    shards = TargetShards([x[:700], x[700:701], x[701:4500], x[4500:]])  # blocks cross the chunk borders
    mean, comps, ratio = fit_pca(shards, 6)
    expected = pca_basis(x, 6)
    np.testing.assert_array_equal(mean, expected[0])
    np.testing.assert_array_equal(comps, expected[1])
    assert ratio == expected[2]
    for keep_mean in (True, False):
        projected = shards.projected(mean, comps, keep_mean=keep_mean)
        np.testing.assert_allclose(projected.to_array(), pca(x, 6, keep_mean=keep_mean)[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="larger than the number of targets"):
        fit_pca(TargetShards([x[:3]]), 6)


@pytest.mark.parametrize("bad", [0, -5, 2.5, None])
def test_a_bad_buffer_setting_is_a_clear_error(bad):
    from distill.refine import RefineConfig, TrainConfig

    with pytest.raises(ValueError, match="buffer_passages must be a positive int"):
        TrainConfig(buffer_passages=bad)
    with pytest.raises(ValueError, match="buffer_passages"):
        RefineConfig.from_options(buffer_passages=bad)


def test_the_cli_rejects_a_bad_buffer_before_loading(tmp_path, capsys):
    from distill.refine.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("a passage\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert main([str(tmp_path / "model"), "-o", str(tmp_path / "out"), "--corpus", str(corpus),
                 "--buffer-passages", "0"]) == 2
    assert "--buffer-passages must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_training_reads_only_the_tokens_the_teacher_saw(base_model, teacher, tmp_path):
    # passages longer than the tiny teacher's window (max_seq_length 64: 62 tokens between [CLS] and [SEP])
    sentences = _corpus(1200, seed=1)
    long_corpus = [" ".join(sentences[i : i + 12]) for i in range(0, len(sentences), 12)] + _corpus(100)
    assert teacher.student_max_length == 62
    assert max(len(ids) for ids in base_model.tokenize(long_corpus)) > 62
    default = _refine(base_model, teacher, tmp_path, corpus=long_corpus)
    assert default.config["refine"]["train_max_length"] == 62
    assert default.max_length == base_model.max_length  # encoding still reads the model's own limit
    windowed = _refine(base_model, teacher, tmp_path, corpus=long_corpus, max_length=62)
    np.testing.assert_array_equal(default.embedding_matrix(), windowed.embedding_matrix())
    reading_all = _refine(base_model, teacher, tmp_path, corpus=long_corpus, max_length=512)
    assert reading_all.config["refine"]["train_max_length"] == 512
    assert not np.array_equal(default.embedding_matrix(), reading_all.embedding_matrix())


def test_refining_a_base_with_its_top_directions_dropped_warns(teacher_dir, teacher, base_model, tmp_path):
    import warnings

    from distill import distill

    dropped = distill(str(teacher_dir), pca_dims=8, batch_size=64, dtype="float32", drop_components=2,
                      show_progress_bar=False)
    from distill.refine.pipeline import TopComponentsDroppedWarning

    with pytest.warns(TopComponentsDroppedWarning, match=r"top 2 principal directions dropped.*drop_components=0"):
        _refine(dropped, teacher, tmp_path, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _refine(base_model, teacher, tmp_path, epochs=1)  # nothing dropped: no warning


def test_too_small_a_corpus_is_refused_before_the_teacher_encodes_it(base_model, teacher, tmp_path, monkeypatch):
    """The dims + 1 check ran after featurizing: a user waited for the teacher pass, then got the error."""
    import distill.refine.pipeline as pipeline
    from distill.refine import refine

    def never(*args, **kwargs):
        raise AssertionError("featurize ran before the corpus size was checked")

    monkeypatch.setattr(pipeline, "featurize_shards", never)
    with pytest.raises(ValueError, match=r"4 passages; at least dims \+ 1"):
        refine(base_model, teacher, ["the cat"] * 4, cache_dir=tmp_path / "c", show_progress_bar=False)


@pytest.mark.parametrize("contrast", ["99", "nan", "-1"])
def test_the_cli_names_a_bad_contrast_by_its_option_before_loading(tmp_path, capsys, contrast):
    """It was named output.contrast (the config field), after the model and corpus checks."""
    from distill.refine.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("a passage\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert main([str(tmp_path / "model"), "-o", str(tmp_path / "out"), "--corpus", str(corpus),
                 "--contrast", contrast]) == 2
    assert "error: --contrast must be between 0 and 50" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
