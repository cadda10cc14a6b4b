"""The model folder on disk: read it (ours, Model2Vec's, sentence-transformers' StaticEmbedding) and write it
atomically.

Reading treats the folder as untrusted input (see :mod:`static_model.safe_read`); writing never replaces a folder that
is not a model and swaps the new folder in atomically (see :mod:`static_model.atomic`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer

from static_model import atomic, hub
from static_model.atomic_file import file_identity
from static_model.model_card import CARD_FILE, render_model_card
from static_model.safe_read import (
    MAX_TOKENIZER_BYTES,
    parse_json,
    read_bytes,
    read_json,
    read_safetensors,
    safetensors_names,
)
from static_model.tokenization import check_unigram_pieces, post_processor_ids
from static_model.validation import check_bool, check_contrast, check_max_length

MODEL_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"  # marks a folder that sentence-transformers itself wrote
NORMALIZE_DIR = "1_Normalize"
ST_NESTED_DIR = "0_StaticEmbedding"
# What a model folder may hold (ours, a classifier pipeline's, Model2Vec's, sentence-transformers'): a folder holding
# anything else is never replaced by a save, not even with overwrite=True.
MODEL_ENTRIES = frozenset({
    MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE, MODULES_FILE, ST_CONFIG_FILE, NORMALIZE_DIR, ST_NESTED_DIR, "README.md",
    "head.safetensors", "head_config.json", "sentence_bert_config.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt",
})
MAX_ABS_VALUE = 1e6  # |table value * weight| bound: pooled sums and squared norms stay far from float32 overflow
# The smallest nonzero largest |table value * weight| of a row: squared norms stay far from float32 underflow (a row
# of 1e-25 pools to a zero vector once normalized)
MIN_ABS_VALUE = 1e-15
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4e38
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # 1.18e-38, the smallest normal value
MAX_TOKEN_ID = 2**31 - 2  # ids are int32 in the pooling kernel
_TENSOR_NAMES = {"embeddings", "embedding.weight", "weights", "mapping"}
# Known and unknown ASCII words: a tokenizer that fails on these fails on most texts (not only on rare characters a
# vocabulary without an unknown token may lack).
_PROBE_TEXTS = ["a b the qzxqv"]
_READ_ATTEMPTS = 5  # reads of a folder that saves keep replacing, before giving up
_T = TypeVar("_T")


@dataclass
class FolderContents:
    """What a model folder holds, read and checked. With a ``mapping`` (vocabulary quantization: token id → row of
    ``embeddings``), ``weights`` has one value per token id."""

    embeddings: np.ndarray
    weights: np.ndarray | None
    tokenizer: Tokenizer
    config: dict[str, Any]
    mapping: np.ndarray | None = None


# --------------------------------------------------------------------------- reading


def read_folder(path: str | os.PathLike, *, revision: str | None = None,
                token: str | bool | None = None) -> FolderContents:
    """Read a static model folder; every problem is an error naming the file and what is wrong. ``revision`` and
    ``token``: for a hub id (see :func:`static_model.hub.model_folder`)."""
    return read_consistently(path, _read_folder, revision=revision, token=token)


def read_consistently(path: str | os.PathLike, read: Callable[[Path], _T], *, revision: str | None = None,
                      token: str | bool | None = None) -> _T:
    """``read(folder)`` for the folder at ``path`` (``~`` expanded; a hub id that is no local path: its snapshot in
    the hub cache at ``revision``, downloaded with ``token`` when online, ``static_model.hub``), read again when a
    save swapped another version in meanwhile: the files are read one by one, and the result must never mix two
    versions of the folder."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    given = hub.model_folder(path, revision=revision, token=token)
    try:
        return _read_unmixed(given, read)
    except FileNotFoundError:  # a cached hub snapshot may lack a file another tool's download left out
        fresh = hub.refetch(path, revision=revision, token=token)
        if fresh is None:
            raise
    return _read_unmixed(fresh, read)


