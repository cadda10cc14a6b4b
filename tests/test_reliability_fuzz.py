"""Property-based fuzzing of model folders (issue 20, item 11): whatever the bytes of config.json, tokenizer.json,
modules.json or model.safetensors, a load either succeeds or raises ValueError / FileNotFoundError /
PermissionError naming the file; never another exception, a crash or a hang."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from static_model import StaticModel

FILES = ["config.json", "tokenizer.json", "model.safetensors", "modules.json"]
EXPECTED = (ValueError, FileNotFoundError, PermissionError)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from helpers.tokenizers import make_wordpiece_tokenizer

    tokenizer = make_wordpiece_tokenizer()
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 8)).astype(np.float32)
    folder = tmp_path_factory.mktemp("fuzz") / "m"
    model = StaticModel(table, tokenizer, weights=np.linspace(0.5, 1.5, len(table)), config={"normalize": True})
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("normalize")  # so that modules.json is read too
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# A corruption: flip, overwrite, cut, duplicate or insert bytes at chosen places.
edits = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "digit"]), st.floats(0, 1),
              st.binary(min_size=1, max_size=8)),
    min_size=1,
    max_size=4,
)


def _corrupt(data: bytes, changes) -> bytes:
    out = bytearray(data)
    for kind, where, payload in changes:
        i = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[i] ^= payload[0] or 1
        elif kind == "set":
            out[i : i + len(payload)] = payload
        elif kind == "cut":
            del out[i:]
        elif kind == "insert":
            out[i:i] = payload
        elif kind == "digit":  # numbers are where the interesting bugs are: ids, shapes, offsets, header length
            digits = [j for j, c in enumerate(out) if 48 <= c <= 57]
            if digits:
                j = digits[int(where * (len(digits) - 1))]
                out[j:j] = str(int.from_bytes(payload, "little")).encode()
    return bytes(out)


@pytest.mark.parametrize("name", FILES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=edits)
def test_corrupted_file_loads_or_fails_with_a_clear_error(pristine, name, changes):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        shutil.copytree(pristine, folder)
        path = folder / name
        path.write_bytes(_corrupt(path.read_bytes(), changes))
        try:
            model = StaticModel.from_pretrained(folder)
        except EXPECTED as exc:
            assert str(folder) in str(exc), f"the error does not name the file: {exc}"
            return
        vectors = model.encode(["the cat sat on the mat", "hello world 123", ""])  # what loads, works
        assert vectors.shape == (3, model.dim) and np.isfinite(vectors).all()


@settings(max_examples=60, deadline=None)
@given(header=st.dictionaries(st.sampled_from(["embeddings", "weights", "mapping", "x"]),
                              st.fixed_dictionaries({
                                  "dtype": st.sampled_from(["F32", "F16", "I8", "I64", "F64", "BOOL", "Q"]),
                                  "shape": st.lists(st.integers(-2, 2**40), max_size=3),
                                  "data_offsets": st.lists(st.integers(-2, 2**40), max_size=3)}),
                              max_size=3),
       tail=st.binary(max_size=64))
def test_any_safetensors_header_loads_or_fails_clearly(header, tail):
    from helpers.tokenizers import make_wordpiece_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        (folder / "tokenizer.json").write_text(make_wordpiece_tokenizer(pad_to=None).to_str())
        (folder / "config.json").write_text("{}")
        blob = json.dumps(header).encode()
        (folder / "model.safetensors").write_bytes(len(blob).to_bytes(8, "little") + blob + tail)
        with pytest.raises(EXPECTED, match="model.safetensors"):
            StaticModel.from_pretrained(folder)  # a 49-token tokenizer never fits 64 bytes of data
