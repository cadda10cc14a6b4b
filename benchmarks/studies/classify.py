"""Classification table: TF-IDF + LR, static + LR, static full fine-tune, teacher + LR.

    python -m benchmarks classify --model PATH [--datasets sst2 trec banking77 emotion] [--train-sizes 1000 full]

For each dataset and training-set size (at most N stratified training texts, or the full training set) it fits
every method on the training split, scores accuracy on the test split, and times ``predict`` on the test texts
(CPU, the whole machine, after a warm-up; static methods on the test set repeated to at least
``--speed-texts`` texts). The fine-tuned model is timed through its numpy :class:`StaticPipeline` (the serving
path), and its predictions are checked against the torch model's. Results go to ``--out`` (Markdown) and the same
name with ``.json``, written once every result is in; while the run goes, the results so far are rewritten after each
one to ``OUT.partial.md`` and ``OUT.partial.json`` (``--from-json`` merges such files into one report), so an
interrupted run never replaces a finished report.
(Before the benchmarks were grouped by job the JSON needed ``--json PATH``, as the committed result's command shows.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.provenance import SOURCE_ROOT, provenance, provenance_markdown
from benchmarks.quality.data import load_classification, resolve_data_dir
from benchmarks.report import report_paths, write
from static_model.atomic_file import atomic_write

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    from distill import Teacher
    from static_model import StaticModel

# What each method of the table returns: accuracy, texts/s (None: not measured), fit seconds and notes.
MethodResult = tuple[float, float | None, float, dict]

DATASETS = {  # key: (folder under <data>/classification, display name)
    "trec": ("trec", "TREC"),
    "banking77": ("banking77", "Banking77"),
    "emotion": ("emotion", "Emotion"),
    "sst2": ("sst2", "SST-2"),
}
METHODS = {
    "tfidf": "TF-IDF + LR",
    "static-lr": "static + LR",
    "finetune": "static fine-tune",
    "teacher-lr": "teacher + LR",
}


# ----------------------------------------------------------------------------------------------- data
def find_data_dir(explicit: str | None = None) -> Path:
    """The data folder (``--data`` or the default); a usage error when it has no ``classification/``."""
    from distill.cli_checks import UsageError

    root = resolve_data_dir(explicit)
    if not (root / "classification").is_dir():
        raise UsageError(f"{root} has no classification/ folder: pass --data DIR (see shared/data/MANIFEST.md).")
    return root


def subsample(labels: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` indices, stratified when every class has two examples (else random)."""
    n = len(labels)
    if cap is None or cap >= n:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 and cap >= len(counts) else None
    idx, _ = train_test_split(np.arange(n), train_size=cap, stratify=stratify, random_state=seed)
    return np.sort(idx)


