"""Hub ids in ``StaticModel.from_pretrained`` (as in Model2Vec and sentence-transformers): the local hub cache is
read offline, a local path always wins, and a hub id that cannot be had is an error saying why and what to pass.

The machine that runs these tests is offline, so the cache is built here in the layout huggingface_hub writes
(``models--org--name/refs/main`` naming a commit, ``snapshots/<commit>/`` linking to ``blobs/``), and each process
runs with ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` pointing at it: nothing can reach the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from static_model import StaticModel, hub

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"

_LOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from static_model import StaticModel
try:
    model = StaticModel.from_pretrained(sys.argv[2])
except FileNotFoundError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"vectors": model.encode(["hello world", "the cat sat"]).tolist()}))
"""


def _hub_cache(cache: Path, hub_id: str, folder: Path) -> None:
    """``folder``'s files as huggingface_hub caches a snapshot of ``hub_id``: blobs, and snapshot links to them."""
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    for i, file in enumerate(sorted(p for p in folder.rglob("*") if p.is_file())):
        blob = repo / "blobs" / f"blob{i}"
        blob.write_bytes(file.read_bytes())
        link = repo / "snapshots" / COMMIT / file.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def _load(name: str, cache: Path, cwd: Path) -> dict:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _LOAD, str(ROOT), name], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_hub_id_loads_from_the_local_hub_cache_offline(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "src")
    _hub_cache(tmp_path / "hub", "someorg/tiny-static", tmp_path / "src")
    out = _load("someorg/tiny-static", tmp_path / "hub", cwd=tmp_path)
    np.testing.assert_allclose(out["vectors"], tiny_model.encode(["hello world", "the cat sat"]), rtol=1e-6, atol=1e-7)


def test_a_hub_id_that_cannot_be_had_says_why_and_what_to_pass(tmp_path):
    (tmp_path / "hub").mkdir()
    out = _load("someorg/not-cached", tmp_path / "hub", cwd=tmp_path)
    message = out["error"]
    assert "'someorg/not-cached'" in message and "offline" in message and "HF_HUB_OFFLINE" in message
    assert "pass a local model folder" in message


def test_a_local_folder_wins_over_the_hub_id_it_looks_like(tiny_model, tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked for a folder that is here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    tiny_model.save_pretrained(tmp_path / "someorg" / "tiny-static")
    monkeypatch.chdir(tmp_path)
    model = StaticModel.from_pretrained("someorg/tiny-static")
    np.testing.assert_array_equal(model.encode(["hello world"]), tiny_model.encode(["hello world"]))


@pytest.mark.parametrize("path", [Path("someorg/missing"), "./someorg/missing", "/no/such/folder", "~/no-such-folder",
                                  "a/b/c", "someorg/..", "someorg/missing/"])
def test_paths_are_never_looked_up_on_the_hub(path, tmp_path, monkeypatch):
    import huggingface_hub

    def no_hub(*args, **kwargs):
        raise AssertionError("a path was looked up on the hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="No model folder at"):
        StaticModel.from_pretrained(path)


@pytest.mark.parametrize(("name", "expected"), [
    ("org/name", True), ("name", True), ("minishlab/potion-base-8M", True), ("a.b_c-d/e.f", True),
    ("./x", False), ("/x", False), ("~/x", False), ("a/b/c", False), ("org/..", False), ("", False),
    ("-x/y", False), ("org/na me", False), (None, False), (Path("org/name"), False),
])
def test_what_is_a_hub_id(name, expected):
    assert hub.is_hub_id(name) is expected


_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.quality.encoders import SpecError, check_spec, load_encoder
from distill.cli_checks import UsageError, check_model_folder
out = {}
for name in sys.argv[2:]:
    try:
        out[name] = {"folder": str(check_model_folder(name, "MODEL"))}
    except UsageError as exc:
        out[name] = {"usage_error": str(exc)}
    try:
        check_spec("static:" + name)
        out[name]["vectors"] = load_encoder("static:" + name).encode(["hello world"]).tolist()
    except SpecError as exc:
        out[name]["spec_error"] = str(exc)
print(json.dumps(out))
"""


def test_the_command_lines_take_a_hub_id_as_from_pretrained_does(tiny_model, tmp_path):
    """``python -m distill.compare MODEL``, ``python -m distill.refine MODEL`` (both check with
    ``check_model_folder``) and the benchmarks' ``static:`` spec read a cached hub id, and name one that is not."""
    tiny_model.save_pretrained(tmp_path / "src")
    _hub_cache(tmp_path / "hub", "someorg/tiny-static", tmp_path / "src")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _CHECK, str(ROOT), "someorg/tiny-static", "someorg/not-cached"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    cached, missing = out["someorg/tiny-static"], out["someorg/not-cached"]
    assert Path(cached["folder"]).parent.parent.name == "models--someorg--tiny-static"
    np.testing.assert_allclose(cached["vectors"], tiny_model.encode(["hello world"]), rtol=1e-6, atol=1e-7)
    assert missing["usage_error"].startswith("MODEL someorg/not-cached: ") and "offline" in missing["usage_error"]
    assert missing["spec_error"].startswith("model spec 'static:someorg/not-cached': ")
    assert "HF_HUB_OFFLINE" in missing["spec_error"]


def test_revision_and_token_reach_every_hub_call(tiny_model, tmp_path, fake_hub):
    tiny_model.save_pretrained(tmp_path / "src")
    fake_hub.repos["someorg/tiny-static"] = tmp_path / "src"
    model = StaticModel.from_pretrained("someorg/tiny-static", revision="v1.0", token="hf_secret")
    np.testing.assert_array_equal(model.encode(["hello world"]), tiny_model.encode(["hello world"]))
    assert len(fake_hub.calls) >= 2  # the cache first, then a download
    assert all(call["revision"] == "v1.0" and call["token"] == "hf_secret" for call in fake_hub.calls), fake_hub.calls
    assert (tmp_path / "fake-hub-cache" / "someorg--tiny-static" / "v1.0" / "model.safetensors").is_file()
    calls = len(fake_hub.calls)  # a second load reads the cached snapshot of that revision: no download
    StaticModel.from_pretrained("someorg/tiny-static", revision="v1.0", token="hf_secret")
    assert [c["local_files_only"] for c in fake_hub.calls[calls:]] == [True]


def test_a_local_folder_ignores_revision_and_token_as_sentence_transformers_does(tiny_model, tmp_path, fake_hub):
    tiny_model.save_pretrained(tmp_path / "someorg" / "tiny-static")
    for name in ("someorg/tiny-static", tmp_path / "someorg" / "tiny-static"):
        model = StaticModel.from_pretrained(name, revision="v1.0", token="hf_secret")
        np.testing.assert_array_equal(model.encode(["hello world"]), tiny_model.encode(["hello world"]))
    assert fake_hub.calls == []


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"revision": 3}, TypeError, "revision must be a str"),
    ({"revision": ""}, ValueError, "revision must be a branch, tag or commit"),
    ({"token": ["hf_secret"]}, TypeError, "token must be a str, a bool or None, not list"),
    ({"token": " "}, ValueError, "token must be a Hugging Face access token"),
])
def test_revision_and_token_are_checked_before_the_hub_is_asked(kwargs, error, match, tmp_path, fake_hub):
    with pytest.raises(error, match=match) as info:
        StaticModel.from_pretrained("someorg/tiny-static", **kwargs)
    assert "hf_secret" not in str(info.value)  # a token is never shown
    assert fake_hub.calls == []


