"""Export a static model, or a classifier pipeline, to ONNX (``python -m static_model.onnx MODEL OUT``).

The graph takes what any tokenizer front end gives: ``input_ids`` and ``attention_mask`` (int64, batch x sequence,
padded), with or without special tokens. It applies the runtime's own rules, so ONNX Runtime, Transformers.js or
FastEmbed get :meth:`StaticModel.encode`'s vectors: special tokens (those the tokenizer marks special and those its
post-processor adds) and unknown tokens are left out, at most ``max_length`` of the remaining tokens count, their
rows (``embeddings * weights`` in float32; a float16 or int8 table stays in its dtype in the graph, so the file is
about the model's size, and its looked-up rows are cast; through the token mapping of a vocabulary-quantized model,
whose shared rows stay shared in the graph) are averaged, plain or contrast-weighted (the model's ``contrast``), and
L2-normalized when the model normalizes. Outputs: ``sentence_embedding`` for a model; ``logits``, ``probabilities``
and, single-label, ``label_index`` for a pipeline (``labels.json``: the labels, multi-label flag, label format and
threshold, as the pipeline folder's ``head_config.json`` records them). The tokenizer is written beside the graph.
One case differs from the runtime: a text that spells out a special token (``"[MASK]"``) has that token averaged by
the runtime, while the graph, which cannot tell it from one the front end added, leaves it out. Needs the ``onnx``
extra (``pip install "static-embeddings[onnx]"``); onnx is imported only here, never by ``static_model`` itself.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tokenizers import Tokenizer

from static_model import atomic, persistence
from static_model.model import StaticModel
from static_model.safe_read import MAX_TOKENIZER_BYTES, read_bytes
from static_model.validation import check_bool

if TYPE_CHECKING:  # pragma: no cover
    from static_model.pipeline import StaticPipeline

OPSET = 18
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
MAX_GRAPH_BYTES = 2**31 - 2**20  # protobuf's 2 GiB limit on one message, less room for the graph's nodes
_INSTALL_HINT = 'ONNX export needs onnx: pip install "static-embeddings[onnx]"'


def export_onnx(model: StaticModel | StaticPipeline, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the folder ``path`` (``~`` expanded) holding ``model.onnx`` and ``tokenizer.json`` (and ``labels.json``
    for a pipeline), with the guarantees of :meth:`StaticModel.save_pretrained`: the new folder is written beside
    ``path`` and swapped in atomically, so ``path`` holds the old folder or the new one, never a mix, even if the
    process is killed at any instant; a failed export leaves it as it was.

    A missing or empty folder is written; an earlier export is replaced only with ``overwrite=True``. With
    ``overwrite=True`` the folder of this very model (the static model or pipeline folder it was loaded from:
    ``python -m static_model.onnx MODEL MODEL --overwrite``) gets the export beside its files, which stay as they
    are (its ``tokenizer.json`` is the graph's); a folder holding another model is refused (its files and the graph
    would disagree), and a folder holding anything else is never replaced, not even with ``overwrite=True``.
    """
    from static_model.pipeline import StaticPipeline

    if not isinstance(model, (StaticModel, StaticPipeline)):
        raise TypeError(f"model must be a StaticModel or a StaticPipeline, not {type(model).__name__}")
    overwrite = check_bool(overwrite, "overwrite")
    target = atomic.resolve_target(path)
    atomic.recover(target)
    kind = _target_kind(target, overwrite)  # before any work: fail fast
    persistence.check_writable(target)
    helper, numpy_helper, checker = _import_onnx()
    files = _export_files(model, helper, numpy_helper, check=checker.check_model)
    snapshot = None
    if kind == _MODEL_FOLDER:
        snapshot = _snapshot(target)  # before it is read: a save from now on is seen at the swap
        _check_same_model(target, files, helper, numpy_helper)

    def check(folder: Path) -> None:  # again just before the swap: the folder may have changed meanwhile
        now = _target_kind(folder, overwrite)
        if kind == _MODEL_FOLDER and (now != _MODEL_FOLDER or _snapshot(folder) != snapshot):
            raise FileExistsError(f"{folder} changed while the export was written; it was left as it is: export again")
        if kind != _MODEL_FOLDER and now == _MODEL_FOLDER:
            raise FileExistsError(f"{folder} got a model while the export was written; it was left as it is")

    with atomic.atomic_folder(target, check=check, replace=overwrite) as staging:
        if kind == _MODEL_FOLDER:  # the model's own files, as they are (hard links where the file system allows)
            _copy_entries(target, staging, skip=EXPORT_FILES - {TOKENIZER_FILE})
        for name, data in files.items():
            if not (staging / name).exists():
                _write_file(staging / name, data)
    return target


