"""``python -m benchmarks ablation --teacher NAME``: re-measure the seed's ablation on our suite.

Variants of our distill, each saved once under the cache (a rerun reuses them while the settings and the content of
the input files they read are the same: ``variant_record``). By default the variants share
one vocabulary pass per pooling (``distill.embed_vocabulary``) and each is ``distill.assemble``d from it, the stages
``distill.distill`` runs (``--exact`` calls ``distill.distill`` for each instead):

- default: distill's defaults (PCA ``distill.pca.DEFAULT_PCA_DIMS``, SIF weights a=1e-4 from Zipf ranks, output
  (forward-pass) vectors, mean pooling in the vocabulary pass, ``distill.assemble.DEFAULT_CONTRAST`` at encode time,
  ``DEFAULT_MAX_LENGTH`` tokens, SIF's common component removed), or the settings ``--pca-dims``, ``--contrast``,
  ``--max-length`` and ``--keep-common-component`` pin for every variant (e.g. the earlier tables' 256 dims, contrast
  1, MiniLM's 254 tokens and the component kept), each variant changing its own
- plain mean: the same table encoded with contrast 0 (Model2Vec's pooling); every other variant keeps the default's
- no PCA (teacher dims), no SIF weighting, neither; the common component kept (``distill.common_component``)
- input embeddings: the teacher's embedding-layer rows instead of the forward pass, same post-processing
- token pooling: the token's own position instead of the mean over the template
- real frequencies: SIF from wordfreq frequencies (``<data>/vocab/wordfreq_large_en.tsv``) alone instead of Zipf
  ranks, at a=1e-4 and a=1e-3, and pooled with Zipf over ids (distill's default frequency weight) at a=3e-4
- corpus frequencies: SIF from token counts of a corpus (``<data>/corpus_general/sentences.txt``) alone at a=1e-4,
  3e-4 and 1e-3 (a larger ``a`` flattens the weights; real frequencies are steeper than Zipf over id ranks), and
  pooled with Zipf over ids as ``distill.distill`` does by default (frequency weight 0.25) at a=1e-4 and 3e-4;
  ``--frequency-grid`` replaces every variant by a grid of frequency weights and ``a`` (``frequency_grid``)
- Zipf over frequency ranks: Zipf's law as by default, but over the tokens' rank in the corpus counts or the
  wordfreq list instead of their id order (ties and unseen tokens keep id order); built from the shared pass also
  under ``--exact``, since ``distill.distill`` has no such option
- added vocabulary: the most frequent words of the wordfreq list (30,000 and 100,000; those that are not one
  teacher token already become new tokens, embedded by the teacher over their word pieces), with Zipf over ids and
  with corpus frequencies at a=3e-4, alone and pooled with Zipf; always built with ``distill.distill`` (the shared
  pass has no added words)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.provenance import provenance, provenance_markdown
from benchmarks.quality.data import TASK_LABELS, TASK_TYPES
from benchmarks.quality.suite import add_suite_options, cache_dir, load_datasets, task_config
from benchmarks.report import emit, fmt, markdown_table
from distill.cli_checks import number_or_none

if TYPE_CHECKING:
    from benchmarks.quality.data import Dataset
    from benchmarks.quality.tasks import TaskConfig
    from distill import DistillPlan, Teacher, VocabularyVectors
    from static_model import StaticModel


@dataclass(frozen=True)
class Variant:
    """One ablation variant: its key, label, description and how it is built from the default."""
    key: str
    name: str
    description: str
    kwargs: dict = field(default_factory=dict)
    input_embeddings: bool = False
    frequency_ranks: bool = False  # Zipf over the rank of kwargs["token_frequencies"] counts (benchmark-only)
    vocabulary_size: int | None = None  # add the first N words of kwargs["vocabulary"] (a word list) as tokens


def settings_description(settings: dict | None = None) -> str:
    """The default row's "what changes" text for the shared ``settings`` (``pca_dims``, ``contrast``, ``max_length``,
    ``remove_common_component``; distill's defaults for those absent), e.g. "PCA 256, SIF (Zipf), output vectors, mean
    pooling, contrast pooling"."""
    from distill.assemble import (
        DEFAULT_CONTRAST,
        DEFAULT_DROP_COMPONENTS,
        DEFAULT_MAX_LENGTH,
        DEFAULT_REMOVE_COMMON_COMPONENT,
    )
    from distill.pca import DEFAULT_PCA_DIMS

    settings = settings or {}
    dims = settings.get("pca_dims", DEFAULT_PCA_DIMS)
    contrast = float(settings.get("contrast", DEFAULT_CONTRAST))
    max_length = settings.get("max_length", DEFAULT_MAX_LENGTH)
    pca_text = ("no PCA" if dims is None else "PCA to all teacher dims" if dims == "auto"
                else f"PCA to {dims:g} of the variance" if isinstance(dims, float) else f"PCA {dims}")
    pooling = ("plain mean (contrast 0)" if contrast == 0 else "contrast pooling" if contrast == 1
               else f"contrast pooling {contrast:g}")
    text = f"{pca_text}, SIF (Zipf), output vectors, mean pooling, {pooling}"
    if settings.get("remove_common_component", DEFAULT_REMOVE_COMMON_COMPONENT):
        text = text.replace("SIF (Zipf)", "SIF (Zipf) and its common component removed")
    drop = settings.get("drop_components", DEFAULT_DROP_COMPONENTS)
    if drop != 0:
        text += f", top {'dims/100' if drop == 'auto' else drop} principal components dropped"
    return text if max_length == DEFAULT_MAX_LENGTH else f"{text}, {max_length or 'all'} tokens"


