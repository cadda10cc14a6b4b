"""A distilled model records the revision of its teacher (config.json ``teacher_revision``): the commit of the hub
snapshot it was read from, else the ``--revision`` given for a hub id; nothing for a local folder. ``distill compare``
and ``refine`` read the teacher named in config.json, and without the revision may load another version of it.

The hub is a real hub cache layout (``models--org--name/refs/main``, ``snapshots/COMMIT``) read offline by the real
``huggingface_hub.snapshot_download``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distill import distill
from distill.__main__ import main
from static_model import StaticModel

HUB_ID = "someone/tiny-teacher"
COMMIT_MAIN = "a" * 40
COMMIT_OLD = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(teacher_dir, tmp_path, monkeypatch) -> Path:
    """A hub cache holding ``HUB_ID`` at two commits, ``main`` pointing at ``COMMIT_MAIN``, read offline."""
    import huggingface_hub.constants

    root = tmp_path / "hub"
    repo = root / f"models--{HUB_ID.replace('/', '--')}"
    for commit in (COMMIT_MAIN, COMMIT_OLD):
        shutil.copytree(teacher_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT_MAIN)
    (repo / "refs" / "v1").write_text(COMMIT_OLD)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def _cli(argv: list[str], capsys) -> StaticModel:
    code = main([*argv, "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    return StaticModel.from_pretrained(argv[argv.index("--output") + 1])


def test_a_hub_id_from_the_cache_records_the_snapshot_commit(hub_cache, tmp_path, capsys):
    api = distill(HUB_ID, show_progress_bar=False)
    assert api.config["teacher_revision"] == COMMIT_MAIN
    cli = _cli([HUB_ID, "--output", str(tmp_path / "out")], capsys)
    assert cli.config["teacher_revision"] == COMMIT_MAIN
    assert cli.config["teacher"] == HUB_ID


@pytest.mark.parametrize(("revision", "commit"), [("v1", COMMIT_OLD), ("main", COMMIT_MAIN),
                                                  (COMMIT_OLD, COMMIT_OLD)])
def test_a_revision_records_the_commit_it_resolved_to(hub_cache, tmp_path, capsys, revision, commit):
    model = _cli([HUB_ID, "--revision", revision, "--output", str(tmp_path / "out")], capsys)
    assert model.config["teacher_revision"] == commit
    assert distill(HUB_ID, revision=revision, show_progress_bar=False).config["teacher_revision"] == commit


def test_a_revision_whose_commit_is_unknown_is_recorded_as_given(teacher_dir, tmp_path, capsys, monkeypatch):
    """A snapshot folder that is not named by a commit (not the hub cache's layout): the revision string given."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kwargs: str(teacher_dir))
    model = _cli([HUB_ID, "--revision", "v2", "--output", str(tmp_path / "out")], capsys)
    assert model.config["teacher_revision"] == "v2"


def test_a_local_folder_records_no_revision_even_with_one_given(teacher_dir, tmp_path, capsys):
    plain = _cli([str(teacher_dir), "--output", str(tmp_path / "a")], capsys)
    ignored = _cli([str(teacher_dir), "--revision", "v1", "--output", str(tmp_path / "b")], capsys)
    assert "teacher_revision" not in plain.config and "teacher_revision" not in ignored.config


def test_the_revision_is_the_only_key_added(hub_cache, teacher_dir, tmp_path, capsys):
    local = _cli([str(teacher_dir), "--output", str(tmp_path / "local"), "--teacher-name", HUB_ID], capsys)
    hub = _cli([HUB_ID, "--output", str(tmp_path / "from-hub")], capsys)
    assert set(hub.config) - set(local.config) == {"teacher_revision"}
    assert set(local.config) <= set(hub.config)
    for key in ("teacher", "tokenizer_name", "apply_pca", "pooling", "normalize", "sif_coefficient"):
        assert hub.config[key] == local.config[key], key
    assert set(hub.config["distill"]) == set(local.config["distill"])


def test_a_snapshot_folder_given_as_a_path_records_its_commit(hub_cache, tmp_path, capsys):
    snapshot = hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT_OLD
    model = _cli([str(snapshot), "--output", str(tmp_path / "out")], capsys)
    assert model.config["teacher_revision"] == COMMIT_OLD and model.config["teacher"] == HUB_ID


def test_the_revision_survives_refine_and_vocabulary_clusters(hub_cache, tmp_path, capsys):
    from helpers.teachers import make_corpus

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(make_corpus(200)) + "\n", encoding="utf-8")
    model = _cli([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "out"), "--refine", str(corpus),
                  "--refine-epochs", "1", "--vocabulary-clusters", "20", "--refine-cache-dir", str(tmp_path / "c")],
                 capsys)
    assert model.config["teacher_revision"] == COMMIT_OLD
    assert "refine" in model.config and "vocabulary_clusters" in model.config


def test_recorded_revision_rules(tmp_path):
    from distill.resolve import hub_snapshot_commit, recorded_revision

    snap = tmp_path / "models--org--name" / "snapshots" / COMMIT_OLD
    (snap / "sub").mkdir(parents=True)
    odd = tmp_path / "models--org--name" / "snapshots" / "not-a-commit"
    odd.mkdir()
    assert hub_snapshot_commit(snap) == COMMIT_OLD and hub_snapshot_commit(snap / "sub") == COMMIT_OLD
    assert hub_snapshot_commit(odd) is None and hub_snapshot_commit(tmp_path) is None
    assert recorded_revision("org/name", snap, "main") == COMMIT_OLD
    assert recorded_revision("org/name", odd, "main") == "main"
    assert recorded_revision("org/name", odd, None) is None
    assert recorded_revision(str(tmp_path), tmp_path, "main") is None  # a local folder ignores the revision


