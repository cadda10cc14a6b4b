"""The model folder on disk: read it (ours, Model2Vec's, sentence-transformers' StaticEmbedding) and write it atomically."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file
from tokenizers import Tokenizer

MODEL_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"  # marks a folder that sentence-transformers itself wrote
NORMALIZE_DIR = "1_Normalize"
ST_NESTED_DIR = "0_StaticEmbedding"


@dataclass
class FolderContents:
    """What a model folder holds, read and checked."""

    embeddings: np.ndarray
    weights: np.ndarray | None
    tokenizer: Tokenizer
    config: dict[str, Any]


def read_folder(path: str | os.PathLike) -> FolderContents:
    """Read a static model folder; every problem is an error naming the file and what is wrong."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"No model folder at {folder}")
    nested = folder / ST_NESTED_DIR
    files = nested if not (folder / MODEL_FILE).exists() and (nested / MODEL_FILE).exists() else folder
    has_modules = (folder / MODULES_FILE).exists()
    if not (folder / CONFIG_FILE).exists() and not (folder / ST_CONFIG_FILE).exists():
        raise FileNotFoundError(f"{folder / CONFIG_FILE} is missing")
    config = _read_config(folder / CONFIG_FILE) if (folder / CONFIG_FILE).exists() else {}
    if "normalize" not in config and has_modules:  # a sentence-transformers folder: normalized if it says so
        modules = _read_config(folder / MODULES_FILE, kind=list)
        config["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules if isinstance(m, dict))
    tensors = _read_tensors(files / MODEL_FILE)
    tokenizer = _read_tokenizer(files / TOKENIZER_FILE)
    embeddings = tensors.get("embeddings", tensors.get("embedding.weight"))
    if embeddings is None:
        raise ValueError(f"{files / MODEL_FILE} has no 'embeddings' tensor (found: {', '.join(tensors) or 'none'})")
    weights = tensors.get("weights")
    if "mapping" in tensors:  # Model2Vec vocabulary quantization: token id → row; materialize one row per token
        mapping = tensors["mapping"]
        if mapping.ndim != 1 or mapping.size and (mapping.min() < 0 or mapping.max() >= len(embeddings)):
            raise ValueError(f"{files / MODEL_FILE}: 'mapping' must be 1-D row indices below {len(embeddings)}")
        embeddings = embeddings[mapping]
    check_consistency(embeddings, weights, tokenizer, config, source=files)
    return FolderContents(embeddings, weights, tokenizer, config)


def check_consistency(
    embeddings: np.ndarray,
    weights: np.ndarray | None,
    tokenizer: Tokenizer,
    config: dict[str, Any],
    source: Path | None = None,
) -> None:
    """Shapes, dtypes and config must agree, and every token id must have a row."""
    where = f"{source / MODEL_FILE}: " if source else ""
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{where}embeddings must be a non-empty 2-D (vocab, dim) table; got shape {embeddings.shape}")
    if embeddings.dtype not in (np.float32, np.float16, np.int8):
        raise ValueError(f"{where}embeddings dtype must be float32, float16 or int8; got {embeddings.dtype}")
    if weights is not None and weights.shape != (embeddings.shape[0],):
        raise ValueError(f"{where}weights has shape {weights.shape}; expected ({embeddings.shape[0]},), one per row")
    if weights is not None and not np.isfinite(weights).all():
        raise ValueError(f"{where}weights holds NaN or infinite values")
    if embeddings.dtype != np.int8 and not np.isfinite(embeddings).all():
        raise ValueError(f"{where}embeddings hold NaN or infinite values")
    cfg = f"{source / CONFIG_FILE}" if source else "config"
    for key, actual in (("dim", embeddings.shape[1]), ("vocab_size", embeddings.shape[0])):
        if key in config and config[key] != actual:
            raise ValueError(f"{cfg} says {key}={config[key]} but the embeddings have {actual}")
    if "dtype" in config and config["dtype"] != embeddings.dtype.name:
        raise ValueError(f"{cfg} says dtype={config['dtype']} but the embeddings are {embeddings.dtype.name}")
    n_ids = tokenizer.get_vocab_size(with_added_tokens=True)
    if n_ids > embeddings.shape[0]:
        tok = f"{source / TOKENIZER_FILE}" if source else "the tokenizer"
        raise ValueError(f"{tok} has {n_ids} token ids but the embeddings have only {embeddings.shape[0]} rows")


def _read_config(path: Path, kind: type = dict) -> Any:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, kind):
        raise ValueError(f"{path} must hold a JSON {'object' if kind is dict else 'list'}, not {type(config).__name__}")
    return config


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{path} is corrupt or not a safetensors file: {exc}") from exc


def _read_tokenizer(path: Path) -> Tokenizer:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for bad JSON or unknown components
        raise ValueError(f"{path} is corrupt or not a tokenizers JSON file: {exc}") from exc


def write_folder(path: str | os.PathLike, contents: FolderContents) -> Path:
    """Write the folder atomically (see :func:`atomic_folder`): ours, readable by Model2Vec and sentence-transformers."""
    with atomic_folder(path) as tmp:
        tensors = {"embeddings": np.ascontiguousarray(contents.embeddings)}
        if contents.weights is not None:
            tensors["weights"] = np.ascontiguousarray(contents.weights, dtype=np.float32)
        save_file(tensors, str(tmp / MODEL_FILE), metadata={"format": "np"})
        _write_text(tmp / TOKENIZER_FILE, contents.tokenizer.to_str())
        _write_text(tmp / CONFIG_FILE, json.dumps(contents.config, indent=2, sort_keys=True))
        modules = [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]
        if contents.config.get("normalize"):
            modules.append({"idx": 1, "name": "1", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"})
            (tmp / NORMALIZE_DIR).mkdir()
        _write_text(tmp / MODULES_FILE, json.dumps(modules, indent=2))
    return Path(path)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` in one rename.

    If the body raises, the temporary folder is removed and whatever was at ``path`` is untouched. An existing
    folder is first moved aside and deleted only after the new one is in place.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    # plain mkdir (not tempfile.mkdtemp, which makes it 0700): the folder gets the umask's permissions, like any other
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        _fsync_dir(tmp)
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
