"""The ablation's shared settings (--pca-dims, --contrast, --max-length): every variant gets them unless it changes
them itself, a saved variant built with other settings is rebuilt, bad values are one usage error."""

from __future__ import annotations

import json

import pytest
from helpers.teachers import make_wordpiece_teacher

from benchmarks.__main__ import build_parser, main
from benchmarks.studies.ablation import Variant, build_variants, reusable_folder, settings_description
from distill.assemble import DEFAULT_CONTRAST, DEFAULT_MAX_LENGTH
from distill.pca import DEFAULT_PCA_DIMS
from static_model import StaticModel


def test_defaults_are_distills_and_old_settings_parse():
    args = build_parser().parse_args(["ablation", "--teacher", "t"])
    assert (args.pca_dims, args.contrast, args.max_length) == (DEFAULT_PCA_DIMS, DEFAULT_CONTRAST,
                                                                DEFAULT_MAX_LENGTH)
    args = build_parser().parse_args(["ablation", "--teacher", "t", "--pca-dims", "256", "--contrast", "1",
                                      "--max-length", "254"])
    assert (args.pca_dims, args.contrast, args.max_length) == (256, 1.0, 254)
    assert build_parser().parse_args(["ablation", "--teacher", "t", "--pca-dims", "none",
                                      "--max-length", "none"]).max_length is None
    assert build_parser().parse_args(["ablation", "--teacher", "t", "--keep-common-component"]).keep_common_component
    assert build_parser().parse_args(["ablation", "--teacher", "t", "--drop-components", "0"]).drop_components == 0


def test_default_row_names_the_settings():
    assert settings_description({"pca_dims": 256, "contrast": 1.0, "max_length": DEFAULT_MAX_LENGTH,
                                 "remove_common_component": False, "drop_components": 0}) == (
        "PCA 256, SIF (Zipf), output vectors, mean pooling, contrast pooling")
    text = settings_description({"pca_dims": 256})
    assert "common component removed" in text and "top dims/100 principal components dropped" in text
    text = settings_description({"pca_dims": "auto", "contrast": 0.0, "max_length": 254})
    assert text.startswith("PCA to all teacher dims") and "plain mean" in text and text.endswith("254 tokens")


@pytest.mark.parametrize("option, value", [("--contrast", "-1"), ("--max-length", "0"), ("--pca-dims", "0")])
def test_bad_setting_is_one_usage_error(tmp_path, capsys, option, value):
    assert main(["ablation", "--teacher", "t", option, value, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and option in err[0]


def test_settings_reach_every_variant_and_a_changed_setting_rebuilds(tmp_path):
    teacher = str(make_wordpiece_teacher(tmp_path / "teacher"))
    vs = [Variant("default", "default", "d"), Variant("plain_mean", "plain mean", "c0", {"contrast": 0.0}),
          Variant("no_pca", "− PCA", "none", {"pca_dims": None})]
    root = tmp_path / "variants"
    old = {"pca_dims": 8, "contrast": 1.0, "max_length": 20}
    folders, seconds = build_variants(teacher, vs, root, progress=False, settings=old)
    models = {v.key: StaticModel.from_pretrained(f) for v, f in zip(vs, folders)}
    assert models["default"].dim == 8 and models["default"].contrast == 1.0
    assert models["plain_mean"].dim == 8 and models["plain_mean"].contrast == 0.0  # the variant's own wins
    assert models["no_pca"].dim == 32 and models["no_pca"].contrast == 1.0
    assert all(m.max_length == 20 for m in models.values())
    assert json.loads((folders[0] / "config.json").read_text())["max_length"] == 20
    assert all(s is not None for s in seconds.values())

    _, again = build_variants(teacher, vs, root, progress=False, settings=old)
    assert all(s is None for s in again.values())  # same settings: reused

    new = {**old, "contrast": 0.0, "max_length": None}
    _, rebuilt = build_variants(teacher, vs, root, progress=False, settings=new)
    assert rebuilt["default"] is not None and rebuilt["no_pca"] is not None
    assert rebuilt["plain_mean"] is not None  # its contrast matches, but not its token limit
    model = StaticModel.from_pretrained(folders[0])
    assert model.contrast == 0.0 and model.max_length is None
    assert reusable_folder(folders[0], {**new, **vs[0].kwargs})
    assert not reusable_folder(folders[0], old) and not reusable_folder(tmp_path / "missing", old)


def test_common_component_setting_reaches_the_variants_and_old_folders_count_as_kept(tmp_path):
    teacher = str(make_wordpiece_teacher(tmp_path / "teacher"))
    vs = [Variant("default", "default", "d"),
          Variant("common_component_kept", "common component kept", "k", {"remove_common_component": False})]
    settings = {"pca_dims": 8, "contrast": 0.0, "max_length": 20, "remove_common_component": True}
    folders, _ = build_variants(teacher, vs, tmp_path / "v", progress=False, settings=settings)
    recorded = [json.loads((f / "config.json").read_text())["distill"]["parameters"]["remove_common_component"]
                for f in folders]
    assert recorded == [True, False]
    assert reusable_folder(folders[1], {**settings, "remove_common_component": False})
    assert not reusable_folder(folders[1], settings)
    # a folder written before the setting existed records nothing: it kept the component
    config_file = folders[1] / "config.json"
    config = json.loads(config_file.read_text())
    del config["distill"]["parameters"]["remove_common_component"]
    config_file.write_text(json.dumps(config))
    assert reusable_folder(folders[1], {**settings, "remove_common_component": False})