def _read_unmixed(given: Path, read: Callable[[Path], _T]) -> _T:
    """``read(folder)`` of the folder at ``given``, read again while a save swaps another version in meanwhile."""
    for _ in range(_READ_ATTEMPTS):
        folder = atomic.readable_path(given)
        before = file_identity(folder)
        try:
            result = read(folder)
        except Exception:
            if _unchanged(given, folder, before):  # the error is about the folder's files, not a swap
                raise
            continue
        if _unchanged(given, folder, before):
            return result
    raise ValueError(f"{given} was replaced by a save each of the {_READ_ATTEMPTS} times it was read; try again")


def _unchanged(given: Path, folder: Path, before: tuple[int, int, int] | None) -> bool:
    """Whether ``given`` is still read from ``folder``, and ``folder`` is still the folder it was."""
    return atomic.readable_path(given) == folder and file_identity(folder) == before


def _read_folder(folder: Path) -> FolderContents:
    """:func:`read_folder` for the folder at ``folder`` as it is now."""
    if not folder.is_dir():
        raise FileNotFoundError(f"No model folder at {folder}")
    nested = folder / ST_NESTED_DIR
    files = nested if not os.path.lexists(folder / MODEL_FILE) and os.path.lexists(nested / MODEL_FILE) else folder
    has_config = os.path.lexists(folder / CONFIG_FILE)
    if not has_config and not os.path.lexists(folder / ST_CONFIG_FILE):
        raise FileNotFoundError(f"{folder / CONFIG_FILE} is missing")
    config = check_config(read_json(folder / CONFIG_FILE, folder), folder / CONFIG_FILE) if has_config else {}
    if "normalize" not in config and os.path.lexists(folder / MODULES_FILE):  # sentence-transformers: if it says so
        modules = read_json(folder / MODULES_FILE, folder, kind=list)
        config["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))
    model_file = files / MODEL_FILE
    tensors = read_safetensors(model_file, folder, _TENSOR_NAMES)
    is_st = "embeddings" not in tensors and "embedding.weight" in tensors
    embeddings = tensors.get("embeddings", tensors.get("embedding.weight"))
    if embeddings is None:
        raise ValueError(_no_table_message(model_file, folder, tensors))
    if embeddings.ndim != 2:
        raise ValueError(f"{model_file}: embeddings must be a 2-D (vocab, dim) table; got shape {embeddings.shape}")
    config = _model2vec_keys(config, embeddings, folder / CONFIG_FILE)
    mapping = tensors.get("mapping")
    rows = len(embeddings) if mapping is None else _check_mapping(mapping, len(embeddings), model_file)
    tokenizer, max_id, n_ids, truncation = read_tokenizer(files / TOKENIZER_FILE, folder, rows, model_file)
    if not has_config and "max_length" not in config:
        # sentence-transformers' StaticEmbedding reads every token (its max_seq_length is infinite) unless its
        # tokenizer.json truncates: its folder keeps that, not the 512 a Model2Vec or our config falls back to
        config["max_length"] = truncation
    if mapping is not None:  # vocabulary quantization: token id → row, one entry per token id
        if len(mapping) != max_id + 1 or len(mapping) > 2 * n_ids:
            raise ValueError(f"{model_file}: 'mapping' has {len(mapping)} entries but {files / TOKENIZER_FILE} has "
                             f"{n_ids} token ids up to {max_id}")
        mapping = mapping.astype(np.int32)  # every value is a row below len(embeddings): checked above
    elif is_st and len(embeddings) > max_id + 1:  # sentence-transformers tables may carry rows no token reaches
        embeddings = embeddings[: max_id + 1]
    check_consistency(embeddings, tensors.get("weights"), tokenizer, config, source=files, mapping=mapping)
    if embeddings.dtype == np.float64:  # Model2Vec can store float64; we compute in float32 (checked: it fits)
        embeddings = embeddings.astype(np.float32)
    return FolderContents(embeddings, tensors.get("weights"), tokenizer, config, mapping)


def _no_table_message(model_file: Path, folder: Path, tensors: dict[str, np.ndarray]) -> str:
    """Why ``model_file`` is no static model's table: a transformer's weights (a teacher, to distill first) or other
    tensors, named."""
    names = safetensors_names(model_file, folder)
    words = [n for n in names if n.endswith("word_embeddings.weight")]
    if words:
        return (f"{model_file} holds a transformer's {len(names)} tensors (e.g. {words[0]!r}), not a static model's "
                "'embeddings' table: this is a teacher model; distill it first (`python -m distill "
                f"{folder} --output DIR`, the distill extra)")
    shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
    return f"{model_file} has no 'embeddings' tensor (found: {shown or 'none'})"


def check_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """The runtime settings of ``config.json`` in their types and ranges; an error names the file and the key."""
    config = dict(config)
    if "normalize" in config and config["normalize"] is None:  # null: the default
        del config["normalize"]
    checks: dict[str, Callable[[Any, str], Any]] = {
        "normalize": check_bool, "max_length": check_max_length, "contrast": check_contrast,
    }
    for key, check in checks.items():
        if key in config:
            try:
                config[key] = check(config[key], key)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {exc}") from None
    for key in ("dim", "vocab_size"):
        if key in config and (isinstance(config[key], bool) or not isinstance(config[key], int)):
            raise ValueError(f"{path}: {key} must be an integer; got {config[key]!r}")
    for key in ("dtype", "embedding_dtype"):
        if key in config and not isinstance(config[key], str):
            raise ValueError(f"{path}: {key} must be a string; got {config[key]!r}")
    return config


def _model2vec_keys(config: dict[str, Any], embeddings: np.ndarray, path: Path) -> dict[str, Any]:
    """A folder Model2Vec wrote last has ``embedding_dtype``; it keeps our ``dtype``/``dim`` keys but not up to date."""
    if "embedding_dtype" not in config:
        return config
    if config["embedding_dtype"] != embeddings.dtype.name:
        raise ValueError(f"{path} says embedding_dtype={config['embedding_dtype']} but the embeddings are "
                         f"{embeddings.dtype.name}")
    return {k: v for k, v in config.items() if k not in ("dtype", "dim")}


def _check_mapping(mapping: np.ndarray, rows: int, path: Path | str) -> int:
    """The token → row mapping (Model2Vec's vocabulary quantization): 1-D integers below ``rows``; returns its
    length."""
    if not isinstance(mapping, np.ndarray) or mapping.dtype.kind not in "iu" or mapping.ndim != 1 or mapping.size == 0:
        got = f"{mapping.dtype} of shape {mapping.shape}" if isinstance(mapping, np.ndarray) else type(mapping).__name__
        raise ValueError(f"{path}: 'mapping' must be a non-empty 1-D integer array; got {got}")
    low, high = int(mapping.min()), int(mapping.max())
    if low < 0 or high >= rows:
        raise ValueError(f"{path}: 'mapping' holds row {low if low < 0 else high}, outside the table's {rows} rows")
    return len(mapping)


def read_tokenizer(path: Path, folder: Path, rows: int, table: Path) -> tuple[Tokenizer, int, int, int | None]:
    """The tokenizer (padding and truncation off), its largest id, its number of ids and the truncation length the
    file sets (``None``: none); every id is checked against ``rows`` before parsing."""
    data = read_bytes(path, folder, MAX_TOKENIZER_BYTES)
    spec = parse_json(data, path)
    if not isinstance(spec, dict):
        raise ValueError(f"{path} is corrupt or not a tokenizers JSON file: not a JSON object")  # noqa: TRY004 (file content)
    ids = token_ids(spec, path)
    max_id = max(ids, default=-1)
    if max_id >= rows:
        raise ValueError(f"{path} has token ids up to {max_id} ({len(ids)} ids) but {table} has only {rows} rows")
    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        truncation = None if tokenizer.truncation is None else check_max_length(
            tokenizer.truncation["max_length"], "truncation.max_length")
        tokenizer.no_padding()  # as the runtime uses it (``prepare_tokenizer``)
        tokenizer.no_truncation()
        # a tokenizer that parses but cannot encode (a WordPiece vocabulary without its unknown token) fails here,
        # naming the file, rather than inside the first encode
        probe_tokenizer(tokenizer)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 (a pyo3 PanicException too)
        raise ValueError(f"{path} is corrupt or not a tokenizers JSON file: {exc}") from None
    return tokenizer, max_id, len(ids), truncation


def probe_tokenizer(tokenizer: Tokenizer) -> None:
    """Encode a few ordinary words (known and unknown) as the runtime does: a tokenizer that cannot (a WordPiece or
    WordLevel vocabulary without its unknown token) raises here, whatever the tokenizers library raises (callers turn
    it into an error naming the file or the argument)."""
    tokenizer.encode_batch_fast(_PROBE_TEXTS, add_special_tokens=False)


def check_tokenizer_argument(tokenizer: Tokenizer, name: str = "tokenizer") -> None:
    """:func:`probe_tokenizer` for a tokenizer given in memory: a ``ValueError`` naming the argument ``name``, the
    tokenizers library's own message and the usual cause, instead of that library's bare ``Exception`` on the first
    encode (a folder's ``tokenizer.json`` gets the same probe when it is read)."""
    from static_model.tokenization import prepare_tokenizer  # no cycle at import time

    try:
        probe_tokenizer(prepare_tokenizer(tokenizer))  # as the runtime uses it: without padding and truncation
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 (a pyo3 PanicException too)
        raise ValueError(
            f"{name} cannot encode text: encoding {_PROBE_TEXTS[0]!r} failed with {type(exc).__name__}: {exc}. A "
            "tokenizer must encode any text; is its unknown token (unk_token) missing from its vocabulary?"
        ) from None


def token_ids(spec: dict[str, Any], path: Path) -> set[int]:
    """Every token id ``tokenizer.json`` names (vocabulary, added tokens, post-processor), each a valid int32; the
    vocabulary and the added tokens give each id to one token (see :func:`check_distinct_ids`)."""
    pairs: list[tuple[Any, Any]] = []  # (token, id)
    model = spec.get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):  # WordPiece, BPE, WordLevel: token → id
        pairs.extend(vocab.items())
    elif isinstance(vocab, list):  # Unigram: [piece, score] entries, the position is the id
        pairs.extend((entry[0] if isinstance(entry, list) and entry else entry, i) for i, entry in enumerate(vocab))
    added = spec.get("added_tokens") or []
    if not isinstance(added, list):
        raise ValueError(f"{path}: added_tokens must be a list")  # noqa: TRY004 (file content)
    pairs.extend((token.get("content"), token.get("id")) for token in added if isinstance(token, dict))
    ids = [token_id for _, token_id in pairs] + post_processor_ids(spec.get("post_processor"))
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_ID:
            raise ValueError(f"{path} holds the token id {value!r}; ids must be integers from 0 to {MAX_TOKEN_ID}")
    check_unigram_pieces(spec, str(path))
    check_distinct_ids(pairs, str(path))
    return set(ids)


