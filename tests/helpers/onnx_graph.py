"""Running an exported ONNX graph as a front end would: the exported tokenizer (padded batch, special tokens added
or not), then onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def front_end_tokenizer(folder: Path, pad_token: str | None = None) -> Tokenizer:
    """The exported ``tokenizer.json`` with padding on (``pad_token``'s id, else 0)."""
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    pad_id = tokenizer.token_to_id(pad_token) if pad_token is not None else None
    tokenizer.enable_padding(pad_id=pad_id or 0)
    return tokenizer


def graph_feeds(tokenizer: Tokenizer, texts: list[str], *, special_tokens: bool = True) -> dict[str, np.ndarray]:
    """``input_ids`` and ``attention_mask`` (int64, batch x sequence) of ``texts``."""
    encodings = tokenizer.encode_batch(texts, add_special_tokens=special_tokens)
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}


def session(folder: Path):  # onnxruntime.InferenceSession (imported here: onnxruntime is a test extra)
    """An onnxruntime session of the folder's ``model.onnx`` on the CPU."""
    import onnxruntime as ort

    return ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])


def run_graph(folder: Path, texts: list[str], *, special_tokens: bool = True) -> dict[str, np.ndarray]:
    """Every output of the graph in ``folder`` on ``texts``, by name."""
    runner = session(folder)
    names = [o.name for o in runner.get_outputs()]
    feeds = graph_feeds(front_end_tokenizer(folder), texts, special_tokens=special_tokens)
    return dict(zip(names, runner.run(None, feeds)))