_NEW, _EXPORT, _MODEL_FOLDER = "new", "export", "model"
EXPORT_FILES = frozenset({MODEL_FILE, TOKENIZER_FILE, LABELS_FILE})


def _target_kind(target: Path, overwrite: bool) -> str:
    """What the folder ``target`` holds: nothing (``"new"``), an earlier export, or a model folder (perhaps with
    its export); an error if it is not to be written (see :func:`export_onnx`)."""
    if not os.path.lexists(target):
        return _NEW
    if not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    entries = sorted(os.listdir(target))
    if not entries:
        return _NEW
    if set(entries) <= EXPORT_FILES:
        if not overwrite:
            raise FileExistsError(f"{target} already holds an ONNX export; pass overwrite=True (--overwrite) to "
                                  "replace it")
        return _EXPORT
    foreign = [name for name in entries if name not in persistence.MODEL_ENTRIES | EXPORT_FILES]
    markers = {persistence.MODEL_FILE, persistence.CONFIG_FILE, persistence.ST_NESTED_DIR}
    if foreign or not markers & set(entries):
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "") if foreign else ", ".join(entries)
        raise FileExistsError(
            f"{target} holds other files than a model's or an ONNX export's ({shown}); an export replaces the folder "
            "as a whole, so it never writes there, not even with overwrite=True: choose a new or empty folder"
        )
    if not overwrite:
        raise FileExistsError(f"{target} holds a model; pass overwrite=True (--overwrite) to add the export beside "
                              "its files (only the export of that same model)")
    return _MODEL_FOLDER


def _export_files(model: StaticModel | StaticPipeline, helper: Any, numpy_helper: Any, *,
                  check: Any = None) -> dict[str, bytes]:
    """The export's files (name → bytes): the graph (checked by ``check`` when given), the tokenizer and, for a
    pipeline, the labels."""
    from static_model.pipeline import StaticPipeline, config_json

    _check_graph_size(model)
    if isinstance(model, StaticPipeline):
        graph_model, labels = _pipeline_graph(model, helper, numpy_helper)
        encoder = model.model
    else:
        graph_model, labels = _encoder_graph(model, helper, numpy_helper), None
        encoder = model
    if check is not None:
        check(graph_model)
    files = {MODEL_FILE: graph_model.SerializeToString(), TOKENIZER_FILE: encoder.tokenizer.to_str().encode("utf-8")}
    if labels is not None:  # written as the pipeline folder's head_config.json writes them
        files[LABELS_FILE] = config_json(labels).encode("utf-8")
    return files


def _check_graph_size(model: StaticModel | StaticPipeline) -> None:
    """A ``ValueError`` before any work if the graph's tables would pass the 2 GB one ONNX file (a protobuf message)
    holds: building it took seconds and gigabytes, then failed with protobuf's bare ``EncodeError``."""
    from static_model.pipeline import StaticPipeline

    encoder = model.model if isinstance(model, StaticPipeline) else model
    vocab, dim = encoder.vocab_size, encoder.dim
    size = _row_table_bytes(encoder)
    size += vocab * 4 * (2 if encoder.contrast > 0 else 1)  # the kept-token mask, the row norms
    if isinstance(model, StaticPipeline):
        size += sum(w.size * 4 + b.size * 4 for w, b in model.layers)
    if size > MAX_GRAPH_BYTES:
        raise ValueError(
            f"the ONNX graph of this model would hold {size / 1e9:.2f} GB of tables ({vocab:,} token ids x "
            f"{dim:,} dimensions, {encoder.dtype}), over the {MAX_GRAPH_BYTES / 1e9:.2f} GB one ONNX file can hold "
            "(protobuf's limit); export a smaller model, e.g. model.truncate_dims(...) or model.quantize('int8')"
        )


