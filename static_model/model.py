"""StaticModel: one embedding row per token; a text's vector is the (plain or contrast-weighted) mean of its
tokens' rows."""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
from tokenizers import Tokenizer

from static_model import persistence
from static_model.chunk_cache import CacheInfo
from static_model.interrupts import keep_interrupts
from static_model.pooling import l2_normalize, pool, rows_as_float32
from static_model.quantization import check_dtype, effective_rows, quantize
from static_model.tokenization import CHARS_PER_TOKEN, TextEncoder, prepare_tokenizer
from static_model.validation import MAX_CONTRAST, as_texts, check_bool, check_contrast
from static_model.validation import check_max_length as _check_max_length
from static_model.validation import check_positive_int as _check_positive_int
from static_model.version import __version__

__all__ = ["DEFAULT_MAX_LENGTH", "MAX_CONTRAST", "StaticModel", "check_contrast"]

DEFAULT_MAX_LENGTH = 512
_FROM_CONFIG: Any = object()
# A call tokenizes at most this many texts, and about this many characters, at a time (see ``_slices``): one batch's
# chunk strings take about 18 bytes a character in memory, so a huge ``batch_size`` or long documents would
# otherwise hold gigabytes; larger batches are no faster (numba's pooling threads are busy from about 50,000 tokens).
SLICE_TEXTS = 16_384
SLICE_CHARS = 1 << 22
# ``encode(workers=N)`` keeps at most this many batches per worker submitted and not yet collected.
_WINDOW = 4
# Keys other tools write that would contradict ours once the model is changed and saved.
_STALE_KEYS = ("hidden_dim", "embedding_dtype", "vocabulary_quantization", "seq_length", "architectures")
# The record of how a token mapping was made (``distill.quantize_vocabulary``); dropped with the mapping.
CLUSTERS_KEY = "vocabulary_clusters"
# What that record measured on the rows of every dimension (each token's row against its centre): :meth:`truncate_dims`
# drops it, as it is no longer true of fewer dimensions and cannot be measured again (the token rows it compared with
# the centres are not kept). The parameters (clusters, seed, method) stay: they still say how the mapping was made.
CLUSTERS_MEASURED = ("mean_cosine_to_centre",)
# What each record of the config measured on every dimension, dropped by :meth:`truncate_dims` for the same reason:
# the share of the teacher's variance the distill's PCA kept (``distill``) and the share of the targets' variance the
# refinement's PCA kept (``refine``). The saved table cannot give either for fewer dimensions: it is SIF-weighted after
# the PCA (and its top components may be dropped), so its column variances are not the PCA's.
MEASURED_ON_EVERY_DIMENSION = {
    CLUSTERS_KEY: CLUSTERS_MEASURED,
    "distill": ("explained_variance",),
    "refine": ("target_pca_explained_variance",),
}


class _Settings(NamedTuple):
    """The settings one call encodes with: read from the model once (one attribute), so a setter on another
    thread gives a call the old settings or the new ones, never a mix."""

    normalize: bool
    max_length: int | None
    contrast: float


# Setters replace a model's settings tuple under this lock, so two setters at once cannot lose either change;
# readers take no lock. A child forked while a setter held it gets a new one.
_SETTINGS_LOCK = threading.Lock()


def _new_settings_lock_in_child() -> None:
    global _SETTINGS_LOCK
    _SETTINGS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_settings_lock_in_child)


