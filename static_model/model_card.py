"""The ``README.md`` model card every saved folder carries: what the model is, how it was made, how to load it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from static_model.version import __version__

CARD_FILE = "README.md"


def render_model_card(config: Mapping[str, Any], *, name: str | None = None, size_bytes: int | None = None) -> str:
    """A Markdown model card (with Hugging Face front matter) from a model's ``config.json`` contents.

    It names the teacher and the distill parameters when the config records them, the table's size, the pooling
    (and that Model2Vec and sentence-transformers average plainly when ``contrast`` > 0), how to load the folder
    with this toolkit, Model2Vec and sentence-transformers, and the scores recorded under ``config["scores"]``.
    """
    distill = _mapping(config.get("distill"))
    parameters = _mapping(distill.get("parameters"))
    teacher = config.get("teacher") or distill.get("teacher")
    title = name or (f"Static embeddings distilled from {teacher}" if teacher else "Static embedding model")
    contrast = float(config.get("contrast", 0.0) or 0.0)
    front = ["---", "library_name: static-embeddings", "tags:", "- embeddings", "- static-embeddings",
             "- sentence-transformers", "- model2vec"]
    if isinstance(teacher, str) and "/" in teacher and not teacher.startswith((".", "/", "~")):
        front.append(f"base_model: {teacher}")
    front.append("---")
    lines = front + ["", f"# {title}", ""]
    lines.append(
        "A static embedding model: one vector per token, a text's vector is the average of its tokens' vectors"
        + (" (contrast-weighted, see below)" if contrast > 0 else "")
        + ". It runs on a CPU with numpy, without a transformer."
    )
    lines += ["", "| | |", "|---|---|"]
    facts = [
        ("teacher", teacher),
        ("dimensions", config.get("dim")),
        ("vocabulary", f"{config['vocab_size']:,} tokens" if isinstance(config.get("vocab_size"), int) else None),
        ("stored as", config.get("dtype")),
        ("vocabulary clusters", _clusters(config)),
        ("size", f"{size_bytes / 2**20:.1f} MiB" if size_bytes else None),
        ("normalized", config.get("normalize")),
        ("tokens read per text", config.get("max_length") or "all"),
        ("pooling", f"contrast {contrast:g}" if contrast > 0 else "plain mean"),
        ("PCA dims", parameters.get("pca_dims")),
        ("vocabulary pass pooling", parameters.get("pooling")),
        ("SIF coefficient", parameters.get("sif_coefficient")),
        ("token frequencies", parameters.get("token_frequencies")),
        ("SIF common component", _common_component(parameters.get("remove_common_component"))),
        ("made by", f"static-embeddings {config.get('producer', {}).get('version', __version__)}"
         if isinstance(config.get("producer"), Mapping) else None),
    ]
    lines += [f"| {key} | {value} |" for key, value in facts if value is not None and value != ""]
    lines += [
        "",
        "## Load it",
        "",
        "```python",
        "from static_model import StaticModel  # pip install static-embeddings",
        "",
        'model = StaticModel.from_pretrained("PATH")',
        'vectors = model.encode(["It\'s dangerous to go alone!", "Take this."])',
        "```",
        "",
        "The folder is in Model2Vec's layout, so `model2vec.StaticModel.from_pretrained(\"PATH\")` and "
        "`sentence_transformers.SentenceTransformer(\"PATH\")` load it too.",
    ]
    if _clusters(config):
        lines += [
            "",
            "**Vocabulary quantization.** The tokens share "
            f"{config['vocabulary_quantization']:,} rows: `model.safetensors` holds the rows (`embeddings`), each "
            "token's row (`mapping`) and each token's weight (`weights`, its original norm), and a token's vector is "
            "`weights[t] * embeddings[mapping[t]]`. Model2Vec (0.10) and sentence-transformers (checked with 6.3) "
            "apply the mapping; a reader that ignores `mapping` would index past the table.",
        ]
    if contrast > 0:
        lines += [
            "",
            f"**Pooling.** This model's config sets `contrast: {contrast:g}`: static-embeddings weights each token "
            f"row by `exp(-{contrast:g} * cos(row, the text's mean row))`. Model2Vec and sentence-transformers ignore "
            "that key and average plainly, so their vectors differ a little from this toolkit's (the plain mean is "
            "`model.encode(texts, contrast=0)` here).",
        ]
    scores = config.get("scores")
    if isinstance(scores, Mapping) and scores:
        lines += ["", "## Scores", "", "| benchmark | score |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" if isinstance(v, (int, float)) else f"| {k} | {v} |" for k, v in scores.items()]
    return "\n".join(lines) + "\n"


def _clusters(config: Mapping[str, Any]) -> str | None:
    """The vocabulary-quantization line: rows, and how they were made when ``vocabulary_clusters`` records it."""
    rows = config.get("vocabulary_quantization")
    if isinstance(rows, bool) or not isinstance(rows, int):
        return None
    record = config.get("vocabulary_clusters")
    how = ""
    if isinstance(record, Mapping) and isinstance(record.get("mean_cosine_to_centre"), (int, float)):
        how = (f"; k-means, seed {record.get('seed')}, mean cosine of a token to its centre "
               f"{record['mean_cosine_to_centre']:.3f}")
    return f"{rows:,} rows shared by the tokens (token → row mapping, per-token weights{how})"


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _common_component(removed: object) -> str | None:
    """What the card says of SIF's common component: ``None`` (no line) when the config does not record it."""
    if removed is None:
        return None
    return "removed" if removed else "kept"