def _row_table_bytes(model: StaticModel) -> int:
    """Bytes of the graph's row tables (see :func:`_token_row_nodes`): the rows in the table's dtype (a float32
    table's with its weights folded in), float32 weights per token id where they are not folded in, and a
    vocabulary-quantized model's int32 mapping."""
    vocab, itemsize = model.vocab_size, model.embeddings.dtype.itemsize
    if model.token_mapping is not None:  # shared rows, an int32 mapping and float32 weights per token id
        return len(model.embeddings) * model.dim * itemsize + vocab * 8
    weights = vocab * 4 if itemsize < 4 and model.weights is not None else 0
    return vocab * model.dim * itemsize + weights


def _check_same_model(target: Path, files: dict[str, bytes], helper: Any, numpy_helper: Any) -> None:
    """The model folder ``target`` must hold the exported model itself (as the export sees it: the same graph,
    tokenizer and labels as ``files``), and its ``tokenizer.json`` (kept, and the graph's) that model's tokenizer,
    else its files and the export beside them would disagree."""
    from static_model.pipeline import HEAD_FILE, StaticPipeline
    from static_model.tokenization import prepare_tokenizer

    loader = StaticPipeline if (target / HEAD_FILE).is_file() else StaticModel
    try:
        saved = loader.from_pretrained(target)
    except (ValueError, TypeError, OSError) as exc:
        raise FileExistsError(f"{target} holds a model folder that cannot be read ({exc}); the export is written "
                              "beside a model's files only for that same model: choose a new or empty folder") from None
    theirs = _export_files(saved, helper, numpy_helper)  # built only to be compared
    if any(theirs.get(name) != files.get(name) for name in EXPORT_FILES):
        raise FileExistsError(
            f"{target} holds another model than the one exported (its {type(saved).__name__} would give another "
            "graph, tokenizer or labels); exporting there would mix two models' files: choose a new or empty folder, "
            "or export the model loaded from that folder"
        )
    if os.path.lexists(target / TOKENIZER_FILE):  # the one kept (a sentence-transformers folder may nest its own)
        try:  # read as a load reads it: only a regular file in the folder, its size capped
            data = read_bytes(target / TOKENIZER_FILE, target, MAX_TOKENIZER_BYTES).decode("utf-8")
            kept = prepare_tokenizer(Tokenizer.from_str(data)).to_str().encode("utf-8")
        except Exception:  # noqa: BLE001 (any error reading or parsing it: it is not the model's tokenizer)
            kept = b""
        if kept != files[TOKENIZER_FILE]:
            raise FileExistsError(f"{target / TOKENIZER_FILE} is not the tokenizer of the model in {target}; the "
                                  "export would use it: choose a new or empty folder")


def _snapshot(folder: Path) -> tuple:
    """What changes when something replaces or rewrites the folder or anything in it."""
    info = os.stat(folder)
    entries = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs + names):
            path = os.path.join(root, name)
            entry = os.lstat(path)
            entries.append((os.path.relpath(path, folder), entry.st_ino, entry.st_size, entry.st_mtime_ns))
    return info.st_dev, info.st_ino, tuple(entries)


def _copy_entries(source: Path, destination: Path, skip: frozenset[str]) -> None:
    """``source``'s entries (but ``skip``) into ``destination``: files hard-linked (a model's files are never changed
    in place; a save swaps a new folder in) or, where that fails, copied and flushed to disk; links stay links."""
    for name in sorted(os.listdir(source)):
        if name in skip:
            continue
        src, dst = source / name, destination / name
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        elif src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            _link_or_copy(str(src), str(dst))


def _link_or_copy(src: str, dst: str) -> str:
    """A hard link ``dst`` to the regular file ``src`` or, where the file system refuses, a copy flushed to disk."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return dst


def _write_file(path: Path, data: bytes) -> None:
    """A new file with the umask's permissions, flushed to disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _import_onnx() -> tuple[Any, Any, Any]:
    try:
        from onnx import checker, helper, numpy_helper
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return helper, numpy_helper, checker


def _excluded_ids(model: StaticModel) -> list[int]:
    """Token ids the runtime never averages: the unknown token, the tokenizer's special tokens and the tokens its
    post-processor adds (a front end's ``[CLS]``/``[SEP]``, which a tokenizer built in code may not mark special)."""
    from static_model.tokenization import post_processor_ids, unknown_token_id

    tokenizer = model._encoder.tokenizer  # the one it encodes with
    spec = json.loads(tokenizer.to_str())
    ids = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    ids.update(i for i in post_processor_ids(spec.get("post_processor")) if isinstance(i, int))
    unk = unknown_token_id(tokenizer, spec)
    if unk is not None:
        ids.add(unk)
    return sorted(i for i in ids if 0 <= i < model.vocab_size)