def drop_empty(texts: list[str], labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The texts that are not blank, with their labels."""
    keep = [i for i, t in enumerate(texts) if t.strip()]
    return [texts[i] for i in keep], labels[keep]


# ----------------------------------------------------------------------------------------------- timing
def throughput(fn: Callable[[list[str]], Any], texts: list[str], min_texts: int, repeats: int = 3) -> float:
    """Texts per second of ``fn`` on ``texts`` repeated to at least ``min_texts``; best of ``repeats`` after warm-up."""
    reps = max(1, -(-min_texts // max(1, len(texts))))
    batch = texts * reps
    fn(texts[: min(len(texts), 256)])  # warm-up (JIT, caches, thread pools)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


# ----------------------------------------------------------------------------------------------- methods
@dataclass
class Outcome:
    """One method on one dataset and training size: accuracy, throughput, fit time, notes."""
    dataset: str
    train_size: str
    method: str
    accuracy: float
    samples_per_s: float | None
    fit_s: float
    n_train: int
    n_test: int
    notes: dict = field(default_factory=dict)


def _logreg(seed: int, c: float) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=seed)


def fit_logreg(x: Any, y: np.ndarray, seed: int) -> Any:
    """Logistic regression with C picked from {0.1, 1, 10} on the training data, then refit on all of it.

    C is picked by 3-fold CV up to 5,000 texts, and on one stratified held-out split (10%, at most 2,000 texts)
    above that.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, StratifiedShuffleSplit

    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 3:
        return _logreg(seed, 1.0).fit(x, y)
    if len(y) <= 5000:
        cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    else:
        cv = StratifiedShuffleSplit(1, test_size=min(2000, len(y) // 10), random_state=seed)
    search = GridSearchCV(_logreg(seed, 1.0), {"C": [0.1, 1.0, 10.0]}, cv=cv, n_jobs=1)
    return search.fit(x, y).best_estimator_


class Runner:
    """The methods of the table, sharing one static model and one teacher (loaded once, on first use)."""
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seed = args.seed
        self.cache = Path(args.cache_dir)
        self._static: StaticModel | None = None
        self._teacher: Teacher | SentenceTransformer | None = None
        self.teacher_impl: str | None = None
        self._teacher_key: str | None = None

    # -- shared models
    @property
    def static(self) -> StaticModel:
        """The static model of ``--model``, loaded on first use."""
        if self._static is None:
            from static_model import StaticModel

            self._static = StaticModel.from_pretrained(self.args.model)
        return self._static

    @property
    def teacher(self) -> Teacher | SentenceTransformer:
        """The teacher of ``--teacher`` on CPU, loaded on first use."""
        if self._teacher is None:
            try:
                from distill import Teacher

                self._teacher = Teacher(self.args.teacher, device="cpu")
                self.teacher_impl = "distill.Teacher"
                encode = self._teacher.encode
                self._teacher_encode = lambda texts: encode(texts, batch_size=64)
            except ImportError:  # the distill package without Teacher: plain sentence-transformers
                from sentence_transformers import SentenceTransformer

                self._teacher = SentenceTransformer(str(self.args.teacher), device="cpu")
                self.teacher_impl = "sentence_transformers.SentenceTransformer"
                st = self._teacher
                self._teacher_encode = lambda texts: st.encode(texts, batch_size=64, convert_to_numpy=True)
        return self._teacher

    def teacher_encode(self, texts: list[str], tag: str) -> np.ndarray:
        """Teacher embeddings, cached on disk by text hash (the training sets are encoded once)."""
        digest = hashlib.sha1(("\n".join(texts) + self.teacher_key()).encode()).hexdigest()[:16]
        path = self.cache / f"teacher-{digest}.npy"  # by content: the test set is encoded once per dataset
        if path.exists():
            try:
                return np.load(path)
            except (OSError, ValueError, EOFError):  # a file cut short by a writer killed before writes were atomic
                pass
        emb = np.asarray(self._teacher_encode(texts))
        atomic_write(path, lambda handle: np.save(handle, emb))  # whole or not at all, even under kill -9
        return emb

    def teacher_key(self) -> str:
        """What the teacher cache is keyed by besides the texts: refinement's ``teacher_fingerprint`` (configs,
        tokenizer, pooling, weights) for a ``distill.Teacher``, so a changed teacher at one path never reads the old
        vectors; the ``--teacher`` name for a plain sentence-transformers model."""
        teacher = self.teacher
        if self._teacher_key is None:
            self._teacher_key = str(self.args.teacher)
            if self.teacher_impl == "distill.Teacher":
                from distill.refine.featurize import teacher_fingerprint

                self._teacher_key = f"teacher-fingerprint:{teacher_fingerprint(teacher)}"  # type: ignore[arg-type]
        return self._teacher_key

    # -- methods
    def tfidf(self, X: list[str], y: np.ndarray, X_test: list[str], y_test: np.ndarray) -> MethodResult:
        """TF-IDF + logistic regression: accuracy, texts/s, fit seconds and notes."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        start = time.perf_counter()
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        feats = vec.fit_transform(X)
        lr = fit_logreg(feats, y, self.seed)
        fit_s = time.perf_counter() - start
        pipe = make_pipeline(vec, lr)
        acc = float(np.mean(pipe.predict(X_test) == y_test))
        speed = throughput(pipe.predict, X_test, self.args.speed_texts)
        return acc, speed, fit_s, {"C": lr.C}

    def static_lr(self, X: list[str], y: np.ndarray, X_test: list[str], y_test: np.ndarray) -> MethodResult:
        """Logistic regression on static embeddings: accuracy, texts/s, fit seconds and notes."""
        start = time.perf_counter()
        lr = fit_logreg(self.static.encode(X), y, self.seed)
        fit_s = time.perf_counter() - start
        predict = lambda texts: lr.predict(self.static.encode(texts))  # noqa: E731
        acc = float(np.mean(predict(X_test) == y_test))
        speed = throughput(predict, X_test, self.args.speed_texts)
        return acc, speed, fit_s, {"C": lr.C}

    def finetune(self, X: list[str], y: np.ndarray, X_test: list[str], y_test: np.ndarray) -> MethodResult:
        """A fine-tuned StaticModelClassifier: accuracy, texts/s, fit seconds and notes."""
        from distill.classifier import StaticModelClassifier

        clf = StaticModelClassifier(self.static, verbose=int(self.args.progress), random_state=self.seed)
        start = time.perf_counter()
        clf.fit(X, y)
        fit_s = time.perf_counter() - start
        pipeline = clf.to_pipeline()
        predicted = pipeline.predict(X_test)
        agree = float(np.mean(predicted == clf.predict(X_test)))
        acc = float(np.mean(predicted == y_test))
        speed = throughput(pipeline.predict, X_test, self.args.speed_texts)
        notes = {"epochs": clf.n_epochs_, "best_epoch": clf.best_epoch_, "batch_size": clf.batch_size_,
                 "numpy_vs_torch_agreement": agree}
        return acc, speed, fit_s, notes

    def teacher_lr(self, X: list[str], y: np.ndarray, X_test: list[str], y_test: np.ndarray,
                   tag: str) -> MethodResult:
        """Logistic regression on teacher embeddings: accuracy, texts/s (or None), fit seconds and notes."""
        start = time.perf_counter()
        train_emb = self.teacher_encode(X, tag)
        lr = fit_logreg(train_emb, y, self.seed)
        fit_s = time.perf_counter() - start
        test_emb = self.teacher_encode(X_test, tag.split(":")[0] + ":test")
        acc = float(np.mean(lr.predict(test_emb) == y_test))
        speed = None
        if self.args.teacher_speed_texts:
            sample = X_test[: self.args.teacher_speed_texts]
            predict = lambda texts: lr.predict(self._teacher_encode(texts))  # noqa: E731
            speed = throughput(predict, sample, len(sample), repeats=1)
        return acc, speed, fit_s, {"C": lr.C, "teacher": self.teacher_impl}


def run_benchmark(args: argparse.Namespace, on_result: Callable[[list[Outcome]], None] | None = None) -> list[Outcome]:
    """Every method on every dataset and training size; ``on_result`` gets the outcomes so far after each one."""
    data_dir = find_data_dir(args.data)
    runner = Runner(args)
    outcomes: list[Outcome] = []
    sizes = [None if s == "full" else int(s) for s in args.train_sizes]
    splits = {}
    for key in args.datasets:
        ds = load_classification(data_dir / "classification" / DATASETS[key][0], DATASETS[key][1])
        splits[key] = (drop_empty(ds.train_texts, ds.train_labels), drop_empty(ds.test_texts, ds.test_labels))
    # The small size first, then method by method: the slow teacher runs on the full sets come last.
    for cap in sizes:
        for method in args.methods:
            for key in args.datasets:
                display = DATASETS[key][1]
                (X_all, y_all), (X_test, y_test) = splits[key]
                idx = subsample(y_all, cap, args.seed)
                X, y = [X_all[i] for i in idx], y_all[idx]
                size_name = "full" if cap is None or cap >= len(y_all) else str(cap)
                print(f"[classify] {display} train={size_name} ({len(X)}) {METHODS[method]} ...", file=sys.stderr,
                      flush=True)
                if method == "teacher-lr":
                    acc, speed, fit_s, notes = runner.teacher_lr(X, y, X_test, y_test, f"{key}-{size_name}:train")
                else:
                    fn = {"tfidf": runner.tfidf, "static-lr": runner.static_lr, "finetune": runner.finetune}[method]
                    acc, speed, fit_s, notes = fn(X, y, X_test, y_test)
                outcome = Outcome(display, size_name, method, acc, speed, fit_s, len(X), len(X_test), notes)
                print(f"[classify]   acc={acc:.4f} samples/s={speed or float('nan'):.0f} fit={fit_s:.1f}s {notes}",
                      file=sys.stderr, flush=True)
                outcomes.append(outcome)
                if on_result is not None:
                    on_result(outcomes)
    return outcomes


# ----------------------------------------------------------------------------------------------- report
def _fmt_speed(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def to_markdown(outcomes: list[Outcome], header: str) -> str:
    """Accuracy per training size, predict throughput and fit time, under ``header`` (Markdown lines)."""
    methods = [m for m in METHODS if any(o.method == m for o in outcomes)]
    datasets = list(dict.fromkeys(o.dataset for o in outcomes))
    sizes = list(dict.fromkeys(o.train_size for o in outcomes))
    get = {(o.dataset, o.train_size, o.method): o for o in outcomes}
    lines = ["# Classification: static fine-tune vs. baselines", "", header]
    for size in sizes:
        title = "full training set" if size == "full" else f"at most {size} training examples (stratified sample)"
        lines += [f"## Accuracy, {title}", "", "| dataset | n train | " + " | ".join(METHODS[m] for m in methods)
                  + " |", "|---|---:|" + "---:|" * len(methods)]
        for ds in datasets:
            row = [get.get((ds, size, m)) for m in methods]
            n_train = next((o.n_train for o in row if o), 0)
            cells = " | ".join(f"{o.accuracy * 100:.2f}" if o else "–" for o in row)
            lines.append(f"| {ds} | {f'{n_train:,}' if n_train else '–'} | " + cells + " |")
        means = []
        for m in methods:
            vals = [get[(ds, size, m)].accuracy for ds in datasets if (ds, size, m) in get]
            means.append(f"**{np.mean(vals) * 100:.2f}**" if len(vals) == len(datasets) else "–")
        lines += ["| **average** | | " + " | ".join(means) + " |", ""]
    lines += ["## Predict throughput (CPU samples/s, test texts, text → label)", "",
              "| dataset | train | " + " | ".join(METHODS[m] for m in methods) + " |",
              "|---|---|" + "---:|" * len(methods)]
    for size in sizes:
        for ds in datasets:
            row = [get.get((ds, size, m)) for m in methods]
            lines.append(f"| {ds} | {size} | " + " | ".join(_fmt_speed(o.samples_per_s) if o else "–" for o in row)
                         + " |")
    lines += ["", "## Fit time (s) and fine-tune details", "",
              "| dataset | train | " + " | ".join(METHODS[m] for m in methods)
              + " | fine-tune epochs (best) | numpy = torch |",
              "|---|---|" + "---:|" * len(methods) + "---:|---:|"]
    for size in sizes:
        for ds in datasets:
            row = [get.get((ds, size, m)) for m in methods]
            ft = get.get((ds, size, "finetune"))
            epochs = f"{ft.notes['epochs']} ({ft.notes['best_epoch']})" if ft else "–"
            agree = f"{ft.notes['numpy_vs_torch_agreement'] * 100:.1f}%" if ft else "–"
            lines.append(f"| {ds} | {size} | " + " | ".join(f"{o.fit_s:.1f}" if o else "–" for o in row)
                         + f" | {epochs} | {agree} |")
    lines.append("")
    return "\n".join(lines)


def merge_json(paths: list[str]) -> list[Outcome]:
    """Results of several runs (their JSON files); a later file wins for the same dataset, size and method."""
    merged: dict[tuple[str, str, str], Outcome] = {}
    for path in paths:
        for row in json.loads(Path(path).read_text(encoding="utf-8")):
            outcome = Outcome(**row)
            merged[(outcome.dataset, outcome.train_size, outcome.method)] = outcome
    return list(merged.values())


def run(args: argparse.Namespace) -> int:
    """Fit and score every method on every dataset and size (or merge ``--from-json`` files). The results so far
    are rewritten to ``OUT.partial.md`` and ``OUT.partial.json`` after every result (``partial_out``; what
    ``--from-json`` merges after an interrupted run); ``--out`` is written once every result is in, and the partial
    report is then removed, so a failed or interrupted run leaves an existing report whole."""
    from distill.cli_checks import UsageError

    meta = provenance(args.command_line)
    if args.from_json:
        if args.date:
            meta["date"] = args.date
        outcomes = merge_json(args.from_json)
        md = report(outcomes, args, meta)
        write(md, [asdict(o) for o in outcomes], args.out)
        print(md)
        return 0
    bad = [d for d in args.datasets if d not in DATASETS] + [m for m in args.methods if m not in METHODS]
    if bad:
        raise UsageError(f"unknown dataset/method: {bad}; datasets {list(DATASETS)}, methods {list(METHODS)}")
    for size in args.train_sizes:  # was int()'s ValueError traceback once the data folder was read
        if size != "full" and not (size.isdigit() and int(size) >= 1):
            raise UsageError(f"--train-sizes {size}: give a number of training texts (at least 1) or 'full'")
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # BLAS/OpenMP in numpy and scikit-learn too

    partial = partial_out(args.out)

    def save(outcomes: list[Outcome]) -> None:  # the results so far: never over a finished report at --out
        write(report(outcomes, args, meta), [asdict(o) for o in outcomes], partial)

    outcomes = run_benchmark(args, on_result=save)  # the partial report is rewritten after every result
    write(report(outcomes, args, meta), [asdict(o) for o in outcomes], args.out)
    for path in report_paths(partial):
        path.unlink(missing_ok=True)
    print(report(outcomes, args, meta))
    md_path, json_path = report_paths(args.out)
    print(f"[classify] wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


def partial_out(out: str) -> Path:
    """The report name of a run's results so far: ``OUT.partial`` beside ``--out``."""
    md_path, _ = report_paths(out)
    return md_path.with_name(md_path.stem + ".partial")


def report(outcomes: list[Outcome], args: argparse.Namespace, meta: dict) -> str:
    """The tables of ``outcomes`` under the run's header (``meta``: ``benchmarks.provenance.provenance``)."""
    runner_teacher = next((o.notes.get("teacher") for o in outcomes if o.method == "teacher-lr"), None)
    header = {
        "Static model": f"`{args.model}`",
        "Teacher": f"`{args.teacher}` via {runner_teacher}" if runner_teacher else "not run",
        "Protocol": "LR = scikit-learn LogisticRegression, C in {0.1, 1, 10} by 3-fold CV (one 10% held-out split "
                    "above 5,000 texts); TF-IDF = word 1-2 grams, "
                    "sublinear tf; fine-tune = `StaticModelClassifier` defaults (MLP 512 hidden, full table trained, "
                    "early stopping on a stratified 10% split), scored and timed through the numpy `StaticPipeline`; "
                    f"seed {args.seed}; throughput = best of 3 runs over the test texts repeated to ≥ "
                    f"{args.speed_texts:,} texts (teacher: {args.teacher_speed_texts} texts, one run)",
    }
    if args.note:
        header["Note"] = args.note
    if args.threads:
        header["Threads"] = (f"`--threads {args.threads}`: torch and BLAS limited to {args.threads} thread(s) "
                             "(the static model's numba pooling keeps its own threads)")
    return to_markdown(outcomes, provenance_markdown(meta) + "".join(f"- {k}: {v}\n" for k, v in header.items()))


def _default_model() -> str:
    models = SOURCE_ROOT / ".cache" / "models"
    for c in (models / "minilm-static", models / "m2v-minilm"):
        if (c / "model.safetensors").exists():
            return str(c)
    return str(models / "minilm-static")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``classify``."""
    p = subparsers.add_parser("classify", help="classification table: fine-tune vs. LR baselines",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=_default_model(), help="static model folder (default: %(default)s)")
    p.add_argument("--teacher", default="sentence-transformers/all-MiniLM-L6-v2")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), help=f"from {list(DATASETS)}")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"from {list(METHODS)}")
    p.add_argument("--train-sizes", nargs="+", default=["1000", "full"], help="caps on training texts, or 'full'")
    p.add_argument("--data", default=None, help="data folder holding classification/ (default: ../shared/data)")
    p.add_argument("--out", default=str(SOURCE_ROOT / "benchmarks" / "results" / "classify.md"),
                   help="the Markdown report; its JSON goes beside it (.json)")
    p.add_argument("--cache-dir", default=str(SOURCE_ROOT / ".cache" / "classify"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--speed-texts", type=int, default=20_000)
    p.add_argument("--teacher-speed-texts", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch threads for training (default: torch's)")
    p.add_argument("--progress", action="store_true", help="progress bars while fine-tuning")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="no run: write the report from the JSON of earlier runs (merged, later files win)")
    p.add_argument("--date", default=None, help="date line of a --from-json report")
    p.add_argument("--note", default=None, help="a line of notes for the report header")
    return p
