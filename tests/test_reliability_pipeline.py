"""A classifier pipeline folder is untrusted input too: its head's settings have strict types and ranges and its
weights are finite, or the load fails naming the file; never a pipeline that silently predicts something else."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from static_model.pipeline import HEAD_CONFIG_FILE, HEAD_FILE, StaticPipeline


@pytest.fixture
def pipeline(tiny_model) -> StaticPipeline:
    rng = np.random.default_rng(0)
    return StaticPipeline(tiny_model, [(rng.normal(size=(2, tiny_model.dim)), rng.normal(size=2))],
                          labels=["cat", "dog"], multilabel=True)


@pytest.fixture
def saved(pipeline, tmp_path):
    return pipeline.save_pretrained(tmp_path / "classifier")


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("normalize", "false", "normalize must be True or False"),  # was read as True
    ("multilabel", 0, "multilabel must be True or False"),
    ("threshold", float("nan"), "threshold must be between 0 and 1"),  # no label ever passed
    ("threshold", 1.0, "threshold must be between 0 and 1"),
    ("threshold", "0.5", "threshold must be a number"),
])
def test_head_settings_of_the_wrong_type_or_range_name_the_file(saved, key, value, problem):
    config = json.loads((saved / HEAD_CONFIG_FILE).read_text())
    config[key] = value
    (saved / HEAD_CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=problem) as error:
        StaticPipeline.from_pretrained(saved)
    assert str(saved / HEAD_CONFIG_FILE) in str(error.value)


@pytest.mark.parametrize("tensor", ["layers.0.weight", "layers.0.bias"])
def test_non_finite_head_weights_name_the_file(saved, tensor):
    tensors = load_file(str(saved / HEAD_FILE))
    tensors[tensor].reshape(-1)[0] = np.nan  # every probability was NaN and every prediction the first label
    save_file(tensors, str(saved / HEAD_FILE))
    with pytest.raises(ValueError, match="NaN or infinite") as error:
        StaticPipeline.from_pretrained(saved)
    assert str(saved / HEAD_FILE) in str(error.value)


def test_arguments_are_checked_as_strictly(pipeline, tiny_model):
    layers = pipeline.layers
    with pytest.raises(TypeError, match="normalize must be True or False"):
        StaticPipeline(tiny_model, layers, labels=["cat", "dog"], normalize="no")
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        StaticPipeline(tiny_model, layers, labels=["cat", "dog"], multilabel=True, threshold=0.0)
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        pipeline.predict(["the cat"], threshold=float("nan"))
    assert pipeline.predict(["the cat"], threshold=0.5) == pipeline.predict(["the cat"])


def test_a_good_folder_still_loads(saved, pipeline, tmp_path):
    copy = shutil.copytree(saved, tmp_path / "copy")
    assert StaticPipeline.from_pretrained(copy).predict(["the cat", "a dog"]) == pipeline.predict(["the cat", "a dog"])


# --------------------------------------------------------------------------- hub ids: revision and token


def test_a_pipeline_hub_id_passes_revision_and_token_to_every_hub_call(pipeline, saved, tmp_path, fake_hub):
    """StaticModel.from_pretrained took revision= and token=; StaticPipeline.from_pretrained did not (a TypeError), so
    a private, gated or pinned classifier repository could not be loaded."""
    (saved / "onnx").mkdir()
    (saved / "onnx" / "model.onnx").write_bytes(b"not fetched")
    fake_hub.repos["someorg/intent"] = saved
    texts = ["the cat", "a dog"]
    loaded = StaticPipeline.from_pretrained("someorg/intent", revision="v1.0", token="hf_secret")
    assert loaded.predict(texts) == pipeline.predict(texts)
    assert len(fake_hub.calls) >= 2  # the cache first, then a download
    assert all(c["revision"] == "v1.0" and c["token"] == "hf_secret" for c in fake_hub.calls), fake_hub.calls
    assert {HEAD_FILE, HEAD_CONFIG_FILE, "model.safetensors"} <= set(fake_hub.fetched)  # the head comes with the model
    assert "onnx/model.onnx" not in fake_hub.fetched
    calls = len(fake_hub.calls)  # a second load reads the cached snapshot of that revision: no download
    assert StaticPipeline.from_pretrained("someorg/intent", revision="v1.0", token="hf_secret").predict(texts) == (
        pipeline.predict(texts))
    assert fake_hub.calls[calls:] == [
        {"repo_id": "someorg/intent", "local_files_only": True, "allow_patterns": ["*.json"], "revision": "v1.0",
         "token": "hf_secret"}]


def test_a_local_pipeline_folder_ignores_revision_and_token(pipeline, tmp_path, fake_hub):
    pipeline.save_pretrained(tmp_path / "someorg" / "intent")
    for name in ("someorg/intent", tmp_path / "someorg" / "intent"):
        loaded = StaticPipeline.from_pretrained(name, revision="v1.0", token="hf_secret")
        assert loaded.predict(["the cat"]) == pipeline.predict(["the cat"])
    assert fake_hub.calls == []


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"revision": 3}, TypeError, "revision must be a str"),
    ({"revision": ""}, ValueError, "revision must be a branch, tag or commit"),
    ({"token": ["hf_secret"]}, TypeError, "token must be a str, a bool or None, not list"),
])
def test_a_pipelines_revision_and_token_are_checked_before_the_hub_is_asked(kwargs, error, match, fake_hub):
    with pytest.raises(error, match=match) as info:
        StaticPipeline.from_pretrained("someorg/intent", **kwargs)
    assert "hf_secret" not in str(info.value)
    assert fake_hub.calls == []


def test_a_cached_snapshot_without_the_head_files_fetches_them(pipeline, saved, tmp_path, fake_hub, monkeypatch):
    """Another tool's download (Model2Vec fetches model.safetensors, config.json and tokenizer.json by name) leaves a
    cached snapshot without a pipeline's head: it was read from the cache and failed with the head file missing,
    though online it could be fetched. Offline it is still the missing-file error."""
    import shutil

    fake_hub.repos["someorg/intent"] = saved
    snapshot = tmp_path / "fake-hub-cache" / "someorg--intent" / "main"
    snapshot.mkdir(parents=True)
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        shutil.copy(saved / name, snapshot / name)
    real_call = type(fake_hub).__call__

    def offline(self, repo_id, **kwargs):  # noqa: ANN001, ANN003, ANN202 (a download fails, as offline)
        if not kwargs.get("local_files_only"):
            raise OSError("offline")
        return real_call(self, repo_id, **kwargs)

    monkeypatch.setattr(type(fake_hub), "__call__", offline)
    with pytest.raises(FileNotFoundError, match=HEAD_CONFIG_FILE):
        StaticPipeline.from_pretrained("someorg/intent")
    monkeypatch.setattr(type(fake_hub), "__call__", real_call)  # online again
    loaded = StaticPipeline.from_pretrained("someorg/intent")
    assert loaded.predict(["the cat", "a dog"]) == pipeline.predict(["the cat", "a dog"])
    assert {HEAD_FILE, HEAD_CONFIG_FILE} <= set(fake_hub.fetched)