def variants(freq_file: Path | None, corpus_file: Path | None = None,
             settings: dict | None = None) -> list[Variant]:
    """The ablation's variants (those whose frequency file or corpus exists), the default first (described with the
    shared ``settings``, see ``settings_description``)."""
    out = [
        Variant("default", "default", settings_description(settings)),
        Variant("plain_mean", "plain mean", "contrast 0 at encode time (Model2Vec's pooling)", {"contrast": 0.0}),
        Variant("no_pca", "− PCA", "teacher dims, no PCA", {"pca_dims": None}),
        Variant("common_component_kept", "common component kept", "SIF's common component not removed "
                "(Model2Vec's recipe)", {"remove_common_component": False}),
        Variant("top_components_kept", "top components kept", "no all-but-the-top (Model2Vec's recipe)",
                {"drop_components": 0}),
        Variant("no_sif", "− SIF weighting", "no Zipf/SIF weights", {"sif_coefficient": None}),
        Variant("no_pca_no_sif", "− PCA − SIF", "neither PCA nor SIF", {"pca_dims": None, "sif_coefficient": None}),
        Variant("input_embeddings", "input embeddings", "embedding-layer rows instead of the forward pass",
                input_embeddings=True),
        Variant("token_pooling", "token pooling", "token position instead of mean pooling", {"pooling": "token"}),
    ]
    if freq_file is not None and Path(freq_file).is_file():
        out.append(Variant("real_frequencies", "real frequencies",
                           "SIF from wordfreq frequencies alone instead of Zipf ranks",
                           {"token_frequencies": str(freq_file), "frequency_weight": 1.0}))
        out.append(Variant("real_frequencies_a1e-3", "real frequencies, a=1e-3",
                           "SIF from wordfreq frequencies alone, a=1e-3", {"token_frequencies": str(freq_file),
                                                                          "sif_coefficient": 1e-3,
                                                                          "frequency_weight": 1.0}))
        out.append(Variant("real_frequencies_pooled_a3e-4", "real frequencies pooled with Zipf, a=3e-4",
                           "p ~ Zipf over ids^0.75 x wordfreq frequencies^0.25 (distill's default frequency weight), "
                           "a=3e-4", {"token_frequencies": str(freq_file), "sif_coefficient": 3e-4}))
    for label, source in (("corpus", corpus_file), ("wordfreq", freq_file)):
        if source is not None and Path(source).is_file():
            out.append(Variant(f"zipf_{label}_ranks", f"Zipf over {label} ranks",
                               f"Zipf's law over the token's rank in {Path(source).name} instead of its id",
                               {"token_frequencies": str(source)}, frequency_ranks=True))
    if corpus_file is not None and Path(corpus_file).is_file():
        corpus_name = f"{Path(corpus_file).parent.name}/{Path(corpus_file).name}"
        for a, key in ((1e-4, "1e-4"), (3e-4, "3e-4"), (1e-3, "1e-3")):
            out.append(Variant(f"corpus_frequencies_a{key}", f"corpus frequencies, a={key}",
                               f"SIF from token counts of {corpus_name} alone (frequency weight 1), a={key}",
                               {"token_frequencies": str(corpus_file), "sif_coefficient": a, "frequency_weight": 1.0}))
        for a, key in ((1e-4, "1e-4"), (3e-4, "3e-4")):
            out.append(Variant(f"corpus_pooled_a{key}", f"corpus frequencies pooled with Zipf, a={key}",
                               f"p ~ Zipf over ids^0.75 x counts of {corpus_name}^0.25 (distill's default "
                               f"frequency weight), a={key}",
                               {"token_frequencies": str(corpus_file), "sif_coefficient": a}))
    if freq_file is not None and Path(freq_file).is_file():
        for size, key in ((30_000, "30k"), (100_000, "100k")):
            out.append(Variant(f"vocabulary_{key}", f"vocabulary {key}",
                               f"the {size:,} most frequent words of {Path(freq_file).name} added as tokens",
                               {"vocabulary": str(freq_file)}, vocabulary_size=size))
            if corpus_file is not None and Path(corpus_file).is_file():
                out.append(Variant(f"vocabulary_{key}_corpus_frequencies", f"vocabulary {key}, corpus frequencies",
                                   f"the same, SIF from token counts of {Path(corpus_file).name} alone, a=3e-4",
                                   {"vocabulary": str(freq_file), "token_frequencies": str(corpus_file),
                                    "sif_coefficient": 3e-4, "frequency_weight": 1.0}, vocabulary_size=size))
                out.append(Variant(f"vocabulary_{key}_corpus_pooled", f"vocabulary {key}, corpus frequencies pooled",
                                   f"the same, counts of {Path(corpus_file).name} pooled with Zipf over ids (distill's "
                                   "default frequency weight), a=3e-4",
                                   {"vocabulary": str(freq_file), "token_frequencies": str(corpus_file),
                                    "sif_coefficient": 3e-4}, vocabulary_size=size))
    return out