def _pooling_nodes(model: StaticModel, helper: Any, numpy_helper: Any) -> tuple[list, list, str]:
    """Nodes and initializers from (input_ids, attention_mask) to the pooled vector ``pooled`` (batch, dim)."""
    keep = np.ones(model.vocab_size, dtype=np.float32)
    keep[_excluded_ids(model)] = 0.0
    max_length = model.max_length if model.max_length is not None else np.iinfo(np.int32).max
    row_nodes, row_inits, row_norms = _token_row_nodes(model, helper, numpy_helper)
    inits = [
        *row_inits,
        numpy_helper.from_array(keep, "keep"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "scalar_axis1"),
        numpy_helper.from_array(np.array(float(max_length), dtype=np.float32), "max_length"),
        numpy_helper.from_array(np.array(1e-30, dtype=np.float32), "tiny"),
    ]
    n = helper.make_node
    nodes = [
        # which positions count: attended, not special/unknown, and among the first max_length of those
        n("Cast", ["attention_mask"], ["mask_f"], to=1),
        n("Gather", ["keep", "input_ids"], ["keep_ids"]),
        n("Mul", ["mask_f", "keep_ids"], ["kept"]),
        n("CumSum", ["kept", "scalar_axis1"], ["rank"]),
        n("LessOrEqual", ["rank", "max_length"], ["within"]),
        n("Cast", ["within"], ["within_f"], to=1),
        n("Mul", ["kept", "within_f"], ["weight"]),  # (B, L)
        n("Unsqueeze", ["weight", "axis2"], ["weight3"]),
        *row_nodes,  # token_rows (B, L, D)
        n("Mul", ["token_rows", "weight3"], ["masked_rows"]),
        n("ReduceSum", ["masked_rows", "axis1"], ["row_sum"], keepdims=0),  # (B, D)
    ]
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"))
    if model.contrast > 0:
        inits += [numpy_helper.from_array(row_norms, "row_norms"),
                  numpy_helper.from_array(np.array(-model.contrast, dtype=np.float32), "minus_contrast")]
        # weight each row by exp(-c * cos(row, the text's summed rows)); a zero sum or a zero row gives cos 0
        nodes += [
            n("ReduceL2", ["row_sum", "axis1"], ["sum_norm"], keepdims=1),  # (B, 1)
            n("Max", ["sum_norm", "tiny"], ["sum_norm_safe"]),
            n("Unsqueeze", ["row_sum", "axis1"], ["row_sum3"]),  # (B, 1, D)
            n("Mul", ["token_rows", "row_sum3"], ["prod"]),
            n("ReduceSum", ["prod", "axis2"], ["dots"], keepdims=0),  # (B, L)
            n("Gather", ["row_norms", "input_ids"], ["token_norms"]),
            n("Max", ["token_norms", "tiny"], ["token_norms_safe"]),
            n("Mul", ["token_norms_safe", "sum_norm_safe"], ["norms_product"]),
            n("Max", ["norms_product", "tiny"], ["denominator"]),  # 1e-30 * 1e-30 is 0 in float32: 0 / 0 were NaN
            n("Div", ["dots", "denominator"], ["cosines"]),
            n("Mul", ["cosines", "minus_contrast"], ["exponent"]),
            n("Exp", ["exponent"], ["contrast_w"]),
            n("Mul", ["contrast_w", "weight"], ["pool_w"]),
            n("Unsqueeze", ["pool_w", "axis2"], ["pool_w3"]),
            n("Mul", ["token_rows", "pool_w3"], ["weighted_rows"]),
            n("ReduceSum", ["weighted_rows", "axis1"], ["pooled_sum"], keepdims=0),
            n("ReduceSum", ["pool_w", "axis1"], ["total"], keepdims=1),
        ]
    else:
        nodes += [n("Identity", ["row_sum"], ["pooled_sum"]),
                  n("ReduceSum", ["weight", "axis1"], ["total"], keepdims=1)]
    nodes += [n("Max", ["total", "tiny"], ["total_safe"]), n("Div", ["pooled_sum", "total_safe"], ["pooled"])]
    return nodes, inits, "pooled"


