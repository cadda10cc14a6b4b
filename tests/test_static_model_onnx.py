"""ONNX export: onnxruntime gives StaticModel.encode's vectors and StaticPipeline's predictions on real text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from static_model import StaticModel
from static_model.onnx import export_onnx
from static_model.pipeline import StaticPipeline

TEXTS = [
    "The cat sat on the mat.", "", "zzzqqq xylophone!", "hello world " * 40,
    "free text, café and 日本 (with punctuation)", "a dog runs fast", "😀",
]


def run_graph(folder, texts: list[str], *, special_tokens: bool = True) -> dict[str, np.ndarray]:
    """Tokenize as an ONNX front end would (padded batch, special tokens added) and run the graph."""
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0)
    encodings = tokenizer.encode_batch(texts, add_special_tokens=special_tokens)
    feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


@pytest.mark.parametrize("contrast", [0.0, 1.0])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_graph_gives_the_runtimes_vectors(minilm_input_model, tmp_path, contrast, normalize, dtype):
    model = minilm_input_model.quantize(dtype) if dtype != "float32" else minilm_input_model
    model = StaticModel(model.embeddings, model.tokenizer, weights=model.weights, config=model.config,
                        normalize=normalize, max_length=32, contrast=contrast)
    export_onnx(model, tmp_path / "onnx")
    expected = model.encode(TEXTS)
    for special in (True, False):
        got = run_graph(tmp_path / "onnx", TEXTS, special_tokens=special)["sentence_embedding"]
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_pipeline_graph_gives_its_predictions(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(6, tiny_model.dim)).astype(np.float32), rng.normal(size=6).astype(np.float32)),
              (rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=3).astype(np.float32))]
    pipeline = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"], activation="tanh")
    export_onnx(pipeline, tmp_path / "onnx")
    out = run_graph(tmp_path / "onnx", TEXTS)
    np.testing.assert_allclose(out["probabilities"], pipeline.predict_proba(TEXTS), atol=1e-5)
    assert [pipeline.labels[i] for i in out["label_index"]] == list(pipeline.predict(TEXTS))
    multi = StaticPipeline(tiny_model, layers, labels=["a", "b", "c"], multilabel=True)
    export_onnx(multi, tmp_path / "multi")
    out = run_graph(tmp_path / "multi", TEXTS)
    np.testing.assert_allclose(out["probabilities"], multi.predict_proba(TEXTS), atol=1e-5)
    assert "label_index" not in out


def test_export_never_harms_a_folder_and_the_cli_reports_errors(tiny_model, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(FileExistsError, match="holds other files"):
        export_onnx(tiny_model, tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    tiny_model.save_pretrained(tmp_path / "model")
    ok = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "model"), str(tmp_path / "out")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and (tmp_path / "out" / "model.onnx").is_file(), ok.stderr
    bad = subprocess.run([sys.executable, "-m", "static_model.onnx", str(tmp_path / "nope"), str(tmp_path / "o2")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_graph_on_corpus_lines(minilm_input_model, corpus_lines, tmp_path):
    """300 real corpus lines (lines that spell out a special token such as '[SEP]' are the documented exception)."""
    texts = [t for t in corpus_lines[:400] if t and "[" not in t][:300]
    model = StaticModel(minilm_input_model.embeddings, minilm_input_model.tokenizer, config={"normalize": True},
                        contrast=1.0)
    export_onnx(model, tmp_path / "onnx")
    got = run_graph(tmp_path / "onnx", texts)["sentence_embedding"]
    np.testing.assert_allclose(got, model.encode(texts), atol=2e-5, rtol=1e-4)
