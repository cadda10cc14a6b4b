"""The model card: teacher, parameters, size, loading instructions, and the pooling note for contrast pooling."""

from __future__ import annotations

from static_model.model_card import render_model_card


def test_card_names_teacher_parameters_and_loaders():
    config = {"teacher": "sentence-transformers/all-MiniLM-L6-v2", "dim": 256, "vocab_size": 29524, "dtype": "float16",
              "normalize": True, "max_length": 512, "contrast": 1.0, "producer": {"version": "0.1.0"},
              "distill": {"parameters": {"pca_dims": 256, "sif_coefficient": 1e-4,
                                         "token_frequencies": "zipf-id-rank", "remove_common_component": True}},
              "scores": {"STS-B (Spearman x 100)": 77.1}}
    card = render_model_card(config, size_bytes=15 * 2**20)
    assert card.startswith("---\nlibrary_name: static-embeddings")
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card
    for fact in ("| dimensions | 256 |", "| vocabulary | 29,524 tokens |", "| size | 15.0 MiB |",
                 "| pooling | contrast 1 |", "| PCA dims | 256 |", "| SIF common component | removed |",
                 "| STS-B (Spearman x 100) | 77.10 |"):
        assert fact in card
    assert "model2vec.StaticModel.from_pretrained" in card and "SentenceTransformer" in card
    assert "ignore that key and average plainly" in card


def test_card_for_a_bare_model_says_only_what_it_knows():
    card = render_model_card({"dim": 8, "vocab_size": 50, "contrast": 0.0})
    assert "# Static embedding model\n" in card and "| teacher |" not in card and "base_model" not in card
    assert "| pooling | plain mean |" in card and "average plainly" not in card and "## Scores" not in card
    assert "SIF common component" not in card  # not recorded: not said
    assert "base_model" not in render_model_card({"teacher": "all-MiniLM-L6-v2"})  # not a hub id: no link


def test_every_saved_folder_carries_its_card(tiny_model, tmp_path):
    tiny_model.contrast = 1.0
    tiny_model.save_pretrained(tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "| pooling | contrast 1 |" in card and "average plainly" in card
    assert f"| dimensions | {tiny_model.dim} |" in card
    tiny_model.save_pretrained(tmp_path / "m", overwrite=True)  # a folder with its card is still a model folder