def _token_row_nodes(model: StaticModel, helper: Any, numpy_helper: Any) -> tuple[list, list, np.ndarray]:
    """Nodes giving ``token_rows`` (B, L, D), the float32 rows of ``input_ids``, their initializers, and each token
    id's row norm. A float32 table is stored as its rows (``embeddings * weights``); a float16 or int8 one stays in its
    dtype (the file about the model's size), its looked-up rows cast to float32 and multiplied by their weights (an
    int8 table's row scales) as the runtime multiplies them. A vocabulary-quantized model keeps its shared rows:
    ``weights[id] * rows[mapping[id]]``."""
    n = helper.make_node
    if model.token_mapping is None:
        table, weights, rows = model.embeddings, model.weights, model.embedding_matrix()
        if table.dtype == np.float32 or weights is None:  # the rows, or the rows once cast
            stored = rows if table.dtype == np.float32 else table
            nodes = _float_rows_nodes("rows", "input_ids", "token_rows", stored.dtype, helper)
            inits = [numpy_helper.from_array(stored, "rows")]
        else:
            nodes = [*_float_rows_nodes("rows", "input_ids", "stored_token_rows", table.dtype, helper),
                     *_weighted_nodes("stored_token_rows", helper)]
            inits = [numpy_helper.from_array(table, "rows"),
                     numpy_helper.from_array(weights.astype(np.float32), "token_weights")]
        return nodes, inits, np.linalg.norm(rows, axis=1).astype(np.float32)
    shared = model.embeddings
    weights = np.ones(model.vocab_size, np.float32) if model.weights is None else model.weights.astype(np.float32)
    inits = [numpy_helper.from_array(shared, "shared_rows"),
             # int32: the rows must fit one 2 GB graph, so their number does too
             numpy_helper.from_array(model.token_mapping.astype(np.int32), "token_mapping"),
             numpy_helper.from_array(weights, "token_weights")]
    nodes = [
        n("Gather", ["token_mapping", "input_ids"], ["row_ids"]),
        *_float_rows_nodes("shared_rows", "row_ids", "shared_token_rows", shared.dtype, helper),  # (B, L, D)
        *_weighted_nodes("shared_token_rows", helper),
    ]
    norms = np.linalg.norm(shared.astype(np.float32), axis=1)[model.token_mapping] * np.abs(weights)
    return nodes, inits, norms.astype(np.float32)


def _float_rows_nodes(table: str, ids: str, out: str, dtype: np.dtype, helper: Any) -> list:
    """Nodes giving ``out``: the rows of the initializer ``table`` at ``ids`` as float32 (a float16 or int8 table's
    cast after the look-up, so only the looked-up rows are ever float32)."""
    n = helper.make_node
    if dtype == np.float32:
        return [n("Gather", [table, ids], [out])]
    return [n("Gather", [table, ids], [f"{out}_stored"]), n("Cast", [f"{out}_stored"], [out], to=1)]


def _weighted_nodes(rows: str, helper: Any) -> list:
    """Nodes giving ``token_rows``: the float32 ``rows`` (B, L, D) times each token id's ``token_weights``."""
    n = helper.make_node
    return [
        n("Gather", ["token_weights", "input_ids"], ["token_w"]),
        n("Unsqueeze", ["token_w", "axis2"], ["token_w3"]),
        n("Mul", [rows, "token_w3"], ["token_rows"]),
    ]


def _normalize_nodes(source: str, target: str, helper: Any) -> list:
    n = helper.make_node
    return [
        n("ReduceL2", [source, "axis1"], [f"{target}_norm"], keepdims=1),
        n("Max", [f"{target}_norm", "tiny"], [f"{target}_norm_safe"]),
        n("Div", [source, f"{target}_norm_safe"], [target]),
    ]


def _inputs(helper: Any) -> list:
    from onnx import TensorProto

    return [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in ("input_ids", "attention_mask")]


def _encoder_graph(model: StaticModel, helper: Any, numpy_helper: Any) -> Any:
    from onnx import TensorProto

    nodes, inits, pooled = _pooling_nodes(model, helper, numpy_helper)
    if model.normalize:
        nodes += _normalize_nodes(pooled, "sentence_embedding", helper)
    else:
        nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"]))
    output = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", model.dim])
    graph = helper.make_graph(nodes, "static_model", _inputs(helper), [output], inits)
    return _model_proto(graph, helper)


