"""Is A closer to its teacher than B, kind of text by kind of text? ``python -m benchmarks fidelity -m A -m B``.

Label-free development data for the question refinement asks (how close is the static model to the teacher), on
kinds of text the labelled suite does not have: every source of a corpus with a source sidecar (the benchmark
data's ``corpus_general/sentences.txt``: tweets, chat, task dialogue, hotel reviews, news, medical leaflets, bug
reports, technical documentation, search questions ...), ``--texts-per-set`` lines of each taken past the first
``--skip`` lines (default 300,000: after every refinement sample measured here, so no model trained on them; the
sources a refinement sample takes whole, Wikipedia, are left out),
and as many passages of ``--passage-words`` consecutive words of the public-domain books and speeches of
``corpus/public_domain_english.txt`` (long, coherent documents).

Per set, each model's score (``--metric``) is either ``spearman``: the Spearman correlation (x100) between its cosines
and the teacher's over every pair of the set's texts (100 ranks every pair as the teacher does; most pairs are of
unrelated texts, so it weighs the bulk of the ranking), or ``neighbours``: the share (x100) of each text's 10 nearest
neighbours under the teacher that are among its 10 nearest under the model (the top of the ranking, what retrieval
and clustering use). A - B gets the selection protocol's treatment (``benchmarks.studies.protocol``): a paired
bootstrap over the set's texts (for ``spearman`` every pair of two drawn texts kept, the all-pairs design of
``paired_bootstrap.text_resampler``), win / loss / tie, the mean over sets and its leave-one-set-out range. The
teacher's vectors are cached (``--cache-dir``); the teacher is the one A's config names unless ``--teacher`` says
otherwise.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.quality.tasks import TextEncoder
from benchmarks.studies.paired_bootstrap import check_pair_options, dataset_seed, text_resampler
from benchmarks.studies.protocol import ItemScores, compare_dataset, leave_one_out
from benchmarks.studies.protocol import markdown as protocol_markdown
from distill.comparison import pair_cosines
from distill.correlation import spearman

TASK = "fidelity"
METRICS = ("spearman", "neighbours")
NEIGHBOURS = 10


def source_sets(corpus: Path, per_set: int, skip: int, seed: int = 0,
                exclude: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """``per_set`` lines of each source named by ``corpus``'s sidecar (``<stem>.source.txt``), drawn (seeded) from
    the lines after the first ``skip``, in file order; sources in ``exclude`` and sources with fewer such lines are
    left out."""
    from distill.refine.corpus import source_sidecar

    side = source_sidecar(corpus)
    if not side.is_file():
        raise FileNotFoundError(f"{corpus} has no source sidecar {side.name} (one source name a line)")
    with open(corpus, encoding="utf-8") as f:
        lines = f.read().splitlines()
    with open(side, encoding="utf-8") as f:
        names = [n.strip() for n in f.read().splitlines()]
    if len(names) != len(lines):
        raise ValueError(f"{side.name} has {len(names)} lines but {corpus.name} {len(lines)}")
    by_source: dict[str, list[int]] = defaultdict(list)
    for i in range(skip, len(lines)):
        if lines[i].strip() and names[i] not in exclude:
            by_source[names[i]].append(i)
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(by_source):
        rows = by_source[name]
        if len(rows) >= per_set:
            out[name] = [lines[rows[j]] for j in np.sort(rng.choice(len(rows), per_set, replace=False))]
    return out


def passages(path: Path, n: int, words: int, seed: int = 0) -> list[str]:
    """``n`` passages of ``words`` consecutive words of ``path``'s documents (separated by an empty line), drawn
    (seeded) across the documents long enough to hold one; the line breaks become spaces."""
    docs = [d.split() for d in path.read_text(encoding="utf-8").split("\n\n")]
    docs = [d for d in docs if len(d) >= words]
    if not docs:
        raise ValueError(f"{path} has no document of {words} words")
    rng = np.random.default_rng(seed)
    out = []
    for d in rng.integers(0, len(docs), n):
        start = int(rng.integers(0, len(docs[d]) - words + 1))
        out.append(" ".join(docs[d][start : start + words]))
    return out


def fidelity_scores(model_emb: np.ndarray, teacher_emb: np.ndarray) -> ItemScores:
    """The model's fidelity on one set of texts (Spearman of its pair cosines with the teacher's, x100), with the
    all-pairs resampler of its texts."""
    if len(model_emb) != len(teacher_emb) or len(model_emb) < 3:
        raise ValueError(f"need the same 3 or more texts from both, got {len(model_emb)} and {len(teacher_emb)}")
    mine, theirs = pair_cosines(model_emb), pair_cosines(teacher_emb)  # float32; spearman ranks in float64
    pairs = np.stack(np.triu_indices(len(model_emb), 1), axis=1)

    def on(idx: np.ndarray) -> float:
        return 100.0 * spearman(mine[idx], theirs[idx])

    return ItemScores(TASK, len(pairs), on(np.arange(len(pairs))), on, text_resampler(pairs), "texts")


def neighbour_scores(model_emb: np.ndarray, teacher_emb: np.ndarray, k: int = NEIGHBOURS) -> ItemScores:
    """The share (x100) of each text's ``k`` nearest neighbours under the teacher that are among its ``k`` nearest
    under the model, averaged; resampled by text. Equal cosines (duplicate texts) are taken in text order under
    both (``distill.neighbours.neighbour_overlaps``)."""
    from distill.neighbours import neighbour_overlaps

    if len(model_emb) != len(teacher_emb) or len(model_emb) <= k:
        raise ValueError(f"need the same texts from both, more than k={k}; got {len(model_emb)} and {len(teacher_emb)}")
    per_text = neighbour_overlaps(model_emb, teacher_emb, k)

    def on(idx: np.ndarray) -> float:
        return 100.0 * float(np.mean(per_text[idx]))

    return ItemScores(TASK, len(per_text), on(np.arange(len(per_text))), on)  # the items are the texts


def compare(enc_a: TextEncoder, enc_b: TextEncoder, teacher: TextEncoder, sets: dict[str, list[str]], *,
            resamples: int = 500, seed: int = 42, metric: str = "spearman") -> dict:
    """The protocol's report of A against B, one "dataset" a text set, scored by fidelity to ``teacher``
    (``metric``: one of ``METRICS``); each set resampled from its own stream, ``dataset_seed(seed, set name)``
    (the sets are all one size: with one seed they drew the very same texts)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    score = fidelity_scores if metric == "spearman" else neighbour_scores
    per_set = {}
    for name, texts in sets.items():
        t = teacher.encode(texts)
        a, b = score(enc_a.encode(texts), t), score(enc_b.encode(texts), t)
        per_set[name] = compare_dataset(a, b, resamples=resamples, seed=dataset_seed(seed, name))
    return {"datasets": per_set, "summary": leave_one_out(per_set)}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``fidelity``."""
    p = subparsers.add_parser("fidelity", help="A against B: closeness to the teacher per kind of text (no labels)",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", "-m", action="append", required=True,
                   help="model SPEC, as for benchmarks quality (exactly two: A, the candidate, then B)")
    p.add_argument("--teacher", default=None, help="the teacher (default: the one A's config names)")
    p.add_argument("--metric", default="spearman", choices=METRICS,
                   help="spearman: of all pair cosines (default); neighbours: overlap of each text's 10 nearest")
    p.add_argument("--texts-per-set", type=int, default=250)
    p.add_argument("--skip", type=int, default=300_000, help="corpus lines not drawn from (refinement samples)")
    p.add_argument("--passage-words", type=int, default=200)
    p.add_argument("--resamples", type=int, default=500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data", default=None, help="benchmark data folder (default ../shared/data)")
    p.add_argument("--cache-dir", default=None, help="the teacher's embedding cache (default .cache/benchmarks)")
    p.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    return p


def run(args: argparse.Namespace) -> int:
    """Build the text sets, score both models against the teacher; print (and with ``--out`` write) the report."""
    from benchmarks.provenance import provenance, provenance_markdown
    from benchmarks.quality.cache import default_cache_dir
    from benchmarks.quality.data import resolve_data_dir
    from benchmarks.quality.encoders import CachedEncoder, load_encoder
    from benchmarks.report import emit
    from distill.cli_checks import UsageError
    from distill.refine.corpus import DEFAULT_PREFER_SOURCES

    check_pair_options(args)
    for name in ("texts_per_set", "passage_words", "resamples"):
        if getattr(args, name) < 3:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 3")
    if args.metric == "neighbours" and args.texts_per_set <= NEIGHBOURS:
        raise UsageError(f"--texts-per-set must exceed {NEIGHBOURS} for --metric neighbours")
    if args.skip < 0:
        raise UsageError("--skip must be 0 or more")
    root = resolve_data_dir(args.data)
    corpus, books = root / "corpus_general" / "sentences.txt", root / "corpus" / "public_domain_english.txt"
    for path in (corpus, books):
        if not path.is_file():
            raise UsageError(f"--data {root}: {path.relative_to(root)} is missing (layout: MANIFEST.md)")
    # the text sets before any model loads: a selection of nothing or an unreadable corpus is a usage error up front
    # (the preferred sources are refined on whole, every Wikipedia line is in the default sample: never held out)
    try:
        sets = source_sets(corpus, args.texts_per_set, args.skip, args.seed, exclude=DEFAULT_PREFER_SOURCES)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data {root}: {exc}") from None
    if not sets:
        raise UsageError(f"--texts-per-set {args.texts_per_set} and --skip {args.skip}: no source of "
                         f"{corpus.relative_to(root)} has {args.texts_per_set} lines past the first {args.skip}")
    try:
        book_passages = passages(books, args.texts_per_set, args.passage_words, args.seed)
    except UnicodeDecodeError as exc:
        raise UsageError(f"--data {root}: {books.relative_to(root)}: {exc}") from None
    except ValueError as exc:
        raise UsageError(f"--passage-words {args.passage_words}: {exc}") from None
    sets[f"books, {args.passage_words}-word passages"] = book_passages
    enc_a, enc_b = (load_encoder(s) for s in args.model)
    model_a = getattr(enc_a, "model", None)
    teacher_name = args.teacher or (getattr(model_a, "config", None) or {}).get("teacher")
    if not teacher_name:
        raise UsageError("--teacher: A's config names no teacher; give one")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    teacher = CachedEncoder(load_encoder(f"teacher:{teacher_name}"), cache, progress=False)
    meta = provenance(args.command_line)
    result = compare(enc_a, enc_b, teacher, sets, resamples=args.resamples, seed=args.seed, metric=args.metric)
    md = protocol_markdown(enc_a.name, enc_b.name, result, args.resamples)
    md = md.replace("## Selection protocol:", f"## Fidelity to {teacher_name} ({args.metric}):", 1)
    md = "\n".join(x for x in md.split("\n") if not x.startswith("- A - B on the suite's average")) + "\n"
    emit(md + "\n" + provenance_markdown(meta),
         {"a": enc_a.name, "b": enc_b.name, "specs": args.model, "teacher": teacher_name, "metric": args.metric,
          "texts_per_set": args.texts_per_set, "skip": args.skip, "passage_words": args.passage_words,
          "resamples": args.resamples, "seed": args.seed, **result, "meta": meta}, args.out)
    return 0
