"""Saving never loses data (issue 20, items 1, 2 and 4): what a save may replace, where it writes, file modes."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from static_model import StaticModel, safe_read


def test_a_folder_that_is_not_a_model_is_never_emptied(tiny_model, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "important.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError,
                           match=r"d is not empty and is not a model folder \(it holds important.txt\)"):
            tiny_model.save_pretrained(folder, overwrite=overwrite)
    assert (folder / "important.txt").read_text() == "keep me" and os.listdir(folder) == ["important.txt"]


def test_a_model_folder_with_foreign_files_is_never_replaced(tiny_model, tmp_path):
    """A clone of a model repository (a .git folder, notes) is not ours to delete."""
    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / ".git").mkdir()
    with pytest.raises(FileExistsError, match=r"it holds \.git"):
        tiny_model.save_pretrained(tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / ".git").is_dir()


def test_replacing_a_model_is_explicit(tiny_model, tiny_table, wordpiece_tokenizer, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    other = StaticModel(tiny_table * 2, wordpiece_tokenizer)
    with pytest.raises(FileExistsError, match="already holds a model; pass overwrite=True"):
        other.save_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(StaticModel.from_pretrained(tmp_path / "m").embeddings, tiny_table)
    other.save_pretrained(tmp_path / "m", overwrite=True)
    np.testing.assert_array_equal(StaticModel.from_pretrained(tmp_path / "m").embeddings, tiny_table * 2)
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        other.save_pretrained(tmp_path / "m", overwrite="yes")


def test_an_empty_folder_is_written(tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    tiny_model.save_pretrained(tmp_path / "empty")
    assert StaticModel.from_pretrained(tmp_path / "empty").vocab_size == tiny_model.vocab_size


def test_the_current_folder_gives_a_clear_error(tiny_model, tmp_path, monkeypatch):
    (tmp_path / "inner").mkdir()
    monkeypatch.chdir(tmp_path / "inner")
    for path in (".", "..", str(tmp_path / "inner")):
        with pytest.raises(ValueError, match="is the current folder .* or holds it"):
            tiny_model.save_pretrained(path)
    tiny_model.save_pretrained("./m")  # a new folder inside the current one is fine
    assert StaticModel.from_pretrained("m").vocab_size == tiny_model.vocab_size


def test_tilde_is_the_home_folder(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    tiny_model.save_pretrained("~/x")
    assert (tmp_path / "home" / "x" / "model.safetensors").is_file() and not (tmp_path / "~").exists()
    assert StaticModel.from_pretrained("~/x").vocab_size == tiny_model.vocab_size


def test_saving_through_a_symlinked_folder_keeps_the_link(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    tiny_model.quantize("int8").save_pretrained(tmp_path / "link", overwrite=True)
    assert (tmp_path / "link").is_symlink()
    assert StaticModel.from_pretrained(tmp_path / "real").dtype == "int8"


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def _modes(folder):
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def test_every_file_gets_the_umasks_mode(tiny_model, tmp_path, umask_027):
    tiny_model.save_pretrained(tmp_path / "m")
    modes = _modes(tmp_path / "m")
    assert modes["model.safetensors"] == umask_027  # safetensors' save_file alone makes it 0600
    assert set(modes.values()) == {umask_027}, modes


def test_the_classifier_head_gets_the_umasks_mode(tiny_model, tmp_path, umask_027):
    from static_model.pipeline import StaticPipeline

    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(3, tiny_model.dim)), rng.normal(size=3))]
    pipeline = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"])
    pipeline.save_pretrained(tmp_path / "p")
    modes = _modes(tmp_path / "p")
    assert modes["head.safetensors"] == umask_027 and set(modes.values()) == {umask_027}, modes
    reloaded = StaticPipeline.from_pretrained(tmp_path / "p")
    assert reloaded.predict(["cat"]).tolist() == pipeline.predict(["cat"]).tolist()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a model folder"):
        pipeline.save_pretrained(tmp_path / "notes", overwrite=True)


def test_an_unreadable_file_says_permission_denied(tiny_model, tmp_path, monkeypatch):
    """Tests run as root, which reads any file whatever its mode: the refusal of the OS is simulated."""
    tiny_model.save_pretrained(tmp_path / "m")
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        if str(path).endswith("model.safetensors"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(safe_read.os, "open", deny)
    with pytest.raises(PermissionError, match=r"model.safetensors cannot be read: permission denied \(mode -rw"):
        StaticModel.from_pretrained(tmp_path / "m")


def test_missing_and_corrupt_weights_say_so(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ValueError, match=r"model.safetensors is corrupt or not a safetensors file: its header claims"):
        StaticModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors is missing"):
        StaticModel.from_pretrained(tmp_path / "m")
