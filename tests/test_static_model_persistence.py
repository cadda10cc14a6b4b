"""Folders on disk: round trips, dtypes, atomic saves, and clear errors for missing or corrupt files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from static_model import StaticModel, persistence

TEXTS = ["the cat sat on the mat", "a dog runs fast", "unbelievable playing", "", "bank river money"]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_round_trip_per_dtype(tiny_model, tmp_path, dtype):
    tiny_model.save_pretrained(tmp_path / "m", dtype=dtype)
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    assert loaded.dtype == dtype and loaded.dim == 8 and loaded.normalize
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["dtype"] == dtype and config["dim"] == 8 and config["max_length"] == 512
    tolerance = {"float32": 1e-6, "float16": 2e-3, "int8": 2e-2}[dtype]
    np.testing.assert_allclose(loaded.encode(TEXTS), tiny_model.encode(TEXTS), atol=tolerance)


def test_int8_keeps_magnitudes(tiny_table, wordpiece_tokenizer):
    scaled = tiny_table * np.linspace(0.01, 10, len(tiny_table), dtype=np.float32)[:, None]
    model = StaticModel(scaled, wordpiece_tokenizer)
    int8 = model.quantize("int8")
    assert int8.embeddings.dtype == np.int8 and int8.weights is not None
    error = np.abs(int8.embedding_matrix() - scaled)
    assert np.all(error <= np.abs(scaled).max(axis=1, keepdims=True) / 127)  # at most one step of each row's scale
    unnormalized = ["cat", "dog", "the mat"]
    np.testing.assert_allclose(
        int8.encode(unnormalized, normalize=False), model.encode(unnormalized, normalize=False), rtol=0.02, atol=1e-3
    )
    back = int8.quantize("float32")
    assert back.weights is None
    np.testing.assert_allclose(back.embedding_matrix(), int8.embedding_matrix(), rtol=1e-6)


def test_truncate_dims_at_load_and_after(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    loaded = StaticModel.from_pretrained(tmp_path / "m", dims=3, dtype="float16")
    assert loaded.dim == 3 and loaded.dtype == "float16"
    np.testing.assert_allclose(loaded.embedding_matrix(), tiny_model.embedding_matrix()[:, :3], atol=2e-3)
    assert tiny_model.truncate_dims(5).encode("cat").shape == (5,)
    with pytest.raises(ValueError, match="dims"):
        tiny_model.truncate_dims(9)
    with pytest.raises(ValueError, match="dtype"):
        StaticModel.from_pretrained(tmp_path / "m", dtype="bfloat16")


def test_config_keeps_extra_keys_and_records_the_producer(tiny_table, wordpiece_tokenizer, tmp_path):
    model = StaticModel(tiny_table, wordpiece_tokenizer, config={"teacher": "tiny-bert", "distill": {"pca_dims": 8}})
    model.save_pretrained(tmp_path / "m")
    config = StaticModel.from_pretrained(tmp_path / "m").config
    assert config["teacher"] == "tiny-bert" and config["distill"] == {"pca_dims": 8}
    assert config["producer"]["library"] == "static-embeddings" and config["model_type"] == "static_model"


def test_saved_tokenizer_has_no_padding_or_truncation(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "tokenizer.json").read_text())
    assert spec["padding"] is None and spec["truncation"] is None


def test_failed_save_leaves_the_old_model_intact(tiny_model, tiny_table, wordpiece_tokenizer, tmp_path, monkeypatch):
    target = tmp_path / "m"
    tiny_model.save_pretrained(target)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "write_text", explode)
    other = StaticModel(tiny_table * 2, wordpiece_tokenizer)
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(target, overwrite=True)
    after = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
    assert after == before
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary folder left behind
    np.testing.assert_allclose(StaticModel.from_pretrained(target).encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-6)


def test_save_over_an_existing_model_replaces_it(tiny_model, tiny_table, wordpiece_tokenizer, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    StaticModel(tiny_table * 2, wordpiece_tokenizer).save_pretrained(tmp_path / "m", overwrite=True)
    np.testing.assert_allclose(StaticModel.from_pretrained(tmp_path / "m").embedding_matrix(), tiny_table * 2)
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_saved_folder_has_ordinary_permissions(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "plain").mkdir()
    assert (tmp_path / "m").stat().st_mode == (tmp_path / "plain").stat().st_mode  # not mkdtemp's 0700


def test_saving_onto_a_file_is_refused(tiny_model, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        tiny_model.save_pretrained(tmp_path / "file")


@pytest.fixture
def saved(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model folder"):
        StaticModel.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_missing_file_is_named(saved, name):
    (saved / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        StaticModel.from_pretrained(saved)


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_corrupt_file_is_named(saved, name):
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=name):
        StaticModel.from_pretrained(saved)


def test_a_teacher_folder_is_named_as_one_to_distill_first(minilm_folder):
    """A sentence-transformers teacher (a transformer's weights) given to the static loader: the error says what it
    is and the command that makes a static model of it, not only that a tensor is missing."""
    with pytest.raises(ValueError, match=r"holds a transformer's \d+ tensors .*word_embeddings.*python -m distill"):
        StaticModel.from_pretrained(minilm_folder)


def test_a_table_under_another_name_lists_what_the_file_holds(saved):
    from safetensors.numpy import save_file

    save_file({"table": np.zeros((3, 2), np.float32)}, str(saved / "model.safetensors"))
    with pytest.raises(ValueError, match=r"no 'embeddings' tensor \(found: table\)"):
        StaticModel.from_pretrained(saved)


def test_config_that_disagrees_with_the_tensors(saved):
    config = json.loads((saved / "config.json").read_text())
    for key, value in (("dim", 16), ("vocab_size", 3), ("dtype", "float16")):
        (saved / "config.json").write_text(json.dumps({**config, key: value}))
        with pytest.raises(ValueError, match=f"config.json says {key}="):
            StaticModel.from_pretrained(saved)


def test_tokenizer_ids_beyond_the_table(saved):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(saved / "model.safetensors"))
    save_file({"embeddings": tensors["embeddings"][:20]}, str(saved / "model.safetensors"))
    config = json.loads((saved / "config.json").read_text())
    config.pop("vocab_size")
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"tokenizer.json has token ids up to 48 \(49 ids\) "
                       r"but .*model.safetensors has only 20 rows"):
        StaticModel.from_pretrained(saved)


def test_pickle_files_are_never_read(saved):
    (saved / "model.safetensors").unlink()
    (saved / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        StaticModel.from_pretrained(saved)


def _distilled_config():
    """The records ``python -m distill`` (with ``--refine``) writes, cut to the keys a truncation must look at."""
    return {"teacher": "tiny-bert", "apply_pca": 8,
            "distill": {"parameters": {"pca_dims": 8}, "teacher_hidden_size": 32, "explained_variance": 0.812345,
                        "pca_components": 8},
            "refine": {"passages": 10, "target_pca_explained_variance": 0.9, "targets_centered": True}}


def test_truncate_dims_drops_the_variance_the_wider_model_kept(tiny_table, wordpiece_tokenizer, tmp_path):
    """The share of the teacher's variance the PCA kept is that of every dimension; the saved table (SIF-weighted
    after the PCA) cannot give it for fewer, so a truncated model no longer states it, in its config or its card."""
    model = StaticModel(tiny_table, wordpiece_tokenizer, config=_distilled_config())
    assert model.truncate_dims(model.dim).config["distill"]["explained_variance"] == 0.812345  # nothing cut
    model.truncate_dims(3).save_pretrained(tmp_path / "m")
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    assert "explained_variance" not in loaded.config["distill"]
    assert "target_pca_explained_variance" not in loaded.config["refine"]
    assert loaded.config["distill"]["parameters"] == {"pca_dims": 8}  # how it was made still stands
    assert loaded.config["distill"]["teacher_hidden_size"] == 32 and loaded.config["refine"]["passages"] == 10
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "0.812" not in card and "xplained variance" not in card and "| dimensions | 3 |" in card
    assert model.config["distill"]["explained_variance"] == 0.812345  # the original model is not changed
    cut = StaticModel.from_pretrained(tmp_path / "m", dims=2)
    assert "explained_variance" not in cut.config["distill"]


@pytest.mark.parametrize("dims", [0, True, 2.0, "4"])
def test_from_pretrained_checks_dims_before_reading_the_folder(saved, dims):
    """Like ``dtype``, ``normalize`` and ``max_length``: a bad ``dims`` is named at once, not after a whole load (or
    behind an error about the folder)."""
    with pytest.raises(ValueError, match=f"dims must be a positive integer; got {dims!r}"):
        StaticModel.from_pretrained(saved.parent / "missing", dims=dims)
    with pytest.raises(ValueError, match="dims=9 is more than the model's 8 dimensions"):
        StaticModel.from_pretrained(saved, dims=9)
