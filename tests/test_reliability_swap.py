"""A load that a save overtakes: the files of a folder are read one by one, and a save with ``overwrite=True`` may
swap a new version in between two of them. The result must be one version, never a mix of both."""

from __future__ import annotations

import numpy as np
import pytest

from static_model import StaticModel, atomic, persistence
from static_model import pipeline as pipeline_module
from static_model.pipeline import StaticPipeline


def save_during_first_call(monkeypatch, module, name: str, save) -> None:
    """Make ``module.name`` (a reader of one file) run ``save()`` before its first read, as a concurrent save would."""
    original = getattr(module, name)
    calls = []

    def reader(*args, **kwargs):
        if not calls:
            calls.append(1)
            save()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, reader)


@pytest.mark.parametrize("rename_pair", [False, True])  # the exchange, and the two renames used elsewhere
@pytest.mark.parametrize("new_dims", [8, 4])  # same shape (a silent mix) and another shape (a spurious error)
def test_a_load_overtaken_by_a_save_gives_one_version(tiny_table, wordpiece_tokenizer, tmp_path, monkeypatch, new_dims,
                                                      rename_pair):
    if rename_pair:
        monkeypatch.setenv("STATIC_MODEL_RENAME_PAIR", "1")
    old = StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True, "max_length": 4})
    new = StaticModel(tiny_table[:, :new_dims] * 2, wordpiece_tokenizer, config={"normalize": False, "max_length": 99})
    folder = tmp_path / "model"
    old.save_pretrained(folder)
    # config.json is read first, then the table: the save lands between them
    save_during_first_call(monkeypatch, persistence, "read_safetensors",
                           lambda: new.save_pretrained(folder, overwrite=True))
    loaded = StaticModel.from_pretrained(folder)
    np.testing.assert_array_equal(loaded.embeddings, new.embeddings)
    assert (loaded.normalize, loaded.max_length) == (False, 99)


def test_a_load_of_the_old_version_a_save_puts_back_meanwhile_reads_it_there(tiny_model, tmp_path, monkeypatch):
    """Between a save's two renames the target is missing and a load reads ``.NAME.old-*``; when the save (or the
    next one's recovery) renames that folder back before the load looks at it, the load reads the target."""
    target = tmp_path / "m"
    tiny_model.save_pretrained(target)
    old = tmp_path / ".m.old-1-0123456789"
    target.rename(old)
    find = atomic.readable_path
    calls = []

    def readable_path(path):
        found = find(path)
        if not calls:
            calls.append(1)
            old.rename(target)  # gone before the load reads it
        return found

    monkeypatch.setattr(atomic, "readable_path", readable_path)
    np.testing.assert_array_equal(StaticModel.from_pretrained(target).embeddings, tiny_model.embeddings)


def test_an_old_version_that_vanishes_while_listed_is_skipped(tmp_path, monkeypatch):
    """``readable_path`` looks at each ``.NAME.old-*`` twice (is it a folder, its time): one renamed in between is
    skipped, not a bare FileNotFoundError."""
    kept = tmp_path / ".m.old-1-aaaaaaaaaa"
    kept.mkdir()

    class Vanished(type(tmp_path)):
        def is_dir(self) -> bool:
            return True

        def stat(self, **kwargs):
            raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(atomic, "leftovers", lambda target, tag: [Vanished(tmp_path / ".m.old-1-bbbbbbbbbb"), kept])
    assert atomic.readable_path(tmp_path / "m") == kept


def test_a_folder_replaced_at_every_read_is_a_clear_error(tiny_model, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    original = persistence.read_safetensors

    def reader(*args, **kwargs):
        tiny_model.save_pretrained(folder, overwrite=True)
        return original(*args, **kwargs)

    monkeypatch.setattr(persistence, "read_safetensors", reader)
    with pytest.raises(ValueError, match="replaced by a save each of the 5 times"):
        StaticModel.from_pretrained(folder)


def test_a_pipeline_load_overtaken_by_a_save_gives_one_version(tiny_model, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)

    def classifier(labels: list[str]) -> StaticPipeline:
        layer = (rng.normal(size=(2, tiny_model.dim)), rng.normal(size=2))
        return StaticPipeline(tiny_model, [layer], labels=labels)

    old, new = classifier(["cat", "dog"]), classifier(["spam", "ham"])
    folder = old.save_pretrained(tmp_path / "classifier")
    # head_config.json is read first, then head.safetensors and the model: the save lands after the first
    save_during_first_call(monkeypatch, pipeline_module, "read_safetensors",
                           lambda: new.save_pretrained(folder, overwrite=True))
    loaded = StaticPipeline.from_pretrained(folder)
    assert loaded.labels == ["spam", "ham"]
    np.testing.assert_array_equal(loaded.layers[0][0], new.layers[0][0])


def test_a_path_of_the_wrong_type_names_the_argument(tmp_path):
    for load in (StaticModel.from_pretrained, StaticPipeline.from_pretrained):
        with pytest.raises(TypeError, match="path must be a str or os.PathLike, not NoneType"):
            load(None)
