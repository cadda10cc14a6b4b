"""Saving never loses data (issue 20, items 1, 2 and 4): what a save may replace, where it writes, file modes."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from static_model import StaticModel, persistence, safe_read
from static_model.pipeline import StaticPipeline


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


@pytest.mark.parametrize("existed", [True, False])  # a model folder, or none yet, when the save started
def test_a_folder_filled_with_other_files_while_the_save_writes_is_not_replaced(tiny_model, tmp_path, monkeypatch,
                                                                                 existed):
    target = tmp_path / "m"
    if existed:
        tiny_model.save_pretrained(target)
    write = persistence.write_model_files

    def slow_write(folder, contents):  # a big model takes minutes: meanwhile someone puts their notes there
        write(folder, contents)
        target.mkdir(exist_ok=True)
        (target / "notes.txt").write_text("keep me")

    monkeypatch.setattr(persistence, "write_model_files", slow_write)
    with pytest.raises(FileExistsError, match=r"m is not empty and is not a model folder \(it holds notes.txt\)"):
        tiny_model.save_pretrained(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "keep me"  # was swapped out and deleted with the old folder
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no staging folder left behind


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


def test_numpy_values_in_the_config_and_labels_are_saved_as_json(tiny_table, wordpiece_tokenizer, tmp_path):
    """Settings computed with numpy (``np.int64``, ``np.float32``, arrays) used to fail the save at its very end."""
    config = {"teacher_dim": np.int64(384), "score": np.float32(0.5), "kept": np.arange(3)}
    model = StaticModel(tiny_table, wordpiece_tokenizer, config=config)
    model.save_pretrained(tmp_path / "m")
    loaded = StaticModel.from_pretrained(tmp_path / "m").config
    assert (loaded["teacher_dim"], loaded["score"], loaded["kept"]) == (384, 0.5, [0, 1, 2])
    layers = [(np.ones((3, model.dim)), np.arange(3.0))]
    pipeline = StaticPipeline(model, layers, labels=np.array([3, 5, 7]))  # e.g. np.unique(y)
    pipeline.save_pretrained(tmp_path / "p")
    assert StaticPipeline.from_pretrained(tmp_path / "p").labels == [3, 5, 7]


def test_a_config_value_json_cannot_hold_names_its_type_and_harms_nothing(tiny_table, wordpiece_tokenizer, tiny_model,
                                                                          tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    model = StaticModel(tiny_table, wordpiece_tokenizer, config={"seen": {"a", "b"}})
    with pytest.raises(TypeError, match=r"a value of type set \(.*\) cannot be written as JSON"):
        model.save_pretrained(tmp_path / "m", overwrite=True)
    assert StaticModel.from_pretrained(tmp_path / "m").config == tiny_model.config
    assert sorted(os.listdir(tmp_path)) == ["m"]


@pytest.fixture
def as_ordinary_user(monkeypatch):
    """Permissions as an ordinary user meets them (root may write anywhere): ``os.access`` follows the owner's bits."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    real = os.access

    def access(path, mode, **kwargs):
        if mode & os.W_OK and not os.stat(path).st_mode & stat.S_IWUSR:
            return False
        return real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("protected", ["the model folder", "its parent"])
def test_a_write_protected_folder_is_neither_replaced_nor_written_beside(tiny_model, tmp_path, as_ordinary_user,
                                                                          protected):
    """A ``chmod a-w`` model folder was swapped out anyway and its files, which could not be deleted, stayed behind
    in a hidden ``.m.tmp-*`` folder; a protected parent gave an error naming that hidden folder."""
    parent = tmp_path / "models"
    tiny_model.save_pretrained(parent / "m")
    folder = parent / "m" if protected == "the model folder" else parent
    before = sorted(os.listdir(parent))
    folder.chmod(0o555)
    try:
        problem = "is write-protected" if protected == "the model folder" else "no permission to write in"
        with pytest.raises(PermissionError, match=problem):
            tiny_model.quantize("int8").save_pretrained(parent / "m", overwrite=True)
    finally:
        folder.chmod(0o755)
    assert sorted(os.listdir(parent)) == before
    assert StaticModel.from_pretrained(parent / "m").dtype == "float32"


def _disk_full(*args, **kwargs):
    raise OSError("disk full")


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_failed_save_into_new_folders_removes_the_folders_it_made(tiny_model, tmp_path, monkeypatch, error):
    """A failed save left the parent folders it had made (here a/, a/b/, a/b/c/), empty, behind."""
    def fail(*args, **kwargs):
        raise error("disk full")

    monkeypatch.setattr(persistence, "write_text", fail)
    with pytest.raises(error, match="disk full"):
        tiny_model.save_pretrained(tmp_path / "a" / "b" / "c" / "model")
    assert os.listdir(tmp_path) == []


def test_a_save_goes_on_when_a_failed_save_beside_it_removes_their_new_parent(tiny_model, tmp_path, monkeypatch):
    """Two saves into new sibling folders: the one that made the parent fails and removes it (empty) just as the
    other is about to make its staging folder inside it; that one failed with FileNotFoundError."""
    from static_model import atomic

    clean_stale = atomic.clean_stale

    def other_save_failed(target):
        clean_stale(target)
        os.rmdir(target.parent)  # the failed save's cleanup: the parent it made, empty

    monkeypatch.setattr(atomic, "clean_stale", other_save_failed)
    tiny_model.save_pretrained(tmp_path / "new" / "b")
    assert (tmp_path / "new" / "b" / "config.json").is_file()


def test_a_failed_save_keeps_the_folders_that_were_there(tiny_model, tmp_path, monkeypatch):
    """Only the folders the failed save made are removed: never one that existed, empty or not, nor its files."""
    tiny_model.save_pretrained(tmp_path / "kept" / "m")
    (tmp_path / "kept" / "notes.txt").write_text("keep me")
    (tmp_path / "empty").mkdir()
    before = {p.relative_to(tmp_path): p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    monkeypatch.setattr(persistence, "write_text", _disk_full)
    for target in (tmp_path / "kept" / "new" / "deeper" / "m", tmp_path / "kept" / "m", tmp_path / "empty",
                   tmp_path / "empty" / "m"):
        with pytest.raises(OSError, match="disk full"):
            tiny_model.save_pretrained(target, overwrite=True)
    after = {p.relative_to(tmp_path): p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    assert after == before


def test_a_successful_save_into_new_folders_keeps_them(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "a" / "b" / "model")
    np.testing.assert_array_equal(StaticModel.from_pretrained(tmp_path / "a" / "b" / "model").embeddings,
                                  tiny_model.embeddings)
    assert os.listdir(tmp_path / "a") == ["b"] and os.listdir(tmp_path / "a" / "b") == ["model"]


def test_a_failed_onnx_export_into_new_folders_removes_the_folders_it_made(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from static_model import onnx as onnx_export

    monkeypatch.setattr(onnx_export, "_write_file", _disk_full)
    with pytest.raises(OSError, match="disk full"):
        onnx_export.export_onnx(tiny_model, tmp_path / "a" / "b" / "export")
    assert os.listdir(tmp_path) == []
