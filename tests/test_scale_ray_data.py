"""scale.EncodeBatches in Ray Data pipelines: vectors equal StaticModel.encode in every batch format, Parquet round
trip, the model as a folder or an instance, and errors naming the problem (most checked on a batch, without Ray)."""

from __future__ import annotations

import pickle

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.tokenizers import random_texts

from scale import EncodeBatches
from static_model import StaticModel


@pytest.fixture
def model(tiny_model) -> StaticModel:
    return tiny_model


def vectors_of(column: pa.ChunkedArray) -> np.ndarray:
    """A Parquet vector column (fixed-size list, or Ray's tensor extension) as an ``(n, dim)`` array."""
    rows = column.to_pylist()
    return np.array([np.asarray(r, dtype=np.float32) for r in rows], dtype=np.float32)


def test_batch_formats_write_parquet_equal_encode(cluster, model, tmp_path):
    """numpy, pandas and pyarrow batches (model as an instance, as a folder): write_parquet holds every row once
    with its other columns and exactly the vector model.encode gives its text; inside an actor numba runs 1 thread."""
    import ray

    ray.data.DataContext.get_current().enable_progress_bars = False
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    rows = random_texts(300)
    items = [{"n": i, "text": t, "tag": f"t{i % 7}"} for i, t in enumerate(rows)]
    ds = ray.data.from_items(items, override_num_blocks=3)
    expected = model.encode(rows)
    for fmt, source in (("numpy", model), ("pandas", str(folder)), ("pyarrow", folder)):
        out = tmp_path / f"out-{fmt}"
        ds.map_batches(EncodeBatches, fn_constructor_kwargs={"model": source}, batch_size=64, batch_format=fmt,
                       compute=ray.data.ActorPoolStrategy(size=1)).write_parquet(str(out))
        table = pq.read_table(out).sort_by("n")
        assert table.column_names == ["n", "text", "tag", "embedding"], fmt
        assert table.column("n").to_pylist() == list(range(300)), fmt
        assert table.column("text").to_pylist() == rows, fmt
        assert table.column("tag").to_pylist() == [f"t{i % 7}" for i in range(300)], fmt
        np.testing.assert_array_equal(vectors_of(table.column("embedding")), expected, err_msg=fmt)
    assert pa.types.is_fixed_size_list(pq.read_table(tmp_path / "out-pyarrow").schema.field("embedding").type)

    @ray.remote(num_cpus=1)
    class Probe:
        def threads(self, model: StaticModel) -> int:
            EncodeBatches(model)
            return numba.get_num_threads()

    assert ray.get(Probe.remote().threads.remote(model)) == 1


def test_missing_text_fails_the_pipeline_naming_the_row(cluster, model):
    import ray

    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_items([{"id": 0, "text": "the cat"}, {"id": 1, "text": None}, {"id": 2, "text": "a dog"}])
    with pytest.raises(Exception, match=r"column 'text': 1 of 3 rows .* row 1 of the batch, None .*'id': 1"):
        ds.map_batches(EncodeBatches, fn_constructor_kwargs={"model": model}, batch_size=8,
                       compute=ray.data.ActorPoolStrategy(size=1)).materialize()


def test_one_batch_in_each_format_without_ray(model):
    """Called directly: same format back, other columns kept, the input untouched, settings and dtype applied."""
    rows = random_texts(20, seed=3)
    threads = numba.get_num_threads()
    encode = EncodeBatches(model, column="body", output_column="vec", normalize=False, max_length=3, dtype="float16")
    assert numba.get_num_threads() == threads  # outside a Ray actor it changes nothing of this process
    expected = model.encode(rows, normalize=False, max_length=3).astype(np.float16)
    ids = np.arange(20)
    batch = {"id": ids, "body": np.array(rows, dtype=object)}
    out = encode(batch)
    assert list(out) == ["id", "body", "vec"] and list(batch) == ["id", "body"] and out["id"] is ids
    np.testing.assert_array_equal(out["vec"], expected)
    frame = encode(pd.DataFrame({"id": ids, "body": rows}))
    assert list(frame.columns) == ["id", "body", "vec"]
    np.testing.assert_array_equal(np.asarray(frame["vec"].to_numpy()), expected)
    table = encode(pa.table({"id": ids, "body": pa.array(rows, pa.large_string())}))
    assert table.column_names == ["id", "body", "vec"] and table.schema.field("vec").type.value_type == pa.float16()
    np.testing.assert_array_equal(vectors_of(table.column("vec")).astype(np.float16), expected)
    empty = EncodeBatches(model)({"text": np.array([], dtype=object)})
    assert empty["embedding"].shape == (0, model.dim) and empty["embedding"].dtype == np.float32


