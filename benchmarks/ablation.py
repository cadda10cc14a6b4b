"""``python -m benchmarks ablation --teacher NAME``: re-measure the seed's ablation on our suite.

Variants of our distill (``distill.distill``), each saved once under the cache (a rerun reuses them):

- default: PCA to 256 dims, SIF weights a=1e-4 from Zipf ranks, output (forward-pass) vectors, mean pooling
- no PCA (teacher dims), no SIF weighting, neither
- input embeddings: the teacher's embedding-layer rows instead of the forward pass, same post-processing
- token pooling: the token's own position instead of the mean over the template
- real frequencies: SIF from wordfreq frequencies (``<data>/vocab/wordfreq_large_en.tsv``) instead of Zipf ranks
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Variant:
    key: str
    name: str
    description: str
    kwargs: dict = field(default_factory=dict)
    input_embeddings: bool = False


def variants(freq_file: Path | None) -> list[Variant]:
    out = [
        Variant("default", "default", "PCA 256, SIF (Zipf), output vectors, mean pooling"),
        Variant("no_pca", "− PCA", "teacher dims, no PCA", {"pca_dims": None}),
        Variant("no_sif", "− SIF weighting", "no Zipf/SIF weights", {"sif_coefficient": None}),
        Variant("no_pca_no_sif", "− PCA − SIF", "neither PCA nor SIF", {"pca_dims": None, "sif_coefficient": None}),
        Variant("input_embeddings", "input embeddings", "embedding-layer rows instead of the forward pass",
                input_embeddings=True),
        Variant("token_pooling", "token pooling", "token position instead of mean pooling", {"pooling": "token"}),
    ]
    if freq_file is not None and Path(freq_file).is_file():
        out.append(Variant("real_frequencies", "real frequencies", "SIF from wordfreq frequencies instead of Zipf ranks",
                           {"token_frequencies": str(freq_file)}))
    return out


def input_embedding_model(teacher, *, pca_dims: int | None = 256, sif_coefficient: float | None = 1e-4,
                          dtype: str = "float16"):
    """A StaticModel from the teacher's input (embedding-layer) matrix, post-processed like ``distill.distill``:
    the same kept tokens, PCA, Zipf-rank SIF weights and output tokenizer."""
    from distill import Teacher
    from distill.core import build_output_tokenizer
    from distill.postprocess import pca, sif_weights, zipf_probabilities
    from distill.vocab_pass import DEFAULT_DROP_PATTERN, dropped_token_ids
    from static_model import StaticModel

    t = teacher if isinstance(teacher, Teacher) else Teacher(teacher, device="cpu")
    tokenizer = t.tokenizer
    out_tok, _, _, _ = build_output_tokenizer(tokenizer, None)
    n_out = out_tok.get_vocab_size(with_added_tokens=True)
    n_teacher = tokenizer.get_vocab_size(with_added_tokens=True)
    drop = dropped_token_ids(tokenizer, DEFAULT_DROP_PATTERN)
    kept = np.asarray([i for i in range(n_teacher) if i not in drop and tokenizer.id_to_token(i) is not None], np.int64)
    weight = t.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    kept = kept[kept < weight.shape[0]]
    raw = weight[kept]
    vectors, explained = pca(raw, pca_dims)
    vectors *= sif_weights(zipf_probabilities(kept.size), sif_coefficient)[:, None]
    table = np.zeros((n_out, vectors.shape[1]), dtype=np.float32)
    table[kept] = vectors
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "tokenizer_name": t.name,
              "apply_pca": pca_dims, "sif_coefficient": sif_coefficient, "hidden_dim": int(vectors.shape[1]),
              "normalize": bool(t.normalize), "pooling": "input_embeddings", "teacher": t.name,
              "distill": {"parameters": {"teacher": t.name, "pca_dims": pca_dims, "sif_coefficient": sif_coefficient,
                                         "source": "input_embeddings", "token_frequencies": "zipf-id-rank"},
                          "explained_variance": round(float(explained), 6)}}
    emb = table.astype(np.float16) if dtype == "float16" else table
    return StaticModel(emb, out_tok, config=config, normalize=bool(t.normalize))


def build_variant(teacher: str, v: Variant, out: Path) -> tuple[Path, float | None]:
    """Distill (or reuse) variant ``v`` of ``teacher`` into ``out``; returns (folder, seconds or None if reused)."""
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        return out, None
    t0 = time.perf_counter()
    if v.input_embeddings:
        model = input_embedding_model(teacher)
    else:
        import distill

        model = distill.distill(teacher, **v.kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    return out, time.perf_counter() - t0


def run_ablation(teacher: str, datasets: list, *, work_dir: Path, config=None, cache_dir=None,
                 include_teacher: bool = False, only: list[str] | None = None, freq_file: Path | None = None,
                 progress: bool = True) -> dict:
    from .encoders import StaticEncoder
    from .report import provenance
    from .tasks import run_quality

    vs = variants(freq_file)
    if only:
        vs = [v for v in vs if v.key in only or v.key == "default"]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(str(teacher)).name or str(teacher))
    folders, build_seconds = [], {}
    it = vs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(vs, desc="ablation: distill variants", unit="variant")
    for v in it:
        folder, secs = build_variant(teacher, v, work_dir / safe / v.key)
        folders.append(folder)
        build_seconds[v.key] = secs
    encoders = [StaticEncoder(str(f), name=v.name) for v, f in zip(vs, folders)]
    specs: list = list(encoders)
    if include_teacher:
        specs = [f"teacher:{teacher}"] + specs
    report = run_quality(specs, datasets, config=config, cache_dir=cache_dir, progress=progress)
    by_name = {v.name: v for v in vs}
    for m in report["models"]:
        v = by_name.get(m["name"])
        if v is not None:
            m["variant"] = v.key
            m["description"] = v.description
            m["build_seconds"] = build_seconds.get(v.key)
        else:
            m["variant"] = "teacher"
            m["description"] = "the transformer teacher"
    report["baseline"] = "default"
    report["teacher"] = teacher
    report["meta"] = provenance()
    return report


def add_parser(sub, add_common, load_datasets, task_config, cache_dir) -> None:
    p = sub.add_parser("ablation", help="distill variants (PCA, SIF, input embeddings, pooling, frequencies) "
                                        "evaluated on the suite")
    p.add_argument("--teacher", required=True, help="teacher name or folder (as for distill)")
    add_common(p)
    p.add_argument("--work-dir", default=None, help="where variant models are saved (default <cache-dir>/ablation)")
    p.add_argument("--include-teacher", action="store_true", help="also evaluate the teacher itself")
    p.add_argument("--only", default=None, help="comma list of variant keys (default: all; 'default' is always in)")
    p.add_argument("--frequencies", default=None,
                   help="word-frequency TSV for the real-frequency variant (default <data>/vocab/wordfreq_large_en.tsv)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--title", default=None)

    def cmd(args) -> int:
        from .__main__ import _data_dir, _out_paths
        from .report import ablation_markdown, write_json

        datasets = load_datasets(args)
        cdir = cache_dir(args)
        freq_file = Path(args.frequencies) if args.frequencies else _data_dir(args.data) / "vocab" / "wordfreq_large_en.tsv"
        report = run_ablation(args.teacher, datasets, work_dir=Path(args.work_dir) if args.work_dir else cdir / "ablation",
                              config=task_config(args), cache_dir=cdir, include_teacher=args.include_teacher,
                              only=args.only.split(",") if args.only else None, freq_file=freq_file,
                              progress=not args.no_progress)
        md = ablation_markdown(report, title=args.title or f"Ablation ({args.teacher})")
        print(md)
        md_path, json_path = _out_paths(args.out)
        if md_path:
            md_path.parent.mkdir(parents=True, exist_ok=True)
            md_path.write_text(md)
            write_json(report, json_path)
            print(f"wrote {md_path} and {json_path}", file=sys.stderr)
        return 0

    p.set_defaults(func=cmd)
