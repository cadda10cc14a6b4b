"""Export a static model, or a classifier pipeline, to ONNX (``python -m static_model.onnx MODEL OUT``).

The graph takes what any tokenizer front end gives: ``input_ids`` and ``attention_mask`` (int64, batch x
sequence, padded), with or without special tokens. It applies the runtime's own rules, so ONNX Runtime,
Transformers.js or FastEmbed get :meth:`StaticModel.encode`'s vectors: special and unknown tokens are left out, at
most ``max_length`` of the remaining tokens count, their rows (``embeddings * weights``, as float32; through the
token mapping of a vocabulary-quantized model, whose shared rows stay shared in the graph) are averaged,
plain or contrast-weighted (the model's ``contrast``), and L2-normalized when the model normalizes. Outputs:
``sentence_embedding`` for a model; ``logits``, ``probabilities`` and, single-label, ``label_index`` for a
pipeline (labels in ``labels.json``). The tokenizer is written beside the graph. One case differs from the
runtime: a text that spells out a special token (``"[MASK]"``) has that token averaged by the runtime, while the
graph, which cannot tell it from one the front end added, leaves it out. Needs the ``onnx`` extra
(``pip install "static-embeddings[onnx]"``); onnx is imported only here, never by ``static_model`` itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from static_model.model import StaticModel

if TYPE_CHECKING:  # pragma: no cover
    from static_model.pipeline import StaticPipeline

OPSET = 18
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
_INSTALL_HINT = 'ONNX export needs onnx: pip install "static-embeddings[onnx]"'


def export_onnx(model: StaticModel | StaticPipeline, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model.onnx`` and ``tokenizer.json`` (and ``labels.json`` for a pipeline) into the folder ``path``.

    An existing folder that holds other files is refused unless ``overwrite``; each file is written beside its
    name and renamed into place.
    """
    from static_model.pipeline import StaticPipeline

    helper, numpy_helper, checker, onnx = _import_onnx()
    if isinstance(model, StaticPipeline):
        graph_model, outputs = _pipeline_graph(model, helper, numpy_helper)
        encoder = model.model
    elif isinstance(model, StaticModel):
        graph_model, outputs = _encoder_graph(model, helper, numpy_helper), None
        encoder = model
    else:
        raise TypeError(f"model must be a StaticModel or a StaticPipeline, not {type(model).__name__}")
    checker.check_model(graph_model)
    folder = Path(path).expanduser()
    ours = {MODEL_FILE, TOKENIZER_FILE, LABELS_FILE}
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    if folder.is_dir() and not overwrite and any(f.name not in ours for f in folder.iterdir()):
        raise FileExistsError(f"{folder} holds other files; pass overwrite=True (--overwrite) to write there anyway")
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / MODEL_FILE, onnx.save_model, graph_model)
    _write_atomic(folder / TOKENIZER_FILE, lambda text, f: Path(f).write_text(text, encoding="utf-8"),
                  encoder.tokenizer.to_str())
    if outputs is not None:
        _write_atomic(folder / LABELS_FILE, lambda text, f: Path(f).write_text(text, encoding="utf-8"),
                      json.dumps(outputs, indent=2, ensure_ascii=False))
    return folder


def _import_onnx() -> tuple[Any, Any, Any, Any]:
    try:
        import onnx
        from onnx import checker, helper, numpy_helper
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return helper, numpy_helper, checker, onnx


def _write_atomic(target: Path, write: Any, value: Any) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(value, str(tmp))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _excluded_ids(model: StaticModel) -> list[int]:
    """Token ids the runtime never averages: the unknown token and the tokenizer's special tokens."""
    from static_model.tokenization import unknown_token_id

    tokenizer = model._encoder.tokenizer  # the one it encodes with
    ids = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    unk = unknown_token_id(tokenizer)
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
            n("Mul", ["token_norms_safe", "sum_norm_safe"], ["denominator"]),
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
    id's row norm. A vocabulary-quantized model keeps its shared rows: ``weights[id] * rows[mapping[id]]``."""
    n = helper.make_node
    if model.token_mapping is None:
        rows = model.embedding_matrix()
        return ([n("Gather", ["rows", "input_ids"], ["token_rows"])], [numpy_helper.from_array(rows, "rows")],
                np.linalg.norm(rows, axis=1).astype(np.float32))
    shared = model.embeddings.astype(np.float32)
    weights = np.ones(model.vocab_size, np.float32) if model.weights is None else model.weights.astype(np.float32)
    inits = [numpy_helper.from_array(shared, "shared_rows"),
             numpy_helper.from_array(model.token_mapping.astype(np.int64), "token_mapping"),
             numpy_helper.from_array(weights, "token_weights")]
    nodes = [
        n("Gather", ["token_mapping", "input_ids"], ["row_ids"]),
        n("Gather", ["shared_rows", "row_ids"], ["shared_token_rows"]),  # (B, L, D)
        n("Gather", ["token_weights", "input_ids"], ["token_w"]),
        n("Unsqueeze", ["token_w", "axis2"], ["token_w3"]),
        n("Mul", ["shared_token_rows", "token_w3"], ["token_rows"]),
    ]
    norms = (np.linalg.norm(shared, axis=1)[model.token_mapping] * np.abs(weights)).astype(np.float32)
    return nodes, inits, norms


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
    labels = {"labels": pipeline.labels, "multilabel": pipeline.multilabel, "threshold": pipeline.threshold}
    return _model_proto(graph, helper), labels


def _model_proto(graph: Any, helper: Any) -> Any:
    from static_model.version import __version__

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="static-embeddings",
                             producer_version=__version__)


def main(argv: list[str] | None = None) -> int:
    """``python -m static_model.onnx MODEL OUTPUT``: bad input exits 2 with one ``error:`` line."""
    parser = argparse.ArgumentParser(prog="python -m static_model.onnx", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a static model folder, or a classifier pipeline folder (head.safetensors)")
    parser.add_argument("output", help="folder for model.onnx and tokenizer.json")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that holds other files")
    args = parser.parse_args(argv)
    from static_model.pipeline import HEAD_FILE, StaticPipeline

    try:
        source = Path(args.model)
        loader = StaticPipeline if (source / HEAD_FILE).is_file() else StaticModel
        model = loader.from_pretrained(source)
        folder = export_onnx(model, args.output, overwrite=args.overwrite)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {folder / MODEL_FILE} ({(folder / MODEL_FILE).stat().st_size / 2**20:.1f} MiB) and {TOKENIZER_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
