"""The refinement corpus (stage 0 of ``distill.refine``): passages from a text, JSONL or Parquet file, a Hugging Face
dataset, or an iterable.

A corpus is named explicitly; nothing is looked up beside the installed package. ``corpus_spec_error`` checks a
name cheaply before any model loads; ``read_corpus`` reads it:

- ``PATH`` (any other suffix): a text file, one passage a line (a ``text_field`` given for it is refused);
- ``PATH.jsonl`` (or ``.ndjson``, or ``.json``: ``datasets``' ``to_json`` writes JSON Lines there): one JSON object a
  line, the passage in ``text_field`` (default ``"text"``); a ``.json`` file holding one JSON array is refused;
- ``PATH.parquet``: the column ``text_field`` (needs ``pyarrow``: the ``parquet`` extra);
- ``hf:NAME[:CONFIG][@SPLIT]``: a Hugging Face dataset, streamed (needs ``datasets``, the ``hf`` extra, and a
  network), at most ``max_sentences`` passages (``HF_LINE_CAP`` when that is ``None``), the field ``text_field``.

No PyPI package was found that ships an English text corpus to use as a default, so ``default`` (or no corpus)
is an error that names these options (``NoDefaultCorpusError``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from distill.text_files import first_bad_utf8_line, json_object, not_utf8_error
from static_model.validation import is_int

logger = logging.getLogger(__name__)

# Used when a corpus file has a source sidecar naming them (as corpus_general/sentences.txt of the benchmark data
# does): those lines come first, then the rest, in file order: SciFact nDCG@10 +1.8 on its test claims, +2.2 on its
# train claims, the suite average +0.3 (benchmarks/results/refine_sources.md).
DEFAULT_PREFER_SOURCES = ("wikipedia_en_2015",)
DEFAULT_TEXT_FIELD = "text"
# MiniLM on a 2-core CPU: featurize ~140 passages/s (Wikipedia-first lines), train 62 s: a default run within ~20 min
DEFAULT_MAX_SENTENCES = 100_000
HF_PREFIX = "hf:"
HF_LINE_CAP = 100_000  # a streamed dataset is read at most this far when no max_sentences is given
CORPUS_OPTIONS = ("a text file (one passage a line), a .jsonl, .ndjson or .json file (one JSON object a line, the "
                  "passage in the text field, default 'text'), "
                  "a .parquet file (the text field's column; pip install 'static-embeddings[parquet]'), or "
                  "hf:NAME[:CONFIG][@SPLIT] for a Hugging Face dataset streamed when online "
                  "(pip install 'static-embeddings[hf]'), e.g. hf:wikitext:wikitext-103-raw-v1@train")


# JSON Lines under its usual names: ``datasets.Dataset.to_json`` writes it to ``.json``; read as a text file, each
# passage would be a row's JSON syntax (``{"text": "...", "id": 3}``), trained on without a word
SUFFIX_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
BOM = "\ufeff"


class NoDefaultCorpusError(ValueError):
    """No corpus was named and none ships with the package."""

    def __init__(self) -> None:
        super().__init__(f"no default refinement corpus ships with this package; name one: {CORPUS_OPTIONS}")


def passage_text(line: str) -> str:
    """``line`` without its surrounding whitespace and leading byte order marks: ``utf-8-sig`` drops only a file's
    first U+FEFF, and ``cat a.txt b.txt`` of two files saved with one puts the second at the start of a line."""
    return line.strip().lstrip(BOM).strip()


def corpus_kind(corpus: str | os.PathLike) -> str:
    """``"hf"``, ``"jsonl"``, ``"parquet"`` or ``"text"``: how ``read_corpus`` reads the name ``corpus``."""
    s = os.fspath(corpus)
    if s.startswith(HF_PREFIX):
        return "hf"
    suffix = Path(s).suffix.lower()
    return SUFFIX_KINDS.get(suffix, "text")


def corpus_spec_error(corpus: str | os.PathLike | None) -> str | None:
    """Why ``corpus`` cannot be read (a missing file, ``default``, an empty dataset name), else ``None``. Cheap:
    it reads nothing and loads no optional package."""
    if corpus is None or os.fspath(corpus) == "default":
        return str(NoDefaultCorpusError())
    kind = corpus_kind(corpus)
    if kind == "hf":
        name = os.fspath(corpus)[len(HF_PREFIX):]
        return None if parse_hf_name(name)[0] else f"corpus {corpus!r}: no dataset name after {HF_PREFIX!r}"
    path = Path(corpus).expanduser()
    if path.is_dir():
        return f"corpus {path} is a folder, not a file (a corpus is {CORPUS_OPTIONS})"
    if path.exists() and not path.is_file():  # a pipe or device: a corpus file is read more than once
        return f"corpus {path} is not a regular file (a pipe or a device cannot be read twice); save it to a file"
    if not path.is_file():
        return f"corpus file {path} does not exist (a corpus is {CORPUS_OPTIONS})"
    return None


def check_text_field(
    corpus: str | os.PathLike | Iterable[str], text_field: str | None, option: str = "text_field"
) -> None:
    """A ``ValueError`` naming ``option`` when a text field is given (not ``None``) for a corpus that has no fields,
    a text file (one passage a line) or an iterable of passages, where it would be ignored; or when it is no field
    name (an empty string read as the default field before)."""
    if text_field is None:
        return
    if not isinstance(text_field, str) or not text_field.strip():
        raise ValueError(f"{option} must be a field name (a non-empty string), got {text_field!r}; leave it out for "
                         f"the default field {DEFAULT_TEXT_FIELD!r}")
    if isinstance(corpus, (str, os.PathLike)):
        if corpus_kind(corpus) != "text":
            return
        what = f"{os.fspath(corpus)} is a text file (one passage a line)"
    else:
        what = "the corpus is an iterable of passages"
    raise ValueError(
        f"{option} {text_field!r} applies to JSONL, Parquet and Hugging Face dataset corpora only; {what}: leave it out"
    )


def parse_hf_name(name: str) -> tuple[str, str | None, str]:
    """``NAME[:CONFIG][@SPLIT]`` -> (name, config or None, split, default ``train``)."""
    name, _, split = name.partition("@")
    name, _, config = name.partition(":")
    return name.strip(), (config.strip() or None), (split.strip() or "train")


def read_corpus(corpus: str | os.PathLike | Iterable[str] | None, max_sentences: int | None = None,
                prefer_sources: Sequence[str] | None = (), *, text_field: str | None = None) -> list[str]:
    """Passages from a corpus name (see the module docstring) or an iterable of strings, stripped of surrounding
    whitespace and leading BOMs (``passage_text``); blank ones are skipped.

    ``prefer_sources``: names from a text file's source sidecar (``<stem>.source.txt``: one source name a line,
    line for line with the corpus, as ``corpus_general/sentences.source.txt``): every passage of those sources
    is taken first, then the others fill up to ``max_sentences``; the result keeps the file's order. ``None``:
    ``DEFAULT_PREFER_SOURCES`` when the file has a sidecar that names them, else none.
    """
    if max_sentences is not None and not is_int(max_sentences):  # 1.5 read 2 passages, True read 1
        raise TypeError(f"max_sentences must be a whole number or None, got {max_sentences!r}")
    if max_sentences is not None and max_sentences < 1:
        raise ValueError(f"max_sentences must be positive, got {max_sentences}")
    if isinstance(prefer_sources, str):
        prefer_sources = (prefer_sources,)
    if corpus is None or (isinstance(corpus, str) and corpus == "default"):
        raise NoDefaultCorpusError()
    check_text_field(corpus, text_field)
    if isinstance(corpus, (str, os.PathLike)):
        problem = corpus_spec_error(corpus)
        if problem:
            raise ValueError(problem)
        kind = corpus_kind(corpus)
        prefer_sources = resolve_prefer_sources(corpus, prefer_sources)
        if prefer_sources and kind != "text":
            raise ValueError(f"prefer_sources needs a text corpus file with a source sidecar, not a {kind} corpus")
        if kind == "text":
            lines = _read_text(Path(corpus).expanduser(), max_sentences, tuple(prefer_sources))
        else:
            field = DEFAULT_TEXT_FIELD if text_field is None else text_field
            source = {"jsonl": _jsonl_texts, "parquet": _parquet_texts, "hf": _hf_texts}[kind]
            cap = max_sentences if max_sentences is not None or kind != "hf" else HF_LINE_CAP
            lines = _clean(source(os.fspath(corpus), field), cap)
    else:
        if isinstance(corpus, (bytes, bytearray)):
            raise TypeError("corpus must be a path or an iterable of str")
        if prefer_sources:
            raise ValueError("prefer_sources needs a corpus file with a source sidecar, not an iterable")
        lines = _clean(corpus, max_sentences)
    out = [line for _, line in lines]
    if not out:
        name = f" {os.fspath(corpus)}" if isinstance(corpus, (str, os.PathLike)) else ""
        raise ValueError(f"The corpus{name} holds no non-empty passage.")
    return out


def count_distinct_passages(corpus: str | os.PathLike, stop_at: int, max_sentences: int | None = None, *,
                            text_field: str | None = None) -> int:
    """Distinct non-blank passages among the first ``max_sentences`` of a text, JSONL or Parquet corpus file, in file
    order, counted up to ``stop_at`` (reading stops there: a cheap lower bound on what ``read_corpus`` returns)."""
    kind = corpus_kind(corpus)
    if kind not in ("text", "jsonl", "parquet"):
        raise ValueError(f"count_distinct_passages reads a corpus file, not a {kind} corpus")
    check_text_field(corpus, text_field)
    seen: set[str] = set()
    taken = 0

    def count(texts: Iterable[str]) -> None:
        nonlocal taken
        for text in texts:
            text = passage_text(text)
            if not text:
                continue
            taken += 1
            seen.add(text)
            if len(seen) >= stop_at or (max_sentences is not None and taken >= max_sentences):
                return

    if kind == "text":
        path = Path(corpus).expanduser()
        with open(path, encoding="utf-8-sig") as f, _utf8_errors(path):
            count(f)
    else:
        source = _jsonl_texts if kind == "jsonl" else _parquet_texts
        count(source(os.fspath(corpus), DEFAULT_TEXT_FIELD if text_field is None else text_field))
    return len(seen)


def resolve_prefer_sources(
    corpus: str | os.PathLike | Iterable[str] | None, prefer_sources: Sequence[str] | str | None
) -> tuple[str, ...]:
    """The sources ``read_corpus`` takes first: ``prefer_sources`` itself, or for ``None`` the
    ``DEFAULT_PREFER_SOURCES`` that a text corpus file's sidecar names (none for anything else)."""
    if prefer_sources is None:
        if not isinstance(corpus, (str, os.PathLike)) or corpus_spec_error(corpus) is not None:
            return ()
        return default_prefer_sources(Path(corpus)) if corpus_kind(corpus) == "text" else ()
    return (prefer_sources,) if isinstance(prefer_sources, str) else tuple(prefer_sources)