FREQUENCY_GRID_WEIGHTS = (0.125, 0.25, 0.375, 0.5, 1.0)
FREQUENCY_GRID_COEFFICIENTS = (1e-4, 2e-4, 3e-4)


def frequency_grid(corpus_file: Path, settings: dict | None = None) -> list[Variant]:
    """The default and every (frequency weight, SIF a) pair of the grid with ``corpus_file``'s token counts: how
    ``DEFAULT_FREQUENCY_WEIGHT`` was chosen (``--frequency-grid``, on the development splits)."""
    out = [Variant("default", "default", settings_description(settings).replace("SIF (Zipf)",
                                                                                 "SIF (Zipf over ids, a=1e-4)"))]
    for w in FREQUENCY_GRID_WEIGHTS:
        for a in FREQUENCY_GRID_COEFFICIENTS:
            out.append(Variant(f"grid_w{w:g}_a{a:g}", f"w={w:g}, a={a:g}",
                               f"p ~ Zipf over ids^{1 - w:g} x counts of {Path(corpus_file).name}^{w:g}, a={a:g}",
                               {"token_frequencies": str(corpus_file), "sif_coefficient": a, "frequency_weight": w}))
    return out


class SharedPasses:
    """What the shared-pass variants share, from ``distill``'s own stages: one teacher, one ``distill.prepare`` plan
    per frequency source (each source counted once) and one ``distill.embed_vocabulary`` per pooling."""

    def __init__(self, teacher: str | os.PathLike | Teacher, device: str | None = "cpu"):
        from distill import Teacher

        self.teacher = teacher if isinstance(teacher, Teacher) else Teacher(teacher, device=device)
        self._plans: dict[str | None, DistillPlan] = {}
        self._vectors: dict[str, VocabularyVectors] = {}

    def plan(self, token_frequencies: str | os.PathLike | None = None) -> DistillPlan:
        """``distill.prepare`` of the teacher with ``token_frequencies`` (no added words), made once per source."""
        from distill import prepare

        key = None if token_frequencies is None else str(token_frequencies)
        if key not in self._plans:
            self._plans[key] = prepare(self.teacher, token_frequencies=token_frequencies)
        return self._plans[key]

    def vectors(self, pooling: str, cache_file: Path | None = None, progress: bool = True) -> VocabularyVectors:
        """``distill.embed_vocabulary`` with ``pooling`` (saved to and read from ``cache_file``)."""
        if pooling in self._vectors:
            return self._vectors[pooling]
        from distill import VocabularyVectors, embed_vocabulary

        cached = None if cache_file is None else self._cached_vectors(cache_file)
        if cached is not None:
            vectors = VocabularyVectors(cached, pooling)
        else:
            vectors = embed_vocabulary(self.plan(), pooling=pooling, show_progress_bar=progress)
            if cache_file is not None:  # whole or not at all, through a temporary of this writer's own
                from static_model.atomic_file import atomic_write

                array = vectors.vectors
                atomic_write(cache_file, lambda handle: np.save(handle, array))
        self._vectors[pooling] = vectors
        return vectors

    def _cached_vectors(self, cache_file: Path) -> np.ndarray | None:
        """``cache_file``'s vectors when it is a whole ``.npy`` of one row per kept token and the teacher's width;
        None when it is absent, cut short or of another shape (then the pass is made again and the file replaced)."""
        if not cache_file.is_file():
            return None
        try:
            array = np.load(cache_file, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        expected = (self.plan().kept_ids.size, self.teacher.dim)
        if not isinstance(array, np.ndarray) or array.shape != expected:
            return None
        return array

    def input_embeddings(self) -> VocabularyVectors:
        """The teacher's embedding-layer rows of the plan's kept ids, in place of the vocabulary pass."""
        return input_embedding_vectors(self.plan())


def input_embedding_vectors(plan: DistillPlan) -> VocabularyVectors:
    """The teacher's input (embedding-layer) rows of ``plan.kept_ids``, as ``assemble`` takes the vocabulary pass."""
    from distill import VocabularyVectors

    weight = plan.teacher.model.get_input_embeddings().weight.detach().float().cpu().numpy()
    kept = plan.kept_ids
    if kept.size and kept.max() >= weight.shape[0]:
        raise ValueError(f"The teacher has {weight.shape[0]} input embeddings; the plan keeps ids up to {kept.max()}.")
    return VocabularyVectors(weight[kept], "input_embeddings")


def frequency_rank_probabilities(plan: DistillPlan) -> np.ndarray:
    """Zipf's law over the kept tokens' rank in the plan's counts (most frequent first; ties and unseen tokens keep
    their id order) instead of their id order: the ``p`` of the Zipf-over-frequency-ranks variants."""
    from distill.frequencies import zipf_probabilities

    if plan.counts is None:
        raise ValueError("Zipf over frequency ranks needs a plan with token_frequencies.")
    kept, counts = plan.kept_ids, plan.counts
    kept_counts = np.zeros(kept.size)
    inside = kept < counts.shape[0]
    kept_counts[inside] = counts[kept[inside]]
    order = np.lexsort((np.arange(kept.size), -kept_counts))  # most frequent first, ties by id
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return zipf_probabilities(kept.size)[rank]


def input_embedding_model(teacher: str | os.PathLike | Teacher, *, pca_dims: int | None = 256,
                          sif_coefficient: float | None = 1e-4, dtype: str = "float16") -> StaticModel:
    """A StaticModel from the teacher's input (embedding-layer) matrix, post-processed by ``distill.assemble``:
    the same kept tokens, PCA, Zipf-rank SIF weights and output tokenizer."""
    from distill import assemble

    shared = SharedPasses(teacher)
    return assemble(shared.plan(), shared.input_embeddings(), pca_dims=pca_dims, sif_coefficient=sif_coefficient,
                    dtype=dtype)


def _built_by_distill(v: Variant, exact: bool) -> bool:
    """Whether ``v`` is built by ``distill.distill`` (added words always; everything ``--exact`` can) rather than
    from the shared passes."""
    return bool(v.vocabulary_size) or (exact and not (v.input_embeddings or v.frequency_ranks))


def variant_arguments(v: Variant, settings: dict | None = None) -> dict:
    """``v``'s arguments for ``distill.distill`` / ``distill.assemble`` over the shared ``settings`` (its own win),
    ``max_length`` included (set on the built model: neither function takes it)."""
    return {**(settings or {}), **v.kwargs}


def reusable_folder(folder: Path, arguments: dict) -> bool:
    """Whether ``folder`` holds a built model whose config records ``arguments``' PCA dims, contrast, token limit and
    common-component setting (those given): a model built with other shared settings is rebuilt, not silently reused."""
    config_file = folder / "config.json"
    if not ((folder / "model.safetensors").is_file() and config_file.is_file()):
        return False
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        parameters = config["distill"]["parameters"]
        recorded = {"pca_dims": parameters["pca_dims"], "contrast": config["contrast"],
                    "max_length": config["max_length"],
                    # folders from before the setting existed kept the component
                    "remove_common_component": parameters.get("remove_common_component", False),
                    "drop_components": parameters.get("drop_components", 0)}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all(recorded[k] == arguments[k] for k in recorded if k in arguments)


INPUT_FILE_ARGUMENTS = ("token_frequencies", "vocabulary")  # the arguments that name a file a variant reads


def variant_record(v: Variant, settings: dict | None = None) -> dict:
    """What ``v`` is made from: its arguments over the shared ``settings``, how it is built from them, and the
    content digest (``distill.refine.featurize.file_digest``, as the teacher's fingerprint) of each input file it
    reads (frequency file, corpus, word list) in place of its path: a file edited in place rebuilds the variant, the
    same file reached by another path does not."""
    from distill.refine.featurize import file_digest

    arguments = variant_arguments(v, settings)
    digests = {k: file_digest(Path(arguments.pop(k))) for k in INPUT_FILE_ARGUMENTS if arguments.get(k) is not None}
    record = {"arguments": arguments, "input_embeddings": v.input_embeddings, "frequency_ranks": v.frequency_ranks,
              "vocabulary_size": v.vocabulary_size, "input_digests": digests}
    return json.loads(json.dumps(record, sort_keys=True))  # as read back from the file (tuples as lists)


def variant_record_file(root: Path, v: Variant) -> Path:
    """Where ``variant_record`` of the variant saved in ``root/<key>`` is kept: ``root/<key>.inputs.json``, beside
    the model folder (a save never replaces a model folder holding files of other names)."""
    return root / f"{v.key}.inputs.json"


def recorded_inputs(record_file: Path) -> dict | None:
    """The record saved in ``record_file``; None when it is absent or unreadable (a folder from before variants
    recorded their inputs: rebuilt once)."""
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # not there, or not whole JSON text
        return None
    return record if isinstance(record, dict) else None


def write_variant_record(record_file: Path, record: dict) -> None:
    """Save ``record`` to ``record_file``, whole or not at all."""
    from static_model.atomic_file import atomic_write

    data = json.dumps(record, indent=2, sort_keys=True).encode("utf-8")
    atomic_write(record_file, lambda handle: handle.write(data))


def build_shared_variant(shared: SharedPasses, v: Variant, cache_root: Path | None = None, progress: bool = True,
                         settings: dict | None = None) -> StaticModel:
    """``v`` from the shared passes: ``distill.assemble`` of the plan for its frequency source and the vocabulary pass
    for its pooling (cached as ``cache_root/raw-<pooling>.npy``), or of the input embeddings; ``settings`` as
    ``variant_arguments`` takes them."""
    from distill import assemble

    kw = variant_arguments(v, settings)
    kw.pop("max_length", None)  # set by the caller on the built model
    pooling = kw.pop("pooling", "mean")
    plan = shared.plan(kw.pop("token_frequencies", None))
    if v.input_embeddings:
        vectors = shared.input_embeddings()
    else:
        vectors = shared.vectors(pooling, None if cache_root is None else cache_root / f"raw-{pooling}.npy", progress)
    if v.frequency_ranks:
        return assemble(plan, vectors, probabilities=frequency_rank_probabilities(plan),
                        probabilities_source=f"zipf-rank:{plan.frequency_source}", **kw)
    return assemble(plan, vectors, **kw)


def build_variants(teacher: str, vs: list[Variant], root: Path, *, exact: bool = False,
                   progress: bool = True, settings: dict | None = None) -> tuple[list[Path], dict]:
    """Build (or reuse) every variant under ``root/<key>``.

    Default: one vocabulary pass per pooling (mean, token) shared by all variants, each assembled by
    ``distill.assemble`` (``build_shared_variant``), the stage ``distill.distill`` ends with.
    ``exact=True``: call ``distill.distill(teacher, **kwargs)`` for each variant instead (slower, one pass each).
    ``settings``: ``pca_dims``, ``contrast``, ``max_length`` and ``remove_common_component`` shared by every variant
    that does not change them (distill's defaults for those absent); a saved variant is reused only if its config
    records them and its ``variant_record`` (settings and input file digests) is the one saved beside it.
    """
    folders: list[Path] = []
    seconds: dict[str, float | None] = {}
    records = {v.key: variant_record(v, settings) for v in vs}
    todo = [v for v in vs if not (reusable_folder(root / v.key, variant_arguments(v, settings))
                                  and recorded_inputs(variant_record_file(root, v)) == records[v.key])]
    shared = SharedPasses(teacher) if any(not _built_by_distill(v, exact) for v in todo) else None
    it = vs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(vs, desc="ablation: build variants", unit="variant")
    for v in it:
        out = root / v.key
        folders.append(out)
        if v not in todo:
            seconds[v.key] = None
            continue
        t0 = time.perf_counter()
        variant_record_file(root, v).unlink(missing_ok=True)  # a build cut short leaves no record: rebuilt next run
        if _built_by_distill(v, exact):
            import distill
            from distill import read_vocabulary_file

            kw = variant_arguments(v, settings)
            kw.pop("max_length", None)
            if v.vocabulary_size:
                kw["vocabulary"] = read_vocabulary_file(kw["vocabulary"], v.vocabulary_size)
            model = distill.distill(teacher, show_progress_bar=progress, **kw)
        else:
            assert shared is not None  # made above for every variant not built by distill.distill
            model = build_shared_variant(shared, v, root, progress, settings)
        if settings and "max_length" in settings:
            model.max_length = settings["max_length"]
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, overwrite=True)
        write_variant_record(variant_record_file(root, v), records[v.key])
        seconds[v.key] = round(time.perf_counter() - t0, 2)
    return folders, seconds