def _pipeline_graph(pipeline: StaticPipeline, helper: Any, numpy_helper: Any) -> tuple[Any, dict]:
    from onnx import TensorProto

    nodes, inits, pooled = _pooling_nodes(pipeline.model, helper, numpy_helper)
    x = pooled
    if pipeline.normalize:
        nodes += _normalize_nodes(pooled, "features", helper)
        x = "features"
    last = len(pipeline.layers) - 1
    for i, (w, b) in enumerate(pipeline.layers):
        inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "logits" if i == last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out]))
        if i < last:
            nodes.append(helper.make_node("Relu" if pipeline.activation == "relu" else "Tanh", [out], [f"a{i}"]))
            out = f"a{i}"
        x = out
    n_labels = len(pipeline.labels)
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels]),
               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_labels])]
    if pipeline.multilabel:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["probabilities"]))
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
        nodes.append(helper.make_node("ArgMax", ["logits"], ["label_index"], axis=1, keepdims=0))
        outputs.append(helper.make_tensor_value_info("label_index", TensorProto.INT64, ["batch"]))
    graph = helper.make_graph(nodes, "static_pipeline", _inputs(helper), outputs, inits)
    return _model_proto(graph, helper), pipeline.label_config()


def _model_proto(graph: Any, helper: Any) -> Any:
    from static_model.version import __version__

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="static-embeddings",
                             producer_version=__version__)


# OS errors that say the path given is wrong (bad input, status 2); any other (a full disk, an I/O error) is status 1
_PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.EACCES,
                          errno.EPERM, errno.EROFS, errno.EEXIST})
_REPORTED = (ValueError, TypeError, ImportError, OSError)  # bad input, a missing onnx, the file system's refusals


def _cli_error(exc: BaseException, argument: str, value: str) -> tuple[str, int]:
    """The ``error:`` line and exit status for ``exc``, raised while reading (``argument="model"``) or writing
    (``"output"``) the path ``value``. An error the OS raised names a path the user may never have given (the
    hidden staging folder beside the output), so it is told as the argument's; the project's own messages already
    name it. One line: a message with line breaks is joined."""
    message = " ".join(str(exc).split())
    status = 2
    if isinstance(exc, OSError) and exc.errno is not None:
        reason = exc.strerror or message
        where = f" ({exc.filename})" if exc.filename is not None and os.fspath(exc.filename) != value else ""
        message = f"{argument} {value}: {reason}{where}"
        status = 2 if exc.errno in _PATH_ERRNOS else 1
    return f"error: {message}", status


def main(argv: list[str] | None = None) -> int:
    """``python -m static_model.onnx MODEL OUTPUT``: bad input exits 2 with one ``error:`` line (any other OS
    error, such as a full disk, exits 1 with one); Ctrl-C exits 130 with ``interrupted``, leaving nothing behind."""
    from static_model.interrupts import EXIT_INTERRUPTED, raise_on_interrupt

    parser = argparse.ArgumentParser(prog="python -m static_model.onnx", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a static model folder, or a classifier pipeline folder (head.safetensors)")
    parser.add_argument("output", help="folder for model.onnx and tokenizer.json (new, empty, or see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export, or add the export to the folder of this same model")
    args = parser.parse_args(argv)
    from static_model.pipeline import HEAD_FILE, StaticPipeline

    argument, value = "model", args.model
    try:
        # from here on Ctrl-C unwinds through every finally: the export's staging folder is removed
        # (static_model's start-up handler would end the process at once, leaving it behind)
        raise_on_interrupt()
        source = Path(args.model)
        loader = StaticPipeline if (source / HEAD_FILE).is_file() else StaticModel
        model = loader.from_pretrained(source)
        argument, value = "output", args.output
        folder = export_onnx(model, args.output, overwrite=args.overwrite)
        size = (folder / MODEL_FILE).stat().st_size
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except _REPORTED as exc:
        line, status = _cli_error(exc, argument, value)
        print(line, file=sys.stderr, flush=True)
        return status
    print(f"wrote {folder / MODEL_FILE} ({size / 2**20:.1f} MiB) and {TOKENIZER_FILE}")
    return 0


if __name__ == "__main__":
    from static_model.interrupts import exit_process

    exit_process(main())
