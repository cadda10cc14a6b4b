"""Ray Data: a static model as a ``Dataset.map_batches`` transform that adds a column of vectors.

``ds.map_batches(EncodeBatches, fn_constructor_kwargs={"model": "models/minilm"}, batch_size=4096,
compute=ray.data.ActorPoolStrategy(size=4))``: every actor loads the model once and encodes the ``column`` of each
batch into ``output_column``, leaving the other columns as they are. Batches may be NumPy dicts (Ray's default),
pandas DataFrames or pyarrow Tables; each comes back in the format it came in. The vectors equal
``StaticModel.encode``'s on the same texts, in row order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from scale.engine import one_numba_thread, vector_column
from scale.inputs import is_string_type
from static_model import StaticModel
from static_model.validation import check_bool, check_max_length

_DTYPES = ("float32", "float16")
_MAX_ROW_REPR = 200


class EncodeBatches:
    """A callable class for ``ray.data.Dataset.map_batches``: adds ``output_column``, the vectors of ``column``.

    ``model``: a :class:`StaticModel` (pickled to each actor: its table, weights and tokenizer, never its caches) or
    a model folder, loaded once per actor with :meth:`StaticModel.from_pretrained`. ``normalize`` and ``max_length``
    left ``None`` are the model's settings. ``dtype``: ``"float32"`` (default) or ``"float16"`` vectors.

    The output column is a 2-D array for NumPy batches, Ray's tensor column for pandas batches and a
    ``fixed_size_list<float>`` for pyarrow batches (as ``python -m scale encode`` writes); ``write_parquet`` writes
    each. A missing ``column``, an ``output_column`` already there or a value that is not a string (None, NaN: a
    missing text) is a ValueError naming it: filter or fill missing texts first, e.g.
    ``ds.filter(expr=col("text").is_not_null())``. Inside a Ray actor numba runs one thread (Ray runs a worker per
    CPU); called in another process, it changes nothing of that process's settings.
    """

    def __init__(
        self,
        model: StaticModel | str | os.PathLike,
        *,
        column: str = "text",
        output_column: str = "embedding",
        normalize: bool | None = None,
        max_length: int | None = None,
        dtype: str = "float32",
    ) -> None:
        for name, value in (("column", column), ("output_column", output_column)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str; got {value!r}")
        if column == output_column:
            raise ValueError(f"output_column must differ from column; both are {column!r}")
        normalize = None if normalize is None else check_bool(normalize, "normalize")
        max_length = check_max_length(max_length)  # None: the model's own
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}; got {dtype!r}")
        if not isinstance(model, StaticModel):
            if not isinstance(model, (str, os.PathLike)):
                raise TypeError(f"model must be a StaticModel or a model folder, not {type(model).__name__}")
            model = StaticModel.from_pretrained(model)
        if _in_ray_actor():
            one_numba_thread()
        self.model, self.column, self.output_column = model, column, output_column
        self.normalize, self.max_length, self.dtype = normalize, max_length, np.dtype(dtype)

    def __call__(self, batch: Any) -> Any:
        """``batch`` (a dict of NumPy arrays, a pandas DataFrame or a pyarrow Table) with the vectors added."""
        if isinstance(batch, dict):
            return self._numpy(batch)
        import pandas as pd
        import pyarrow as pa

        if isinstance(batch, pd.DataFrame):
            return self._pandas(batch)
        if isinstance(batch, pa.Table):
            return self._arrow(batch)
        raise TypeError(f"EncodeBatches takes NumPy (dict), pandas or pyarrow batches, not {type(batch).__name__}; "
                        "pass batch_format='numpy', 'pandas' or 'pyarrow' to map_batches")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The ``(n, dim)`` vectors of ``texts``, with this transform's settings and dtype."""
        vectors = self.model.encode(texts, batch_size=4096, normalize=self.normalize, max_length=self.max_length)
        return vectors.astype(self.dtype, copy=False)

    def _numpy(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_columns(list(batch))
        values = batch[self.column]
        texts = values.tolist() if isinstance(values, np.ndarray) else list(values)
        self._check_texts(texts, lambda i: {k: _item(v, i) for k, v in batch.items() if k != self.column})
        return {**batch, self.output_column: self.encode(texts)}

    def _pandas(self, batch: Any) -> Any:
        from ray.data.extensions import TensorArray

        self._check_columns([str(c) for c in batch.columns])
        texts = batch[self.column].tolist()
        self._check_texts(texts, lambda i: batch.drop(columns=[self.column]).iloc[i].to_dict())
        out = batch.copy(deep=False)
        out[self.output_column] = TensorArray(self.encode(texts))
        return out

    def _arrow(self, batch: Any) -> Any:
        self._check_columns(batch.column_names)
        values = batch.column(self.column)
        kind = values.type
        if not is_string_type(kind):  # dictionary-encoded strings too (a categorical column read from Parquet)
            raise ValueError(f"column {self.column!r} holds {kind}, not strings: pass column= the text column")
        texts = values.to_pylist()
        self._check_texts(texts, lambda i: batch.drop_columns([self.column]).slice(i, 1).to_pylist()[0])
        return batch.append_column(self.output_column, vector_column(self.encode(texts)))

    def _check_columns(self, names: list[str]) -> None:
        if self.column not in names:
            raise ValueError(f"column {self.column!r} is not in the batch; its columns are {names}: pass column= "
                             "the text column")
        if self.output_column in names:
            raise ValueError(f"output column {self.output_column!r} is already in the batch (columns {names}); "
                             "pass output_column= another name, or drop that column first")

    def _check_texts(self, texts: list[Any], row: Callable[[int], dict[str, Any]]) -> None:
        """A ValueError naming the first value that is not a str: its row in the batch and the row's other columns."""
        if all(type(t) is str for t in texts):
            return
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if not bad:
            return
        first = bad[0]
        others = repr(row(first))
        if len(others) > _MAX_ROW_REPR:
            others = others[:_MAX_ROW_REPR] + "...}"
        raise ValueError(f"column {self.column!r}: {len(bad)} of {len(texts)} rows of this batch are not strings; "
                         f"the first is row {first} of the batch, {texts[first]!r} ({type(texts[first]).__name__}), "
                         f"other columns {others}. Filter or fill missing texts first, e.g. "
                         f"ds.filter(expr=col({self.column!r}).is_not_null())")


def _item(values: Any, i: int) -> Any:
    """Row ``i`` of a batch column as a plain value (for an error message)."""
    value = values[i]
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


def _in_ray_actor() -> bool:
    """True inside a Ray actor's process (where Ray Data runs a callable class), False in any other process."""
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized()) and ray.get_runtime_context().get_actor_id() is not None