def default_prefer_sources(path: Path) -> tuple[str, ...]:
    """``DEFAULT_PREFER_SOURCES`` if ``path``'s source sidecar names any of them, else ``()``."""
    side = source_sidecar(Path(path).expanduser())
    if not side.is_file():
        return ()
    wanted = set(DEFAULT_PREFER_SOURCES)
    with open(side, encoding="utf-8-sig") as f:  # a BOM (saved by Notepad) is not part of the first line's name
        found = {passage_text(line) for line in f} & wanted
    return tuple(s for s in DEFAULT_PREFER_SOURCES if s in found)


def _read_text(path: Path, max_sentences: int | None, prefer_sources: tuple[str, ...]) -> list[tuple[int, str]]:
    with open(path, encoding="utf-8-sig") as f, _utf8_errors(path):
        lines = _clean(f, None if prefer_sources else max_sentences)
    if prefer_sources:
        lines = _preferred_first(path, lines, set(prefer_sources), max_sentences)
    return lines


def _jsonl_texts(path: str, field: str) -> Iterator[str]:
    with open(Path(path).expanduser(), encoding="utf-8-sig") as f, _utf8_errors(Path(path).expanduser()):
        first = True
        for i, line in enumerate(f, 1):
            line = line.lstrip(BOM)  # a second file's BOM, after `cat a.jsonl b.jsonl`: json.loads refuses it
            if not line.strip():
                continue
            if first and line.lstrip().startswith("["):
                raise ValueError(f"{path}: a JSON array, not JSON Lines; write one JSON object a line, the passage "
                                 f"in its {field!r} field")
            first = False
            yield _field(json_object(line, f"{path} line {i}"), field, f"{path} line {i}")