def check_distinct_ids(pairs: Iterable[tuple[Any, int]], where: str) -> None:
    """Each id belongs to one token (one pass over the ``(token, id)`` pairs): two tokens on one id would share an
    embedding row, and an added token whose id the vocabulary gives to another token gets a new id from the
    tokenizers library, not the row the file names. The same token listed twice with its id (a BERT vocabulary's
    ``[CLS]`` and its added token) is fine."""
    owner: dict[int, Any] = {}
    for token, token_id in pairs:
        other = owner.setdefault(token_id, token)
        if other != token:
            raise ValueError(f"{where} gives the id {token_id} to two tokens, {other!r} and {token!r}; each token "
                             "needs an id of its own (its own row of the table)")


def check_consistency(
    embeddings: np.ndarray,
    weights: np.ndarray | None,
    tokenizer: Tokenizer,
    config: dict[str, Any],
    source: Path | None = None,
    mapping: np.ndarray | None = None,
) -> None:
    """Shapes, dtypes, values and config must agree, and the tokenizer's ids must be exactly the table's rows (or,
    with a token ``mapping``, the mapping's entries, each a row of the table). A float64 table (and weights of any
    numeric dtype) are checked as they are, before the caller casts them to float32: a value float32 cannot hold is
    an error saying so (not a NaN or a zero row after the cast)."""
    where = f"{source / MODEL_FILE}: " if source else ""
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{where}embeddings must be a non-empty 2-D (vocab, dim) table; got shape {embeddings.shape}")
    if embeddings.dtype not in (np.float32, np.float16, np.int8, np.float64):
        raise ValueError(f"{where}embeddings dtype must be float32, float16 or int8; got {embeddings.dtype}")
    if mapping is not None:  # checked as the table it stands for: one row per token id
        _check_mapping(mapping, embeddings.shape[0], source / MODEL_FILE if source else "token_mapping")
        embeddings = embeddings[mapping]
    if weights is not None and weights.shape != (embeddings.shape[0],):
        raise ValueError(f"{where}weights has shape {weights.shape}; expected ({embeddings.shape[0]},), one per row")
    check_values(embeddings, weights, where)
    cfg = f"{source / CONFIG_FILE}" if source else "config"
    for key, actual in (("dim", embeddings.shape[1]), ("vocab_size", embeddings.shape[0])):
        if key in config and config[key] != actual:
            raise ValueError(f"{cfg} says {key}={config[key]!r} but the embeddings have {actual}")
    stored = "float32" if embeddings.dtype == np.float64 else embeddings.dtype.name  # float64 is cast once checked
    if "dtype" in config and config["dtype"] != stored:
        raise ValueError(f"{cfg} says dtype={config['dtype']} but the embeddings are {stored}")
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    tok = f"{source / TOKENIZER_FILE}" if source else "the tokenizer"
    if source is None:  # a folder's tokenizer.json was checked as written (token_ids), which finds more
        check_distinct_ids(vocab.items(), tok)
    id_space = max(vocab.values()) + 1 if vocab else 0
    if id_space != embeddings.shape[0]:
        raise ValueError(f"{tok} has {len(vocab)} token ids (0 to {id_space - 1}) but the embeddings have "
                         f"{embeddings.shape[0]} rows; they must match (is it another model's tokenizer?)")