def teacher_work_name(teacher: str | os.PathLike) -> str:
    """The folder, under the work folder, of ``teacher``'s variants and vocabulary passes: its base name and its
    content fingerprint (``distill.refine.featurize.teacher_fingerprint``, the key of the benchmarks' teacher
    embeddings: configs, tokenizer, pooling and whole weight files), e.g. ``model-0123456789abcdef``. Two teachers
    in folders of one name (``.../model``) or a teacher rewritten in place never share saved work."""
    from distill import Teacher
    from distill.refine.featurize import teacher_fingerprint

    name = Path(os.fspath(teacher)).name or os.fspath(teacher)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe}-{teacher_fingerprint(Teacher(teacher))}"


def run_ablation(teacher: str, datasets: list[Dataset], *, work_dir: Path, config: TaskConfig | None = None,
                 cache_dir: str | os.PathLike | None = None,
                 include_teacher: bool = False, only: list[str] | None = None, freq_file: Path | None = None,
                 corpus_file: Path | None = None, exact: bool = False, grid: bool = False,
                 progress: bool = True, argv: list[str] | None = None, settings: dict | None = None) -> dict:
    """Every variant (or the ``grid``) built under ``work_dir`` and scored on ``datasets``: the report dict;
    ``argv``: the command recorded in its ``meta`` (default this process's); ``settings``: the ``pca_dims``,
    ``contrast``, ``max_length`` and ``remove_common_component`` every variant shares unless it changes them
    (distill's defaults if absent)."""
    from benchmarks.quality.encoders import StaticEncoder
    from benchmarks.quality.tasks import run_quality

    if grid and not (corpus_file is not None and Path(corpus_file).is_file()):
        raise ValueError(f"--frequency-grid needs a frequency corpus; {corpus_file} is not a file.")
    vs = (frequency_grid(Path(corpus_file), settings) if grid and corpus_file is not None
          else variants(freq_file, corpus_file, settings))
    if only:
        vs = [v for v in vs if v.key in only or v.key == "default"]
    folders, build_seconds = build_variants(teacher, vs, work_dir / teacher_work_name(teacher), exact=exact,
                                            progress=progress, settings=settings)
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
    report["build"] = "distill.distill per variant" if exact else ("one vocabulary pass per pooling "
                                                                   "(distill.embed_vocabulary), each variant "
                                                                   "made by distill.assemble")
    if not exact and any(v.vocabulary_size for v in vs):
        report["build"] += "; the added-vocabulary variants with distill.distill"
    report["teacher"] = teacher
    report["settings"] = dict(settings or {})
    report["meta"] = provenance(argv)
    return report