@contextmanager
def _utf8_errors(path: Path) -> Iterator[None]:
    """Turn a ``UnicodeDecodeError`` while reading ``path`` into a ``ValueError`` naming the file and the line:
    a corpus that is not UTF-8 is refused, never read with replacement characters."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ValueError(f"corpus file {path}: {not_utf8_error(path, first_bad_utf8_line(path), exc.reason)}") \
            from None


def _field(row: object, field: str, where: str) -> str:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a JSON object was expected, got {type(row).__name__}")  # noqa: TRY004 - bad data
    if field not in row:
        raise ValueError(f"{where}: no field {field!r} (fields: {', '.join(map(str, row)) or 'none'}); "
                         "choose one with the text field option")
    value = row[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} is {type(value).__name__}, not text")  # noqa: TRY004 - bad data
    return unicode_text(value, f"{where}: field {field!r}")


def unicode_text(text: str, where: str) -> str:
    """``text``, when it is valid Unicode; a ``ValueError`` starting with ``where`` when it holds an unpaired UTF-16
    surrogate (a JSON ``"\\ud800"`` escape, half an emoji cut by a scraper): the teacher's tokenizer cannot take it
    and raised a bare ``TypeError`` after the teacher had loaded. Not a ``str`` (bytes, None): a ``TypeError``."""
    if not isinstance(text, str):
        raise TypeError(f"{where} is {type(text).__name__}, not a str; decode bytes first (text.decode('utf-8'))")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where} holds an unpaired surrogate ({text[exc.start]!r} at character {exc.start}), "
                         "not valid Unicode text; remove or repair it") from None
    return text


def _parquet_texts(path: str, field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"reading {path} needs pyarrow: pip install 'static-embeddings[parquet]'") from None
    try:
        pf = pq.ParquetFile(Path(path).expanduser())
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types for a file that is not Parquet
        raise ValueError(f"{path}: not a Parquet file ({type(exc).__name__}: {exc})") from None
    names = pf.schema_arrow.names
    if field not in names:
        raise ValueError(
            f"{path}: no column {field!r} (columns: {', '.join(names)}); choose one with the text field option")
    for batch in pf.iter_batches(columns=[field], batch_size=8192):
        for value in batch.column(0).to_pylist():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{path}: column {field!r} holds {type(value).__name__}, not text")
            yield value or ""


def _hf_texts(spec: str, field: str) -> Iterator[str]:
    name, config, split = parse_hf_name(spec[len(HF_PREFIX):])
    try:
        import datasets
    except ImportError:
        raise ValueError(f"corpus {spec!r} needs the datasets package: pip install 'static-embeddings[hf]'") from None
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
        rows = iter(ds)
        first = next(rows, None)
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, bad config: datasets raises many types
        raise ValueError(f"corpus {spec!r}: could not stream the Hugging Face dataset {name!r} (config {config}, "
                         f"split {split}): {type(exc).__name__}: {exc}. Offline? Pass a local file instead: "
                         f"{CORPUS_OPTIONS}") from None
    if first is None:
        return
    yield _field(first, field, f"{spec} row 0")
    i = 0
    while True:  # a stream that breaks later (the network drops, a bad shard) is one error too, not a traceback
        try:
            row = next(rows, None)
        except Exception as exc:  # noqa: BLE001 - aiohttp, fsspec, pyarrow and hub errors, as for the first row
            raise ValueError(f"corpus {spec!r}: the stream of the Hugging Face dataset {name!r} broke after {i + 1} "
                             f"rows ({type(exc).__name__}: {exc}); run again, or pass a local file: "
                             f"{CORPUS_OPTIONS}") from None
        if row is None:
            return
        i += 1
        yield _field(row, field, f"{spec} row {i}")


def _clean(source: Iterable[str], max_sentences: int | None) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines, at most ``max_sentences``."""
    out: list[tuple[int, str]] = []
    skipped = 0
    for i, line in enumerate(source):
        line = passage_text(unicode_text(line, f"corpus item {i}"))
        if line:
            out.append((i, line))
            if max_sentences is not None and len(out) >= max_sentences:
                break
        else:
            skipped += 1
    if skipped:  # blank lines, empty or null text fields: said, not silently dropped
        logger.info("corpus: %d blank passage(s) skipped (blank lines, empty or null text fields)", skipped)
    return out


def source_sidecar(path: Path) -> Path:
    """``sentences.txt`` -> ``sentences.source.txt``."""
    return path.with_suffix(".source.txt")


def _preferred_first(path: Path, lines: list[tuple[int, str]], preferred: set[str],
                     max_sentences: int | None) -> list[tuple[int, str]]:
    side = source_sidecar(path)
    if not side.is_file():
        raise ValueError(f"prefer_sources needs {side} (one source name a line, line for line with {path.name}); "
                         "it does not exist.")
    with open(side, encoding="utf-8-sig") as f:  # a BOM is not part of the first line's source name
        names = [passage_text(line) for line in f]
    last = lines[-1][0] if lines else -1
    if len(names) <= last:
        raise ValueError(f"{side} has {len(names)} lines, fewer than {path.name} ({last + 1}).")
    unknown = preferred - set(names)
    if unknown:
        raise ValueError(f"prefer_sources {sorted(unknown)} never occur in {side}.")
    first = [x for x in lines if names[x[0]] in preferred]
    rest = [x for x in lines if names[x[0]] not in preferred]
    return sorted((first + rest)[:max_sentences])