def check_values(embeddings: np.ndarray, weights: np.ndarray | None, where: str = "") -> None:
    """Values the runtime can pool in float32 without overflow or silent zeros: finite weights and rows that float32
    holds (so a float64 table or weights can be cast), and for every row its largest ``|value * weight|`` either 0 or
    in ``[MIN_ABS_VALUE, MAX_ABS_VALUE]``. Each error names the tensor, the value and what to do."""
    if weights is not None:
        if not np.isfinite(weights).all():
            raise ValueError(f"{where}weights holds NaN or infinite values")
        _check_weights_range(weights, where)
    largest, smallest, smallest_row = 0.0, np.inf, -1
    step = max(1, 2**22 // max(1, embeddings.shape[1]))  # row blocks of ~4M values: no full float32 copy
    for lo in range(0, embeddings.shape[0], step):
        block = embeddings[lo : lo + step]
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported just below
            peak = np.abs(block.astype(np.float32) if block.dtype == np.int8 else block).max(axis=1).astype(np.float64)
        if not np.isfinite(peak).all():  # one pass: a NaN or infinity is its row's maximum
            raise ValueError(f"{where}embeddings hold NaN or infinite values")
        _check_table_range(peak, lo, embeddings.dtype, where)
        if weights is not None:
            peak *= np.abs(weights[lo : lo + step].astype(np.float64))
        largest = max(largest, float(peak.max()))
        nonzero = np.flatnonzero(peak)
        if nonzero.size and float(peak[nonzero].min()) < smallest:
            smallest_row = lo + int(nonzero[np.argmin(peak[nonzero])])
            smallest = float(peak[smallest_row - lo])
    if largest > MAX_ABS_VALUE:
        raise ValueError(f"{where}a table value times its weight reaches {largest:.3g}; at most {MAX_ABS_VALUE:g} is "
                         "allowed, so that pooling cannot overflow")
    if smallest < MIN_ABS_VALUE:
        i = smallest_row
        if weights is not None and np.abs(embeddings[i].astype(np.float64)).max() >= MIN_ABS_VALUE:
            culprit = f"weights[{i}] = {float(weights[i]):.3g} shrinks row {i} to a nonzero but tiny size"
        else:
            culprit = f"row {i} of embeddings is nonzero but tiny"
        raise ValueError(
            f"{where}{culprit}: its largest value (times its weight) is {smallest:.3g}, below {MIN_ABS_VALUE:g}; "
            "pooled in float32 its squares underflow and texts get zero vectors. Scale the weights (or the table) up "
            "by a common factor (normalized vectors do not change), or make such rows 0"
        )


def _check_weights_range(weights: np.ndarray, where: str) -> None:
    """Weights that float32 holds: a float64 weight beyond it would become infinite (a NaN vector), one below its
    normal range 0 (a zero vector) or lose its precision, once cast to the float32 the runtime uses."""
    _check_float32_range(
        np.abs(weights.astype(np.float64)), where, "weights holds values", lambda i: f"weights[{i}]",
        scale_down="Scale the weights down (and the table up by the same factor), or drop them",
        scale_up="Scale the weights up by a common factor (normalized vectors do not change), or set such weights to 0",
    )


def _check_table_range(peak: np.ndarray, lo: int, dtype: np.dtype, where: str) -> None:
    """Rows (their largest magnitudes ``peak``, from row ``lo``) that float32 holds: a float64 table is cast to it."""
    if dtype.itemsize <= 4:  # float32, float16, int8: in range by their type
        return
    _check_float32_range(
        peak, where, "embeddings hold values", lambda i: f"row {lo + i} of embeddings (its largest magnitude)",
        scale_down="Scale the table down (and its weights up by the same factor)",
        scale_up="Scale the table up (and its weights down by the same factor), or make such rows 0",
    )


def _check_float32_range(magnitudes: np.ndarray, where: str, subject: str, name: Callable[[int], str], *,
                         scale_down: str, scale_up: str) -> None:
    """Nonzero ``magnitudes`` within float32's normal range, which the runtime stores and computes in; else an error
    naming the first offending item (``name(i)``) and how to rescale."""
    if not magnitudes.size:
        return
    high = int(np.argmax(magnitudes))
    if magnitudes[high] > _FLOAT32_MAX:
        raise ValueError(
            f"{where}{subject} out of float32's range (±{_FLOAT32_MAX:.3g}), which the runtime stores and computes in: "
            f"the largest magnitude is {magnitudes[high]:.3g} ({name(high)}). {scale_down}"
        )
    nonzero = np.flatnonzero(magnitudes)
    if nonzero.size and float(magnitudes[nonzero].min()) < _FLOAT32_TINY:
        i = int(nonzero[np.argmin(magnitudes[nonzero])])
        raise ValueError(
            f"{where}{subject} too small for float32, which the runtime stores and computes in: {name(i)} = "
            f"{float(magnitudes[i]):.3g} is nonzero but below float32's smallest normal value ({_FLOAT32_TINY:.3g}), "
            f"so it would become 0 (a zero vector) or lose its precision. {scale_up}"
        )


# --------------------------------------------------------------------------- writing


def check_save_target(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """The resolved folder to save to, or an error: a folder that is not a model is never replaced, a model only
    with ``overwrite=True``; a missing or empty folder is always fine."""
    overwrite = check_bool(overwrite, "overwrite")
    target = atomic.resolve_target(path)
    atomic.recover(target)
    if check_replaceable(target) and not overwrite:
        raise FileExistsError(f"{target} already holds a model; pass overwrite=True to replace it")
    check_writable(target)
    return target


def check_writable(target: Path) -> None:
    """A save writes beside ``target`` and swaps the old folder out to delete it: a PermissionError now, naming the
    folder, rather than one naming a hidden staging folder later, or a write-protected model replaced anyway and its
    files left behind in a hidden folder that cannot be deleted."""
    blocker = next((p for p in target.parents if os.path.lexists(p) and not p.is_dir()), None)
    if blocker is not None:  # else mkdir names the missing folder below it, or the file, as "not a directory"
        raise NotADirectoryError(f"cannot save {target}: {blocker} is a file, not a folder")
    if target.parent.is_dir() and not os.access(target.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot save {target}: no permission to write in {target.parent}")
    if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        mode = stat.filemode(os.stat(target).st_mode)
        raise PermissionError(f"{target} is write-protected (mode {mode}) and a save replaces it as a whole: make it "
                              "writable or choose another folder")


def check_replaceable(target: Path) -> bool:
    """Whether ``target`` holds a model (``False``: it is missing or empty); an error if it holds anything else.

    Run before a save starts and again just before its swap, so that a folder something else filled meanwhile is
    not replaced either."""
    if not os.path.lexists(target):
        return False
    if not target.is_dir():
        if not os.path.lexists(target):  # gone meanwhile: a save with two renames is between them
            return False
        raise NotADirectoryError(f"{target} exists and is not a folder; a model is saved as a folder")
    entries = _current_entries(target)
    if not entries:
        return False
    foreign = [name for name in entries if name not in MODEL_ENTRIES]
    if foreign or not {MODEL_FILE, CONFIG_FILE, ST_NESTED_DIR} & set(entries):
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "") if foreign else ", ".join(entries)
        raise FileExistsError(f"{target} is not empty and is not a model folder (it holds {shown}); a save never "
                              "replaces such a folder, not even with overwrite=True: choose a new or empty folder")
    return True


def _current_entries(target: Path) -> list[str]:
    """The sorted entries of the folder at ``target`` now. A listing that another save's swap overtook read the old
    folder while that save deleted its files (a model folder seen holding only ``modules.json``, or nothing): it is
    listed again, until the folder listed is the one still at ``target``."""
    if os.name != "posix":  # pragma: no cover - Windows: no folder descriptors
        return sorted(os.listdir(target))
    for _ in range(_READ_ATTEMPTS):
        try:
            fd = os.open(target, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:  # gone (or a save is between its two renames, see static_model.atomic): missing
            return []
        try:
            entries = os.listdir(fd)
            listed = os.fstat(fd)
        finally:
            os.close(fd)
        now = file_identity(target)
        if now is None:
            return []
        if now[:2] == (listed.st_dev, listed.st_ino):
            return sorted(entries)
    raise FileExistsError(f"{target} was replaced by another save each of the {_READ_ATTEMPTS} times it was listed; "
                          "try the save again")


def write_folder(path: str | os.PathLike, contents: FolderContents, *, overwrite: bool = False) -> Path:
    """Write the folder atomically: ours, readable by Model2Vec and sentence-transformers (see
    :func:`check_save_target`)."""
    target = check_save_target(path, overwrite=overwrite)
    with atomic.atomic_folder(target, check=check_replaceable, replace=overwrite) as tmp:
        write_model_files(tmp, contents)
    return target


def write_model_files(folder: Path, contents: FolderContents) -> None:
    """The model's files in an existing empty ``folder`` (no swap: callers use :func:`atomic.atomic_folder`),
    with a ``README.md`` model card."""
    tensors = {"embeddings": np.ascontiguousarray(contents.embeddings)}
    if contents.weights is not None:
        tensors["weights"] = np.ascontiguousarray(contents.weights, dtype=np.float32)
    if contents.mapping is not None:  # Model2Vec's name; sentence-transformers >= 6.3 folds it in too
        tensors["mapping"] = np.ascontiguousarray(contents.mapping, dtype=np.int32)
    write_tensors(folder / MODEL_FILE, tensors, {"format": "np"})
    write_text(folder / TOKENIZER_FILE, contents.tokenizer.to_str())
    write_text(folder / CONFIG_FILE, json.dumps(contents.config, indent=2, sort_keys=True, default=json_value))
    modules = [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]
    if contents.config.get("normalize"):
        modules.append({"idx": 1, "name": "1", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"})
        (folder / NORMALIZE_DIR).mkdir()
    write_text(folder / MODULES_FILE, json.dumps(modules, indent=2))
    size = (folder / MODEL_FILE).stat().st_size
    write_text(folder / CARD_FILE, render_model_card(contents.config, size_bytes=size))


def json_value(value: Any) -> Any:
    """``json.dumps``'s ``default``: numpy scalars and arrays as Python values (``np.int64(3)`` is 3); anything else
    that JSON cannot hold is a TypeError naming its type."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__name__} ({value!r:.80}) cannot be written as JSON")


def write_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A safetensors file with the umask's permissions (``save_file`` alone makes it 0600), flushed to disk."""
    with open(path, "wb"):  # created the ordinary way: its mode is what the umask gives any new file
        pass
    mode = os.stat(path).st_mode & 0o777
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, mode)
    _fsync(path)


def write_text(path: Path, text: str) -> None:
    """A UTF-8 text file, flushed to disk."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