def test_errors_name_the_problem(model):
    encode = EncodeBatches(model)
    with pytest.raises(ValueError, match=r"column 'text' is not in the batch; its columns are \['id', 'body'\]"):
        encode({"id": np.arange(2), "body": np.array(["a", "b"], dtype=object)})
    with pytest.raises(ValueError, match="output column 'embedding' is already in the batch"):
        encode(pa.table({"text": ["a"], "embedding": [1.0]}))
    with pytest.raises(ValueError, match=r"2 of 3 rows .* row 1 of the batch, nan \(float\), other columns \{'id': 1"):
        encode(pd.DataFrame({"id": [0, 1, 2], "text": ["cat", float("nan"), None]}))
    with pytest.raises(ValueError, match=r"row 0 of the batch, None .*is_not_null"):
        encode(pa.table({"text": pa.array([None, "cat"], pa.string())}))
    with pytest.raises(ValueError, match="column 'text' holds int64, not strings"):
        encode(pa.table({"text": [1, 2]}))
    with pytest.raises(ValueError, match="dtype must be one of float32, float16"):
        EncodeBatches(model, dtype="int8")
    with pytest.raises(ValueError, match="output_column must differ"):
        EncodeBatches(model, output_column="text")
    with pytest.raises(TypeError, match="normalize must be True or False"):
        EncodeBatches(model, normalize="yes")
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        EncodeBatches(model, max_length=0)


def test_model_pickles_without_its_caches(model):
    """A StaticModel instance ships to each actor by pickling: its table and tokenizer, not what encoding cached."""
    fresh = len(pickle.dumps(model))
    model.encode(random_texts(500, seed=5))
    assert len(pickle.dumps(model)) == fresh < model.embeddings.nbytes + 10_000
    again = pickle.loads(pickle.dumps(EncodeBatches(model)))
    np.testing.assert_array_equal(again({"text": np.array(["the cat"], dtype=object)})["embedding"],
                                  model.encode(["the cat"]))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_pyarrow_batch_parquet_round_trip_in_each_dtype(model, tmp_path, dtype):
    """A pyarrow batch's vectors, float16 included (Parquet's FLOAT16, written from pyarrow 15 on), are written to
    Parquet as ``fixed_size_list`` and read back bit for bit, as Ray's ``write_parquet`` writes a pyarrow block."""
    rows = random_texts(50, seed=7)
    pq.write_table(EncodeBatches(model, dtype=dtype)(pa.table({"id": np.arange(50), "text": rows})),
                   tmp_path / "v.parquet")
    back = pq.read_table(tmp_path / "v.parquet")
    kind = back.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.value_type == pa.from_numpy_dtype(np.dtype(dtype))
    vectors = back.column("embedding").combine_chunks().flatten().to_numpy().reshape(50, model.dim)
    assert vectors.dtype == np.dtype(dtype) and back.column("id").to_pylist() == list(range(50))
    np.testing.assert_array_equal(vectors, model.encode(rows).astype(dtype))


def test_scale_extra_allows_only_a_pyarrow_that_writes_float16_parquet():
    """The ``scale`` extra's pyarrow lower bound is at least 15 (pyarrow 14 cannot write a float16 column)."""
    from pathlib import Path

    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    pyarrow = next(Requirement(r) for r in project["project"]["optional-dependencies"]["scale"]
                   if Requirement(r).name == "pyarrow")
    assert not pyarrow.specifier.contains("14.0.2") and pyarrow.specifier.contains("15.0.0")