def ablation_markdown(report: dict, *, title: str = "Ablation") -> str:
    """Variants × task-type averages, the average and its difference from the default."""
    models = report["models"]
    tasks_present = [t for t in TASK_TYPES if any(t in m["summary"]["task_averages"] for m in models)]
    base = next((m for m in models if m.get("variant") == report.get("baseline")), models[0] if models else None)
    rows = []
    for m in models:
        ta = m["summary"]["task_averages"]
        delta = m["summary"]["average"] - base["summary"]["average"] if base else float("nan")
        rows.append([m["name"], m.get("description", "")] + [fmt(ta.get(t)) for t in tasks_present]
                    + [f"**{fmt(m['summary']['average'])}**", ("±0.0" if m is base else f"{delta:+.1f}")])
    header = ["Variant", "what changes"] + [TASK_LABELS[t] for t in tasks_present] + ["Average", "Δ vs default"]
    out = [f"## {title}", "", markdown_table(header, rows, ["---", "---"] + ["---:"] * (len(header) - 2)), ""]
    if report.get("build"):
        out += [f"Variants built with: {report['build']}. Average = mean of the task-type averages.", ""]
    if report.get("meta"):
        out.append(provenance_markdown(report["meta"]))
    return "\n".join(out)


_max_length = number_or_none(int, ("none", "all"), "a positive int or none")  # --max-length: none = every token


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``ablation``."""
    from distill.__main__ import parse_drop_components, parse_pca_dims
    from distill.assemble import DEFAULT_CONTRAST, DEFAULT_MAX_LENGTH
    from distill.pca import DEFAULT_PCA_DIMS

    p = subparsers.add_parser("ablation", help="distill variants (PCA, SIF, input embeddings, pooling, frequencies, "
                                               "added vocabulary) evaluated on the suite")
    p.add_argument("--teacher", required=True, help="teacher name or folder (as for distill)")
    p.add_argument("--pca-dims", type=parse_pca_dims, default=DEFAULT_PCA_DIMS, metavar="{N,F,auto,none}",
                   help="PCA of every variant that does not change it, as distill's --pca-dims "
                        f"(default {DEFAULT_PCA_DIMS}; the tables before 2026-12-03 used 256)")
    p.add_argument("--contrast", type=float, default=DEFAULT_CONTRAST,
                   help="pooling contrast of every variant but 'plain mean', as distill's --contrast "
                        f"(default {DEFAULT_CONTRAST}; the tables before 2026-12-03 used 1)")
    p.add_argument("--max-length", type=_max_length, default=DEFAULT_MAX_LENGTH, metavar="{N,none}",
                   help="tokens each variant reads of a text (config.json's max_length; none: all) "
                        f"(default {DEFAULT_MAX_LENGTH}; the tables before 2026-12-03 used the teacher's window, "
                        "254 for all-MiniLM-L6-v2)")
    p.add_argument("--keep-common-component", action="store_true",
                   help="every variant keeps SIF's common component, as distill's --keep-common-component (the "
                        "tables made before the removal became distill's default, 2026-12-03, kept it)")
    p.add_argument("--drop-components", type=parse_drop_components, default="auto", metavar="{N,auto}",
                   help="all-but-the-top for every variant, as distill's --drop-components (default auto; the tables "
                        "made before 2026-12-03 17:30 UTC dropped none: 0)")
    add_suite_options(p)
    p.add_argument("--work-dir", default=None, help="where variant models are saved (default <cache-dir>/ablation), "
                                                    "in a folder per teacher: its name and content fingerprint")
    p.add_argument("--include-teacher", action="store_true", help="also evaluate the teacher itself")
    p.add_argument("--only", default=None, help="comma list of variant keys (default: all; 'default' is always in)")
    p.add_argument("--frequencies", default=None,
                   help="word-frequency TSV for the real-frequency and added-vocabulary variants "
                        "(default <data>/vocab/wordfreq_large_en.tsv)")
    p.add_argument("--frequency-corpus", default=None,
                   help="text corpus for the corpus-frequency variants (default <data>/corpus_general/sentences.txt)")
    p.add_argument("--exact", action="store_true",
                   help="build each variant with distill.distill (one vocabulary pass each) instead of shared passes")
    p.add_argument("--frequency-grid", action="store_true",
                   help="instead of the ablation's variants: the default and a grid of frequency weights x SIF a "
                        "with the frequency corpus (how distill's default frequency weight was chosen)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    p.add_argument("--title", default=None)
    return p


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the variants, score them on the suite; print (and with ``--out`` write) the table."""
    from benchmarks.quality.data import resolve_data_dir
    from distill.cli_checks import UsageError
    from distill.pca import check_pca_dims
    from static_model.validation import check_contrast, check_max_length

    for option, check, value in (("--pca-dims", check_pca_dims, args.pca_dims),
                                 ("--contrast", check_contrast, args.contrast),
                                 ("--max-length", check_max_length, args.max_length)):
        try:
            check(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{option}: {exc}") from None
    settings = {"pca_dims": args.pca_dims, "contrast": args.contrast, "max_length": args.max_length,
                "remove_common_component": not args.keep_common_component, "drop_components": args.drop_components}
    datasets = load_datasets(args)
    cdir = cache_dir(args)
    data = resolve_data_dir(args.data)
    freq_file = Path(args.frequencies) if args.frequencies else data / "vocab" / "wordfreq_large_en.tsv"
    corpus_file = (Path(args.frequency_corpus) if args.frequency_corpus
                   else data / "corpus_general" / "sentences.txt")
    report = run_ablation(args.teacher, datasets, work_dir=Path(args.work_dir) if args.work_dir else cdir / "ablation",
                          config=task_config(args), cache_dir=cdir, include_teacher=args.include_teacher,
                          only=args.only.split(",") if args.only else None, freq_file=freq_file,
                          corpus_file=corpus_file,
                          exact=args.exact, grid=args.frequency_grid, progress=not args.no_progress,
                          argv=args.command_line, settings=settings)
    emit(ablation_markdown(report, title=args.title or f"Ablation ({args.teacher})"), report, args.out)
    return 0