class StaticModel:
    """A static embedding model: a tokenizer and an embedding table (float32, float16 or int8).

    Build one from a table and a ``tokenizers.Tokenizer``, or load a folder with :meth:`from_pretrained`.
    ``weights`` optionally scales each token's row (int8 tables keep their per-row scale there).
    ``token_mapping`` (vocabulary quantization, Model2Vec's layout): token id ``t`` uses the row
    ``embeddings[token_mapping[t]]`` times ``weights[t]``; ``embeddings`` then holds one row per cluster and
    ``weights`` one value per token id. The rows are expanded to one per token id in memory (the pooling kernels stay
    as they are); a save stores the clusters, the mapping and the weights.
    ``contrast`` (default from the config, else 0) chooses the pooling: 0 is the plain mean of the rows (Model2Vec's);
    ``c > 0`` weights each row by ``exp(-c * cos(row, the text's plain mean))``, so the tokens that set a text apart
    from what its tokens share count more (see ``static_model.pooling.pool``).
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        tokenizer: Tokenizer,
        *,
        weights: np.ndarray | None = None,
        config: dict[str, Any] | None = None,
        normalize: bool | None = None,
        max_length: int | None = _FROM_CONFIG,
        contrast: float | None = None,
        token_mapping: np.ndarray | None = None,
    ) -> None:
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer, not {type(tokenizer).__name__}")
        if not isinstance(embeddings, np.ndarray):
            raise TypeError(f"embeddings must be a numpy array, not {type(embeddings).__name__}")
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"config must be a dict, not {type(config).__name__}")
        if embeddings.dtype.kind == "f" and embeddings.dtype not in (np.float32, np.float16, np.float64):
            embeddings = embeddings.astype(np.float64)  # checked as float64, then cast to float32
        if weights is not None:
            weights = np.asarray(weights)
            if weights.dtype.kind not in "biuf":  # numbers as they are (checked before the cast), or numpy's error
                weights = weights.astype(np.float32)
        if token_mapping is not None and not isinstance(token_mapping, np.ndarray):
            raise TypeError(f"token_mapping must be a numpy array, not {type(token_mapping).__name__}")
        config = dict(config or {})
        if config.get("normalize") is not None:
            check_bool(config["normalize"], "config['normalize']")
        # a tokenizer that cannot encode fails here, naming the argument, not on the first encode (or inside the
        # text encoder's set-up) with the tokenizers library's bare Exception; a folder's gets the same probe
        persistence.check_tokenizer_argument(tokenizer, "tokenizer")
        # float64 values and weights are checked before the cast: one float32 cannot hold is an error saying so
        persistence.check_consistency(embeddings, weights, tokenizer, config, mapping=token_mapping)
        if embeddings.dtype == np.float64:
            embeddings = embeddings.astype(np.float32)
        if weights is not None:
            weights = weights.astype(np.float32, copy=False)
        self._set_up(embeddings, tokenizer, weights, config, normalize, max_length, contrast, token_mapping)

    def _set_up(self, embeddings: np.ndarray, tokenizer: Tokenizer, weights: np.ndarray | None,
                config: dict[str, Any], normalize: bool | None, max_length: Any, contrast: float | None,
                token_mapping: np.ndarray | None = None) -> None:
        """The constructor after its checks (``from_pretrained`` comes here directly: ``read_folder`` checked)."""
        self._mapping = None if token_mapping is None else np.ascontiguousarray(token_mapping, dtype=np.int32)
        self._centres = None if token_mapping is None else np.ascontiguousarray(embeddings)
        self._embeddings = np.ascontiguousarray(embeddings if token_mapping is None else embeddings[self._mapping])
        self._weights = weights
        self._encoder = TextEncoder(tokenizer)
        self._public_tokenizer: Tokenizer | None = None
        stale = _STALE_KEYS if token_mapping is not None else (*_STALE_KEYS, CLUSTERS_KEY)
        self._extra = {k: v for k, v in config.items() if k not in stale}
        self._settings = _Settings(
            check_bool(bool(config.get("normalize") or False) if normalize is None else normalize, "normalize"),
            _check_max_length(config.get("max_length", DEFAULT_MAX_LENGTH) if max_length is _FROM_CONFIG
                              else max_length),
            check_contrast(config.get("contrast", 0.0) if contrast is None else contrast),
        )
        self._row_norms: np.ndarray | None = None
        self._pool_weights = weights if weights is not None else np.ones(len(self._embeddings), dtype=np.float32)

    # ------------------------------------------------------------------ properties
    @property
    def normalize(self) -> bool:
        """Whether :meth:`encode` L2-normalizes by default."""
        return self._settings.normalize

    @normalize.setter
    def normalize(self, value: bool) -> None:
        self._change(normalize=check_bool(value, "normalize"))

    @property
    def max_length(self) -> int | None:
        """Tokens kept per text (``None``: all); what ``max_length=None`` (the default) in :meth:`encode`,
        :meth:`tokenize` and :meth:`encode_as_sequence`, and :meth:`similarity`, use."""
        return self._settings.max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self._change(max_length=_check_max_length(value))

    @property
    def contrast(self) -> float:
        """The pooling's contrast (0: plain mean)."""
        return self._settings.contrast

    @contrast.setter
    def contrast(self, value: float) -> None:
        self._change(contrast=check_contrast(value))

    def _change(self, **checked: Any) -> None:
        """Replace the settings as one tuple (the values are checked); calls in flight keep the one they read."""
        with _SETTINGS_LOCK:
            self._settings = self._settings._replace(**checked)

    def _resolve(self, normalize: bool | None = None, max_length: int | None = None,
                 contrast: float | None = None) -> _Settings:
        """One call's settings: the model's, read once, where the call passes ``None``; else the call's, checked."""
        settings = self._settings
        return _Settings(
            settings.normalize if normalize is None else check_bool(normalize, "normalize"),
            settings.max_length if max_length is None else _check_max_length(max_length),
            settings.contrast if contrast is None else check_contrast(contrast),
        )

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        return int(self._embeddings.shape[1])

    def get_embedding_dimension(self) -> int:
        """The embedding dimension, :attr:`dim` (sentence-transformers' name)."""
        return self.dim

    def get_sentence_embedding_dimension(self) -> int:
        """The embedding dimension, :attr:`dim` (sentence-transformers' older name)."""
        return self.dim

    @property
    def vocab_size(self) -> int:
        """The number of token ids the model maps."""
        return int(self._embeddings.shape[0])

    @property
    def dtype(self) -> str:
        """How the table is stored: ``float32``, ``float16`` or ``int8``."""
        return self._embeddings.dtype.name

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, with padding and truncation switched off: a copy of the one the model encodes with (made
        on first access, then the same object), so changing it (``add_tokens``, ``enable_padding``) cannot change
        the model, whose table has one row per token id it was built with."""
        public = self._public_tokenizer
        if public is None:
            public = self._public_tokenizer = prepare_tokenizer(self._encoder.tokenizer)
        return public

    @property
    def cache_bytes(self) -> int:
        """Byte budget of the chunk cache that makes repeated words free (default 64 MiB; 0: no cache).

        The cache keeps two generations, each filled up to 40% of the budget (the rest is the spare capacity of their
        arrays); when the newer one fills up, the older one is dropped. Calls in flight keep what they already read, so
        a full cache never fails or blocks a call. Lowering it drops at once what no longer fits.
        """
        return self._encoder.cache_bytes

    @cache_bytes.setter
    def cache_bytes(self, value: int) -> None:
        self._encoder.cache_bytes = value

    def cache_info(self) -> CacheInfo:
        """Entries and bytes held by the chunk cache (measured: ids, dict, str and int objects), its budget, and hits /
        misses since the last clear (the separators between texts are not look-ups)."""
        return self._encoder.cache_info()

    def clear_cache(self) -> None:
        """Empty the chunk cache (vectors do not change; the next calls tokenize their words again)."""
        self._encoder.clear_cache()

    @property
    def embeddings(self) -> np.ndarray:
        """The stored table: one row per token id, or per cluster when :attr:`token_mapping` is set (see
        :meth:`embedding_matrix` for the float32 rows the model averages, one per token id)."""
        return self._embeddings if self._centres is None else self._centres

    @property
    def token_mapping(self) -> np.ndarray | None:
        """Vocabulary quantization: the row of :attr:`embeddings` each token id uses (int32), or ``None``."""
        return self._mapping

    @property
    def weights(self) -> np.ndarray | None:
        """Per-token-id multipliers of the stored rows, or ``None``."""
        return self._weights

    @property
    def config(self) -> dict[str, Any]:
        """What ``config.json`` holds: the runtime settings plus what produced the model."""
        config = dict(self._extra)
        config.setdefault("producer", {"library": "static-embeddings", "version": __version__})
        settings = self._settings
        config.update(
            model_type="static_model",
            dim=self.dim,
            vocab_size=self.vocab_size,
            dtype=self.dtype,
            normalize=settings.normalize,
            max_length=settings.max_length,
            contrast=settings.contrast,
        )
        if self._centres is not None:  # Model2Vec's key: the number of cluster rows
            config["vocabulary_quantization"] = len(self._centres)
        return config

    def embedding_matrix(self) -> np.ndarray:
        """The float32 rows that get averaged: ``embeddings * weights``."""
        return effective_rows(self._embeddings, self._weights)

    # ------------------------------------------------------------------ encoding
    @keep_interrupts
    def encode(
        self,
        texts: str | Iterable[str],
        *,
        batch_size: int = 4096,
        normalize: bool | None = None,
        max_length: int | None = None,
        contrast: float | None = None,
        show_progress_bar: bool = False,
        workers: int = 1,
    ) -> np.ndarray:
        """Float32 vectors, ``(n, dim)`` for a list of texts and ``(dim,)`` for one ``str``.

        A text's vector is the mean of its tokens' rows (no special tokens, unknown tokens dropped, at most
        ``max_length`` tokens), weighted by ``exp(-contrast * cos(row, plain mean))`` when ``contrast`` is above 0,
        and L2-normalized when ``normalize``. Each of the three left ``None`` is the model's setting, read once per
        call (so ``max_length=None`` means :attr:`max_length`, which may itself be ``None``: every token).
        A text without known tokens gives a zero vector.

        ``workers > 1`` encodes batches on that many threads of this call (the compiled parts release the GIL);
        nothing outside the call changes. The vectors are the same for any ``workers`` and ``batch_size``.
        """
        single, texts = as_texts(texts)
        batch_size = _check_positive_int(batch_size, "batch_size")
        settings = self._resolve(normalize, max_length, contrast)
        workers = _check_positive_int(workers, "workers")
        progress = check_bool(show_progress_bar, "show_progress_bar")
        out = self._encode(texts, settings, batch_size=batch_size, workers=workers, progress=progress)
        return out[0] if single else out

    def _encode(self, texts: Sequence[str], settings: _Settings, *, batch_size: int = 4096, workers: int = 1,
                progress: bool = False) -> np.ndarray:
        """``(n, dim)`` vectors of checked texts with resolved settings (reads none of the model's settings)."""
        normalize, max_length, contrast = settings
        norms = self._norms() if contrast > 0 else None
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if workers > 1 and len(texts) > 1:  # at least two batches per worker, so that they share the work
            batch_size = max(1, min(batch_size, -(-len(texts) // (2 * workers))))

        def encode_batch(bounds: tuple[int, int]) -> None:
            start, end = bounds
            for positions, ids, offsets in self._encoder.encode_parts(texts[start:end], max_length):
                pool(self._embeddings, self._pool_weights, ids, offsets, out, positions + start, normalize=normalize,
                     contrast=contrast, norms=norms)

        batches = _slices(texts, batch_size, max_length)
        # the number of batches, for a progress bar (counted on a second pass: a list of a million small batches
        # would be memory of its own)
        bar = sum(1 for _ in _slices(texts, batch_size, max_length)) if progress else None
        if workers == 1 or len(texts) <= 1:
            for _ in _progress(map(encode_batch, batches), bar, len(texts)):
                pass
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="static_model.encode") as executor:
                # the bar advances as batches finish, in order
                for _ in _progress(_bounded_map(executor, encode_batch, batches, _WINDOW * workers), bar,
                                   len(texts)):
                    pass
        return out

    def _norms(self) -> np.ndarray:
        """``|table[t] * weights[t]|`` per token (computed once: the table never changes in place)."""
        if self._row_norms is None:  # in row chunks: no float32 copy of the whole table
            norms = np.empty(self.vocab_size, dtype=np.float32)
            for lo in range(0, self.vocab_size, 4096):
                weights = None if self._weights is None else self._weights[lo : lo + 4096]
                rows = effective_rows(self._embeddings[lo : lo + 4096], weights)
                norms[lo : lo + 4096] = np.linalg.norm(rows, axis=1)
            self._row_norms = norms
        return self._row_norms


    @keep_interrupts
    def encode_as_sequence(
        self, texts: str | Iterable[str], *, max_length: int | None = None
    ) -> np.ndarray | list[np.ndarray]:
        """Each text's token vectors, ``(n_tokens, dim)`` float32 (one array for one ``str``); ``max_length=None``:
        the model's :attr:`max_length`."""
        single, texts = as_texts(texts)
        sequences = []
        for ids, offsets in self._token_ids(texts, self._resolve(max_length=max_length).max_length):
            rows = rows_as_float32(self._embeddings, self._pool_weights, ids)
            sequences += [rows[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        return sequences[0] if single else sequences

    @keep_interrupts
    def tokenize(self, texts: str | Iterable[str], *, max_length: int | None = None) -> list[np.ndarray]:
        """The int32 token ids that :meth:`encode` averages, one array per text; ``max_length=None``: the model's
        :attr:`max_length`."""
        _, texts = as_texts(texts)
        arrays = []
        for ids, offsets in self._token_ids(texts, self._resolve(max_length=max_length).max_length):
            arrays += [ids[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        return arrays

    def _token_ids(self, texts: Sequence[str], max_length: int | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Flat ids and offsets of consecutive slices of ``texts`` (see ``_slices``), in order."""
        for start, end in _slices(texts, len(texts), max_length):
            yield self._encoder.encode(texts[start:end], max_length)

    @keep_interrupts
    def similarity(self, a: np.ndarray | str | Iterable[str], b: np.ndarray | str | Iterable[str]) -> np.ndarray:
        """Cosine similarity matrix ``(len(a), len(b))`` between vectors or texts (texts are encoded first, both
        sides with the model's settings as read once at the start of the call)."""
        settings = self._resolve()
        left, right = self._as_matrix(a, "a", settings), self._as_matrix(b, "b", settings)
        if left.shape[1] != right.shape[1]:
            raise ValueError(f"a has {left.shape[1]} dims but b has {right.shape[1]}")
        return l2_normalize(left) @ l2_normalize(right).T

    def _as_matrix(self, value: Any, name: str, settings: _Settings) -> np.ndarray:
        """``value`` as a 2-D float32 matrix: numbers as they are, texts encoded with ``settings``."""
        if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            matrix = np.atleast_2d(value).astype(np.float32, copy=False)
            if matrix.ndim != 2:
                raise ValueError(f"{name} must be 1-D or 2-D; got shape {value.shape}")
            return matrix
        try:
            texts = as_texts(value)[1]
        except TypeError as exc:  # vectors given as a list of arrays, a tensor, a list of floats ...
            raise TypeError(f"{name} must be texts or a numeric numpy array of vectors; {exc}. For vectors pass "
                            f"np.asarray({name})") from exc
        return self._encode(texts, settings)

    # ------------------------------------------------------------------ variants
    def quantize(self, dtype: str) -> StaticModel:
        """A copy stored as ``dtype`` (``float32``, ``float16`` or ``int8`` with per-row scale)."""
        embeddings, weights = quantize(self.embeddings, self._weights, dtype, mapping=self._mapping)
        return self._replace(embeddings, weights)

    def truncate_dims(self, dims: int) -> StaticModel:
        """A copy keeping the first ``dims`` dimensions (PCA order: the ones that explain the most). The config's
        records lose what they measured on every dimension (see ``MEASURED_ON_EVERY_DIMENSION``): a vocabulary
        quantized model's ``mean_cosine_to_centre``, a distilled model's ``explained_variance``."""
        dims = _check_positive_int(dims, "dims")
        if dims > self.dim:
            raise ValueError(f"dims={dims} is more than the model's {self.dim} dimensions")
        config = self.config if dims == self.dim else _without_measured(self.config)
        return self._replace(np.ascontiguousarray(self.embeddings[:, :dims]), self._weights, config)

    def _replace(self, embeddings: np.ndarray, weights: np.ndarray | None,
                 config: dict[str, Any] | None = None) -> StaticModel:
        """A copy with another stored table and weights (same token mapping, tokenizer and settings; the config, when
        given, instead of the model's)."""
        config = {k: v for k, v in (self.config if config is None else config).items() if k not in ("dim", "dtype")}
        settings = self._settings
        model = StaticModel(
            embeddings, self._encoder.tokenizer, weights=weights, config=config, normalize=settings.normalize,
            max_length=settings.max_length, contrast=settings.contrast, token_mapping=self._mapping,
        )
        model.cache_bytes = self.cache_bytes  # its own (empty) cache, with the same budget
        return model

    # ------------------------------------------------------------------ disk
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, dims: int | None = None, dtype: str | None = None,
        cache_bytes: int | None = None, normalize: bool | None = None, max_length: int | None = _FROM_CONFIG,
        revision: str | None = None, token: str | bool | None = None,
    ) -> StaticModel:
        """Load a folder written by :meth:`save_pretrained`, by Model2Vec, or by sentence-transformers'
        ``StaticEmbedding``; optionally keep only the first ``dims`` dimensions, re-store as ``dtype``, and set the
        chunk cache's byte budget (see :attr:`cache_bytes`).

        ``normalize`` and ``max_length`` replace the folder's settings, as in Model2Vec's ``from_pretrained`` (and
        the constructor): left out, the config's; ``max_length=None`` keeps every token.

        ``path`` may be a Hugging Face Hub id (``org/name``) that is no local path: its snapshot in the hub cache,
        else downloaded. ``revision`` (a branch, tag or commit) and ``token`` (a str; ``True``: the saved login;
        ``False``: none; ``None``: ``HF_TOKEN`` or the saved login) go to every huggingface_hub call, as in
        sentence-transformers; a local path ignores them, as there. A hub id of a transformer (a teacher) is an error
        saying to distill it first, decided from its JSON files before its weights are downloaded."""
        if dims is not None:  # checked before the folder is read: fail fast (the folder's width is checked later)
            _check_positive_int(dims, "dims")
        if dtype is not None:
            check_dtype(dtype)
        if normalize is not None:
            check_bool(normalize, "normalize")
        if max_length is not _FROM_CONFIG:
            _check_max_length(max_length)
        contents = persistence.read_folder(path, revision=revision, token=token)
        config = {k: v for k, v in contents.config.items() if k not in ("dim", "vocab_size", "dtype")}
        model = cls.__new__(cls)  # read_folder ran every check of the constructor, naming the files
        weights = None if contents.weights is None else np.asarray(contents.weights, dtype=np.float32)
        model._set_up(contents.embeddings, contents.tokenizer, weights, config, normalize, max_length, None,
                      contents.mapping)
        if dims is not None:
            model = model.truncate_dims(dims)
        if dtype is not None and dtype != model.dtype:
            model = model.quantize(dtype)
        if cache_bytes is not None:
            model.cache_bytes = cache_bytes
        return model

    def save_pretrained(self, path: str | os.PathLike, *, dtype: str | None = None, overwrite: bool = False) -> None:
        """Write the folder ``path`` (``~`` expanded) atomically: it holds the old model or the new one, never a mix,
        even if the process is killed at any instant; a failed save leaves it as it was.

        A missing or empty folder is written; a folder holding a model is replaced only with ``overwrite=True``; a
        folder holding anything else is never replaced (``FileExistsError`` names it). The current folder (``"."``)
        cannot be replaced as a whole: give a new folder's path. Saves of one folder at once (threads, processes): with
        ``overwrite=True`` the last one wins; without, one that finds a model put there meanwhile raises
        ``FileExistsError`` and leaves it as it is.
        """
        target = persistence.check_save_target(path, overwrite=overwrite)  # before any work: fail fast
        persistence.write_folder(target, self.folder_contents(dtype), overwrite=overwrite)

    def folder_contents(self, dtype: str | None = None) -> persistence.FolderContents:
        """What :meth:`save_pretrained` writes (table in ``dtype``, default the model's; weights, tokenizer, config,
        cluster mapping), for writers that put a model's files into a folder of their own (a classifier pipeline)."""
        model = self if dtype is None or check_dtype(dtype) == self.dtype else self.quantize(dtype)
        return persistence.FolderContents(model.embeddings, model._weights, model._encoder.tokenizer, model.config,
                                          mapping=model._mapping)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """The table, weights, mapping, tokenizer (as JSON, via the encoder) and settings; never the chunk cache,
        the row norms, the all-ones weights or the rows expanded through the mapping, which are rebuilt."""
        state = dict(self.__dict__)
        state["_row_norms"] = None
        state["_public_tokenizer"] = None
        if self._weights is None:
            state["_pool_weights"] = None
        if self._centres is not None:
            state["_embeddings"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_mapping", None)  # pickled before vocabulary quantization existed
        state.setdefault("_centres", None)
        state.setdefault("_public_tokenizer", None)
        if "_settings" not in state:  # pickled when each setting was its own attribute
            state["_settings"] = _Settings(state.pop("_normalize"), state.pop("_max_length"), state.pop("_contrast"))
        self.__dict__.update(state)
        if self._centres is not None and self._mapping is not None:
            self._embeddings = np.ascontiguousarray(self._centres[self._mapping])
        if self._pool_weights is None:
            self._pool_weights = np.ones(len(self._embeddings), dtype=np.float32)

    def __copy__(self) -> StaticModel:
        """``copy.copy``: shares the (never modified) table, weights, mapping, row norms and tokenizer, and reads no
        file; the settings, ``cache_bytes`` and the chunk cache (a new, empty one) are the copy's own, so a change to
        either model never reaches the other."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._encoder = self._encoder.__copy__()
        copy._public_tokenizer = None  # the original's may be changed by its user: the copy makes its own
        return copy

    def __repr__(self) -> str:
        clusters = "" if self._centres is None else f", clusters={len(self._centres)}"
        normalize, max_length, contrast = self._settings
        return (
            f"StaticModel(vocab_size={self.vocab_size}, dim={self.dim}, dtype={self.dtype}{clusters}, "
            f"normalize={normalize}, max_length={max_length}, contrast={contrast})"
        )


def _without_measured(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with each record of ``MEASURED_ON_EVERY_DIMENSION`` copied without what it measured (the records
    themselves are not changed: the model's config shares them)."""
    for key, measured in MEASURED_ON_EVERY_DIMENSION.items():
        record = config.get(key)
        if isinstance(record, dict):
            config[key] = {k: v for k, v in record.items() if k not in measured}
    return config


def _slices(texts: Sequence[str], batch_size: int, max_length: int | None) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the consecutive batches that a call tokenizes one at a time: at most ``batch_size`` and
    ``SLICE_TEXTS`` texts, and at most ``SLICE_CHARS`` characters past a batch's first text (each text counted up to
    where a long one is cut), so a call's intermediate memory (the chunk strings, ids and offsets of one batch) stays
    bounded whatever its ``batch_size`` and texts. A text's vector and ids do not depend on its batch."""
    n, size = len(texts), min(batch_size, SLICE_TEXTS)
    if n <= size and sum(map(len, texts)) <= SLICE_CHARS:  # one batch (most calls): no arrays to make
        yield from [(0, n)] if n else []
        return
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    if max_length is not None:
        np.minimum(lengths, CHARS_PER_TOKEN * max_length, out=lengths)
    ends = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=ends[1:])
    start = 0
    while start < n:
        end = min(start + size, n)
        if ends[end] - ends[start] > SLICE_CHARS:
            end = max(int(np.searchsorted(ends, ends[start] + SLICE_CHARS, side="right")) - 1, start + 1)
        yield start, end
        start = end


def _bounded_map(executor: ThreadPoolExecutor, func: Callable[[tuple[int, int]], None],
                 items: Iterable[tuple[int, int]], window: int) -> Iterator[None]:
    """``executor.map(func, items)``, in order, with at most ``window`` items submitted and not yet collected:
    ``executor.map`` submits every item at once, a future (about 2 KB) per batch, so a million small batches held
    gigabytes. An error, or an interrupt while waiting, cancels the batches not started.

    Once the interpreter is shutting down (a serving thread that outlives the main thread, an ``atexit`` handler),
    ``concurrent.futures`` refuses every ``submit``: the rest of the batches then run on the calling thread. Only that
    refusal, raised before the batch is queued: a thread that fails to start raises after, and its batch may still
    run on the executor (run twice at once, both would write its rows)."""
    pending: deque[Future[None]] = deque()
    items = iter(items)
    try:
        for item in items:
            if len(pending) >= window:
                yield pending.popleft().result()
            try:
                future = executor.submit(func, item)
            except RuntimeError as exc:
                if "cannot schedule new futures" not in str(exc):
                    raise
                while pending:
                    yield pending.popleft().result()
                for rest in itertools.chain([item], items):
                    func(rest)
                    yield None
                return
            pending.append(future)
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _progress(results: Iterator[None], batches: int | None, total: int) -> Iterable[None]:
    """``results`` (one per finished batch), through a tqdm bar of ``batches`` steps unless that is ``None``."""
    if batches is None:
        return results
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError("show_progress_bar=True needs tqdm: pip install tqdm") from exc
    return tqdm(results, total=batches, desc=f"Encoding {total} texts", unit="batch")