def test_a_revision_with_a_teacher_object_is_refused(teacher_dir):
    from distill.teacher import Teacher

    with pytest.raises(ValueError, match="revision applies to a teacher given by name"):
        distill(Teacher(teacher_dir), revision="v1", show_progress_bar=False)


def test_refine_without_a_teacher_reads_the_recorded_revision_not_the_latest(hub_cache, tmp_path, capsys):
    """``python -m distill.refine MODEL`` loads the teacher the config names: at its recorded commit, not at main
    (here main is a broken snapshot, so reading it fails)."""
    from helpers.teachers import make_corpus

    from distill.refine.cli import main as refine_main

    base = _cli([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "base")], capsys)
    assert base.config["teacher_revision"] == COMMIT_OLD
    (hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT_MAIN / "model.safetensors").unlink()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(make_corpus(120)) + "\n", encoding="utf-8")
    out = tmp_path / "refined"
    code = refine_main([str(tmp_path / "base"), "--corpus", str(corpus), "--output", str(out), "--cache-dir",
                        str(tmp_path / "cache"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    refined = StaticModel.from_pretrained(out)
    assert refined.config["teacher_revision"] == COMMIT_OLD and "refine" in refined.config


def test_refine_with_another_teacher_records_that_teachers_revision_not_the_bases(hub_cache, teacher_dir, tmp_path,
                                                                                 capsys):
    """A base distilled at commit v1, refined against a teacher given explicitly: the refined model kept the base's
    teacher_revision, and compare / refine of it then loaded v1, not the teacher it was refined on."""
    from helpers.teachers import make_corpus

    from distill.refine import RefineConfig, refine

    base = _cli([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "base")], capsys)
    corpus = make_corpus(120)
    cfg, cache = RefineConfig(), tmp_path / "cache"
    local = refine(base, str(teacher_dir), corpus, cfg, cache_dir=cache, show_progress_bar=False)
    assert "teacher_revision" not in local.config  # a local folder: no commit known
    latest = refine(base, HUB_ID, corpus, cfg, cache_dir=cache, show_progress_bar=False)
    assert latest.config["teacher_revision"] == COMMIT_MAIN  # the hub id read at main, not the base's v1
    renamed = distill(HUB_ID, teacher_name="elsewhere/renamed", show_progress_bar=False)
    refined = refine(renamed, HUB_ID, corpus, cfg, cache_dir=cache, show_progress_bar=False)
    assert refined.config["teacher"] == "elsewhere/renamed"  # never paired with this repository's commit
    assert "teacher_revision" not in refined.config


def test_compare_without_a_teacher_reads_the_recorded_revision_not_the_latest(hub_cache, tmp_path, capsys):
    """``python -m distill compare MODEL`` loaded the teacher the config names at the hub's latest (here a broken
    snapshot); it now loads the commit the model was distilled from."""
    import json

    from distill.comparison import main as compare_main

    _cli([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "base")], capsys)
    (hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT_MAIN / "model.safetensors").unlink()
    assert compare_main([str(tmp_path / "base"), "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["teacher"] == HUB_ID and result["spearman"] is not None
    (hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT_OLD / "model.safetensors").unlink()
    assert compare_main([str(tmp_path / "base")]) != 0  # that commit is gone: an error, not another version
    assert COMMIT_OLD in capsys.readouterr().err


def test_another_teacher_name_gets_no_revision_of_the_repository_read(hub_cache, tmp_path, capsys):
    """--teacher-name names another repository than the snapshot read: its commit would be paired with that name."""
    snapshot = hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / COMMIT_OLD
    other = _cli([str(snapshot), "--output", str(tmp_path / "other"), "--teacher-name", "elsewhere/renamed"], capsys)
    assert other.config["teacher"] == "elsewhere/renamed" and "teacher_revision" not in other.config
    same = _cli([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "same"), "--teacher-name", HUB_ID], capsys)
    assert same.config["teacher_revision"] == COMMIT_OLD


def test_the_summary_says_the_commit_and_never_claims_a_revision_a_local_folder_ignored(hub_cache, teacher_dir,
                                                                                     tmp_path, capsys):
    """A local folder with --revision v1 was summed up as 'given as FOLDER at revision v1'; it is read as it is."""
    assert main([str(teacher_dir), "--revision", "v1", "--output", str(tmp_path / "a"), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  teacher "))
    assert line.endswith(f"(given as {teacher_dir}; --revision v1 ignored: a local folder holds one version)"), line
    assert main([HUB_ID, "--revision", "v1", "--output", str(tmp_path / "b"), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  teacher "))
    assert line.endswith(f"(given as {HUB_ID} at revision v1; hub commit {COMMIT_OLD})"), line
    assert main([HUB_ID, "--output", str(tmp_path / "c"), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  teacher "))
    assert line.endswith(f"(given as {HUB_ID}; hub commit {COMMIT_MAIN})"), line
    assert main([HUB_ID, "--revision", "v1", "--teacher-name", "elsewhere/renamed", "--output", str(tmp_path / "d"),
                 "--quiet"]) == 0  # was summed up as a local folder that ignored --revision
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  teacher "))
    assert line.endswith("at revision v1; no commit recorded: --teacher-name names another repository)"), line