def _teacher_repo(folder: Path, *, sentence_transformers: bool) -> Path:
    """A transformer's files as its hub repository holds them: JSON configs, a tokenizer and weights."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8, "num_hidden_layers": 1}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    save_file({"embeddings.word_embeddings.weight": np.zeros((4, 8), dtype=np.float32)},
              str(folder / "model.safetensors"))
    if sentence_transformers:
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    return folder


@pytest.mark.parametrize("sentence_transformers", [True, False])
def test_a_teacher_hub_id_is_refused_before_its_weights_are_downloaded(sentence_transformers, tmp_path, fake_hub):
    fake_hub.repos["someorg/teacher"] = _teacher_repo(tmp_path / "teacher", sentence_transformers=sentence_transformers)
    with pytest.raises(ValueError, match="distill it first") as info:
        StaticModel.from_pretrained("someorg/teacher", revision="v2")
    message = str(info.value)
    assert "'someorg/teacher' at revision 'v2'" in message and "python -m distill someorg/teacher" in message
    assert isinstance(info.value, hub.NotAStaticModelError) and isinstance(info.value, FileNotFoundError)
    assert fake_hub.fetched and all(name.endswith(".json") for name in fake_hub.fetched), fake_hub.fetched
    assert all(c["allow_patterns"] == ["*.json"] for c in fake_hub.calls if not c["local_files_only"]), fake_hub.calls
    # asked again: the JSON files in the cache decide it, and nothing more is downloaded
    calls = len(fake_hub.calls)
    with pytest.raises(ValueError, match="distill it first"):
        StaticModel.from_pretrained("someorg/teacher", revision="v2")
    assert [c["local_files_only"] for c in fake_hub.calls[calls:]] == [True]


def test_only_a_transformer_is_taken_for_a_teacher(tiny_model, tmp_path):
    """Static models in every layout from_pretrained reads are never refused as teachers by their JSON files."""
    tiny_model.save_pretrained(tmp_path / "ours")
    model2vec = tmp_path / "model2vec"
    model2vec.mkdir()
    (model2vec / "config.json").write_text(json.dumps({"model_type": "model2vec", "architectures": ["StaticModel"],
                                                       "hidden_dim": 8, "normalize": True}))
    nested = tmp_path / "st-static"
    nested.mkdir()
    (nested / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "0_StaticEmbedding",
                                                      "type": "sentence_transformers.models.StaticEmbedding"}]))
    (nested / "config_sentence_transformers.json").write_text("{}")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "modules.json").write_text("not json")
    (odd / "config.json").write_text("[]")
    for folder in (tmp_path / "ours", model2vec, nested, odd, tmp_path):
        assert hub.transformer_evidence(folder) is None, folder
    st_teacher = _teacher_repo(tmp_path / "st-teacher", sentence_transformers=True)
    hf_teacher = _teacher_repo(tmp_path / "hf-teacher", sentence_transformers=False)
    assert hub.transformer_evidence(st_teacher) == "its modules.json lists sentence_transformers.models.Transformer"
    assert hub.transformer_evidence(hf_teacher) == "its config.json is a transformers config, model_type 'bert'"
