"""The transformer path: a sentence-transformers teacher run with plain ``transformers``.

``Teacher`` reads the sentence-transformers configuration (modules.json, 1_Pooling/config.json, the
Normalize module, sentence_bert_config.json) and encodes with the same signature and output
conventions as ``StaticModel.encode``: float32 numpy, ``(n, dim)`` for a list, ``(dim,)`` for a str.

The light part (configs and the fast tokenizer) loads in ``__init__``; the transformer weights load
on first use (``Teacher.model``), so ``distill`` can validate everything before any heavy work.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import Unigram

from distill.resolve import DEFAULT_TEACHER, public_teacher_name, recorded_revision, resolve_teacher
from static_model.validation import as_texts, check_positive_int

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len", "lasttoken")


class TeacherError(ValueError):
    """The teacher folder cannot be used (no fast tokenizer, unsupported modules, ...)."""


@dataclass
class TeacherSpec:
    """What the sentence-transformers config says about a teacher folder (no weights loaded)."""

    path: Path
    transformer_path: Path
    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    modules: list[str] = field(default_factory=list)
    hidden_size: int = 0
    model_type: str = ""
    pad_token_id: int | None = None
    vocab_size: int | None = None
    # modules.json present: the pooling and normalization are the teacher's own; absent (a plain Hugging Face
    # folder, e.g. a masked language model), they are assumed (mean, no normalization)
    sentence_transformers: bool = False


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise TeacherError(f"Cannot read {path}: {exc}") from exc


def _read_json_object(path: Path) -> dict[str, Any]:
    """``path``'s JSON, which must be an object (a config file)."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise TeacherError(f"{path} is not a JSON object.")
    return data


def _positive_int_or_none(value: Any, key: str, where: Path) -> int | None:
    """A config's ``key``: a whole number >= 1 (``None``, 0 or absent: ``None``); a ``TeacherError`` naming the file
    and the key otherwise (a corrupt config once ended as ``invalid literal for int()``)."""
    if isinstance(value, str) and value.strip().isdigit():  # "256": read as before
        value = int(value)
    if value is None or (value == 0 and not isinstance(value, str)):
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not value.is_integer()) or value < 1):
        raise TeacherError(f"{where}: {key} is {value!r}, not a whole number >= 1.")
    return int(value)


def _pooling_from_config(cfg: dict[str, Any], where: Path) -> str:
    if isinstance(cfg.get("pooling_mode"), str):  # newer sentence-transformers spelling
        mode = cfg["pooling_mode"].lower().replace("-", "_")
        aliases = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max", "last_token": "lasttoken"}
        mode = aliases.get(mode, mode)
        if mode in POOLING_MODES:
            return mode
        raise TeacherError(f"Unsupported pooling mode {mode!r} in {where}.")
    flags = {
        "cls": cfg.get("pooling_mode_cls_token", False),
        "mean": cfg.get("pooling_mode_mean_tokens", False),
        "max": cfg.get("pooling_mode_max_tokens", False),
        "mean_sqrt_len": cfg.get("pooling_mode_mean_sqrt_len_tokens", False),
        "lasttoken": cfg.get("pooling_mode_lasttoken", False),
    }
    if cfg.get("pooling_mode_weightedmean_tokens"):
        raise TeacherError(f"Weighted-mean pooling ({where}) is not supported.")
    on = [k for k, v in flags.items() if v]
    if len(on) != 1:
        raise TeacherError(
            f"{where} enables {on or 'no'} pooling modes; exactly one of {list(flags)} is supported."
        )
    return on[0]


def read_teacher_spec(path: Path) -> TeacherSpec:
    """Parse the sentence-transformers (or plain Hugging Face) configuration of a teacher folder."""
    path = Path(path)
    spec = TeacherSpec(path=path, transformer_path=path)
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = _read_json(modules_file)
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise TeacherError(f"{modules_file} is not a list of modules (JSON objects with type and path).")
        spec.sentence_transformers = True
        seen_transformer = seen_pooling = False
        for mod in sorted(modules, key=lambda m: m.get("idx", 0)):
            kind = str(mod.get("type", "")).rsplit(".", 1)[-1]
            spec.modules.append(kind)
            folder_name = mod.get("path", "")
            if not isinstance(folder_name, str):
                raise TeacherError(f"{modules_file}: the {kind or 'unnamed'} module's path is {folder_name!r}, not a "
                                   "folder name (\"\" for the teacher folder itself).")
            mod_path = path / folder_name
            if kind == "Transformer":
                spec.transformer_path = mod_path
                seen_transformer = True
            elif kind == "Pooling":
                cfg_file = mod_path / "config.json"
                if not cfg_file.is_file():
                    raise TeacherError(f"{cfg_file} is missing: {modules_file} names a Pooling module there, and its "
                                       "config says how the teacher pools (copy the teacher's folder whole).")
                spec.pooling = _pooling_from_config(_read_json_object(cfg_file), cfg_file)
                seen_pooling = True
            elif kind == "Normalize":
                spec.normalize = True
            else:
                raise TeacherError(
                    f"Teacher module {mod.get('type')!r} ({modules_file}) is not supported; "
                    "supported: Transformer, Pooling, Normalize."
                )
        if not seen_transformer:
            raise TeacherError(f"{modules_file} has no Transformer module.")
        if not seen_pooling:
            spec.pooling = "mean"
    for name in ("sentence_bert_config.json",):
        for folder in (spec.transformer_path, path):
            f = folder / name
            if f.is_file():
                st_cfg = _read_json_object(f)
                spec.max_seq_length = _positive_int_or_none(st_cfg.get("max_seq_length"), "max_seq_length", f)
                spec.do_lower_case = bool(st_cfg.get("do_lower_case", False))
                break
    config_file = spec.transformer_path / "config.json"
    if not config_file.is_file():
        raise TeacherError(f"Teacher folder {spec.transformer_path} has no config.json (Hugging Face model config).")
    cfg = _read_json_object(config_file)
    spec.model_type = str(cfg.get("model_type", ""))
    # GPT-2 style configs store the width as n_embd, T5/BART as d_model, DistilBERT as dim
    width = next((k for k in ("hidden_size", "d_model", "n_embd", "dim") if cfg.get(k)), None)
    spec.hidden_size = 0 if width is None else _positive_int_or_none(cfg[width], width, config_file) or 0
    if spec.hidden_size < 1:
        raise TeacherError(f"{config_file} states no hidden size (hidden_size, d_model, n_embd or dim).")
    spec.pad_token_id = cfg.get("pad_token_id")
    spec.vocab_size = cfg.get("vocab_size")
    if spec.max_seq_length is None:
        mpe = cfg.get("max_position_embeddings")
        if isinstance(mpe, int):
            # RoBERTa-style models reserve padding_idx + 1 positions.
            roberta_style = spec.model_type in ("roberta", "xlm-roberta", "mpnet", "camembert")
            spec.max_seq_length = mpe - 2 if roberta_style else mpe
    return spec


def load_fast_tokenizer(folder: Path) -> Tokenizer:
    """The teacher's fast (``tokenizers``) tokenizer with padding and truncation switched off."""
    folder = Path(folder)
    tok_file = folder / "tokenizer.json"
    if tok_file.is_file():
        try:
            tok = Tokenizer.from_file(str(tok_file))
        except Exception as exc:
            raise TeacherError(f"Cannot load the fast tokenizer {tok_file}: {exc}") from exc
    else:
        # a vocabulary to build one from: tokenizer_config.json alone gives (transformers 5) a tokenizer of only its
        # special tokens, which once surfaced as "the vocabulary is empty after dropping special tokens"
        files = ("vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
        if not any((folder / f).is_file() for f in files):
            raise TeacherError(
                f"Teacher {folder} has no fast tokenizer: no tokenizer.json and no vocabulary file to build one from "
                f"({', '.join(files)}); copy the teacher's folder whole."
            )
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        except Exception as exc:
            raise TeacherError(
                f"Teacher {folder} has no fast tokenizer: no tokenizer.json, and transformers could not "
                f"build one ({type(exc).__name__}: {exc}). A `tokenizers` (fast) tokenizer is required."
            ) from exc
        backend = getattr(hf, "backend_tokenizer", None) if getattr(hf, "is_fast", False) else None
        if not isinstance(backend, Tokenizer):
            raise TeacherError(
                f"Teacher {folder} has no fast tokenizer (transformers gave {type(hf).__name__}); "
                "a `tokenizers` (fast) tokenizer is required."
            )
        tok = Tokenizer.from_str(backend.to_str())
    if tok.get_vocab_size(with_added_tokens=False) == 0:
        raise TeacherError(f"Teacher {folder} has no fast tokenizer: its tokenizer has an empty vocabulary.")
    if isinstance(tok.model, Unigram):  # a piece listed twice: refused before the vocabulary pass, naming the file
        from static_model.tokenization import check_unigram_pieces

        try:
            check_unigram_pieces(json.loads(tok.to_str()), str(tok_file if tok_file.is_file() else folder))
        except ValueError as exc:
            raise TeacherError(str(exc)) from None
    tok.no_padding()
    tok.no_truncation()
    return tok


def single_template(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """Ids the tokenizer's post-processor puts before and after a single sequence."""
    for probe in ("a", "the", "hello", "x", "1", "."):
        bare = tokenizer.encode(probe, add_special_tokens=False).ids
        full = tokenizer.encode(probe, add_special_tokens=True).ids
        if not bare:
            continue
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return full[:i], full[i + len(bare) :]
    return [], []


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def check_device(device: str) -> str:
    """Return ``device`` when torch can run on it here; raise ``ValueError`` saying why not.

    Checks the string (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ``xpu``) and that the machine has the device, so a
    wrong ``--device`` fails before a teacher loads instead of deep inside torch.
    """
    import torch

    try:
        parsed = torch.device(str(device))
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICE_TYPES)} "
                         "(with an index, e.g. cuda:1)") from None
    if parsed.type not in DEVICE_TYPES:
        raise ValueError(f"unsupported device type {parsed.type!r}; use one of {', '.join(DEVICE_TYPES)}")
    if parsed.type == "cpu":
        return str(device)
    backend = torch.backends.mps if parsed.type == "mps" else getattr(torch, parsed.type, None)
    if backend is None or not backend.is_available():
        raise ValueError(f"{parsed.type} is not available on this machine (torch {torch.__version__}); use cpu")
    if parsed.index is not None and parsed.type in ("cuda", "xpu"):
        count = getattr(torch, parsed.type).device_count()
        if parsed.index >= count:
            raise ValueError(f"{device!r} does not exist: this machine has {count} {parsed.type} device(s)")
    return str(device)


def pick_device(device: str | None) -> str:
    """``device`` checked (``check_device``), or the default: cuda when available, else cpu."""
    import torch

    if device:
        return check_device(device)
    return "cuda" if torch.cuda.is_available() else "cpu"


def damaged_weights_file(folder: Path) -> tuple[Path, str] | None:
    """The first weights file of ``folder`` (``*.safetensors``, ``pytorch_model*.bin``) that cannot be read, with
    the reason, or None when all can (run after a failed load, to name the file rather than the folder)."""
    import zipfile

    import torch
    from safetensors import safe_open

    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # safetensors raises its own SafetensorError for a bad header
            return file, one_line_reason(exc)
    for file in sorted(Path(folder).glob("pytorch_model*.bin")):
        try:
            torch.load(file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file))
        except Exception as exc:  # a truncated zip or pickle raises RuntimeError, EOFError, UnpicklingError ...
            return file, one_line_reason(exc)
    return None


def one_line_reason(exc: BaseException) -> str:
    """An exception's text on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class Teacher:
    """A sentence-transformers teacher, loaded with ``transformers`` from its resolved folder (``revision`` and
    ``token``: for a hub id, as in sentence-transformers; see :func:`distill.resolve.resolve_teacher`).

    >>> teacher = Teacher("sentence-transformers/all-MiniLM-L6-v2")
    >>> teacher.encode(["a sentence", "another one"]).shape
    (2, 384)
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike = DEFAULT_TEACHER,
        device: str | None = None,
        *,
        max_length: int | None = None,
        dtype: str | None = None,
        revision: str | None = None,
        token: str | bool | None = None,
    ) -> None:
        self._device = pick_device(device) if device is not None else None  # a bad device fails first
        self.name = os.fspath(name_or_path)
        self.path = resolve_teacher(name_or_path, revision=revision, token=token)
        self._revision = revision
        self.spec = read_teacher_spec(self.path)
        self.tokenizer = load_fast_tokenizer(self.spec.transformer_path)
        self.max_length = int(max_length or self.spec.max_seq_length or 512)
        self.pooling = self.spec.pooling
        self.normalize = self.spec.normalize
        self._dtype = dtype
        self._model: Any = None
        self._missing_keys: frozenset[str] = frozenset()
        self._takes_token_types = False
        self._trunc_tok: Tokenizer | None = None
        self._trunc_len: int | None = None
        self.pad_token_id = self._find_pad_id()

    # ------------------------------------------------------------------ properties
    def __repr__(self) -> str:
        return f"Teacher({self.name!r}, pooling={self.pooling!r}, normalize={self.normalize}, dim={self.dim})"

    @property
    def public_name(self) -> str:
        """The teacher's name for a published model: a hub id or a folder's base name, never a local path
        (``distill.resolve.public_teacher_name``)."""
        return public_teacher_name(self.name, self.path)

    @property
    def revision(self) -> str | None:
        """The teacher's hub revision for a model's config (``teacher_revision``): the commit of the hub snapshot it was
        loaded from, else the revision given for a hub id, else ``None`` (``distill.resolve.recorded_revision``)."""
        return recorded_revision(self.name, self.path, self._revision)

    @property
    def dim(self) -> int:
        """The transformer's hidden size."""
        return self.spec.hidden_size

    @property
    def device(self) -> str:
        """The torch device the weights run on (``pick_device``'s default until one is given)."""
        if self._device is None:
            self._device = pick_device(None)
        return str(self._device)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The weights' dtype: the ``dtype`` given, else float16 on CUDA and float32 elsewhere."""
        import torch

        if self._dtype is None:
            return torch.float16 if self.device.startswith("cuda") else torch.float32
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self._dtype]

    @property
    def template(self) -> tuple[list[int], list[int]]:
        """Ids the tokenizer puts before and after a single sequence (``[CLS]``/``[SEP]``, ``<s>``/``</s>``)."""
        return single_template(self.tokenizer)

    @property
    def student_max_length(self) -> int:
        """Tokens a static model should read so that it sees what this teacher sees: its ``max_seq_length`` less the
        special tokens of its single-sequence template (``static_model``'s default when it states none).

        Reading 512 instead costs SciFact nDCG@10 1.7 points (refined MiniLM) and 2.1 (plain distill), because the
        teacher's targets and its own scores only ever saw the first 256 tokens (``benchmarks/results/refine.md``)."""
        limit = self.spec.max_seq_length
        if not limit:
            from static_model.model import DEFAULT_MAX_LENGTH

            return DEFAULT_MAX_LENGTH
        prefix, suffix = self.template
        return max(1, int(limit) - len(prefix) - len(suffix))

    def unload(self) -> None:
        """Free the transformer weights (they load again on the next use of ``model``)."""
        self._model = None

    @property
    def loaded(self) -> bool:
        """Whether the transformer weights are in memory (``model`` was used and not ``unload``ed since)."""
        return self._model is not None

    @property
    def model(self) -> Any:
        """The transformer (loaded on first use, in eval mode, on ``self.device``)."""
        if self._model is None:
            from transformers import AutoModel

            try:
                model, info = AutoModel.from_pretrained(str(self.spec.transformer_path), dtype=self.torch_dtype,
                                                        output_loading_info=True)
            except Exception as exc:
                damaged = damaged_weights_file(self.spec.transformer_path)
                if damaged is not None:
                    file, reason = damaged
                    raise TeacherError(f"Cannot load the teacher model from {self.spec.transformer_path}: its weights "
                                       f"file {file} is damaged (truncated or not a weights file: {reason}); copy "
                                       "or download it again") from exc
                raise TeacherError(f"Cannot load the teacher model from {self.spec.transformer_path}: {exc}") from exc
            model.eval().to(self.device)
            for p in model.parameters():
                p.requires_grad_(False)
            self._model = model
            self._missing_keys = frozenset(info.get("missing_keys", ()))
            import inspect

            # token type ids (all 0) only for a model with a token-type table (BERT-style): GPT-2 style decoders take
            # the argument but look it up in the word embeddings, so zeros there would add token 0's row everywhere
            self._takes_token_types = ("token_type_ids" in inspect.signature(model.forward).parameters
                                       and bool(getattr(model.config, "type_vocab_size", None)))
        return self._model

    def check_pooler(self) -> None:
        """A ``TeacherError`` unless the transformer has a pooler layer with trained weights (``pooling="pooler"``
        of the vocabulary pass); the weights load here. A checkpoint without pooler weights would get a randomly
        initialised one from ``transformers``: refused rather than silently used."""
        model = self.model
        if getattr(model, "pooler", None) is None:
            raise TeacherError(
                f"pooling='pooler': the teacher {self.name!r} ({self.spec.model_type or type(model).__name__}) "
                "has no pooler layer; use first, last, mean or token."
            )
        missing = sorted(k for k in self._missing_keys if "pooler" in k.split("."))
        if missing:
            raise TeacherError(
                f"pooling='pooler': the checkpoint in {self.spec.transformer_path} has no trained pooler weights "
                f"({', '.join(missing)}); transformers would initialise them at random. Use first, last, mean or token."
            )

    @property
    def embedding_rows(self) -> int | None:
        """Rows of the transformer's input-embedding table: the loaded model's, else ``vocab_size`` in its config.json
        (no weights load); ``None`` when neither is known."""
        if self._model is not None:
            try:
                table = self._model.get_input_embeddings()
            except (AttributeError, NotImplementedError):  # a model class that does not say: its config does
                table = None
            if table is not None and hasattr(table, "num_embeddings"):
                return int(table.num_embeddings)
        size = self.spec.vocab_size
        return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    def check_token_ids(self, ids: Iterable[int]) -> None:
        """A ``TeacherError`` naming the teacher, the largest id (and its token) and the table's rows when an id in
        ``ids`` has no row in the input-embedding table (``embedding_rows``): the tokenizer does not fit the model,
        and torch would only raise a bare ``IndexError`` from the embedding lookup."""
        rows = self.embedding_rows
        top = max(ids, default=-1)
        if rows is None or top < rows:
            return
        raise TeacherError(
            f"Teacher {self.name!r}: its tokenizer gives id {top} ({self.tokenizer.id_to_token(top)!r}) but its "
            f"model has only {rows} input embeddings (ids 0-{rows - 1}); the tokenizer "
            f"({self.tokenizer.get_vocab_size(with_added_tokens=True)} tokens with the added ones) does not fit the "
            "model's embedding table."
        )

    def _find_pad_id(self) -> int:
        if isinstance(self.spec.pad_token_id, int):
            return self.spec.pad_token_id
        for tok in ("[PAD]", "<pad>", "<|padding|>", "<|endoftext|>"):
            tid = self.tokenizer.token_to_id(tok)
            if tid is not None:
                return tid
        return 0

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Run the transformer on token id lists (padded right); return ``(hidden, mask, pooler)`` torch tensors,
        ``pooler`` the model's ``pooler_output`` (``None`` when it has none)."""
        import torch

        model = self.model
        lengths = [len(x) for x in batch]
        width = max(lengths)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        for i, seq in enumerate(batch):
            ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        self.check_token_ids([int(ids.max())] if ids.numel() else [])  # not torch's bare IndexError from the lookup
        mask = (torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]).to(self.device, torch.long)
        inputs = {"input_ids": ids.to(self.device)}
        if min(lengths) < width:  # no padding in the batch (length-sorted): no mask, the fast attention path
            inputs["attention_mask"] = mask
        if self._takes_token_types:
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        out = model(**inputs)
        if isinstance(out, tuple):
            return out[0], mask, out[1] if len(out) > 1 else None
        return out.last_hidden_state, mask, getattr(out, "pooler_output", None)

    def forward_ids(self, batch: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the transformer on token id lists (padded right); return ``(hidden, mask)`` torch tensors."""
        hidden, mask, _ = self.forward(batch)
        return hidden, mask

    @staticmethod
    def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
        """``hidden`` (batch, length, dim) pooled over the positions ``mask`` marks, per the sentence-transformers
        ``mode`` (one of ``POOLING_MODES``); ``lasttoken`` takes the last marked position (right padding)."""
        import torch

        m = mask.to(hidden.dtype).unsqueeze(-1)
        if mode == "mean":
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        if mode == "mean_sqrt_len":
            return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0).sqrt()
        if mode == "cls":
            return hidden[:, 0]
        if mode == "max":
            return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(1).values
        if mode == "lasttoken":
            last = mask.sum(1).clamp_min(1) - 1
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        raise ValueError(f"Unknown pooling {mode!r}")

    def _tokenizer_for(self, max_length: int) -> Tokenizer:
        if self._trunc_tok is None or self._trunc_len != max_length:
            tok = Tokenizer.from_str(self.tokenizer.to_str())
            tok.enable_truncation(max_length)
            self._trunc_tok, self._trunc_len = tok, max_length
        return self._trunc_tok

    def tokenize(self, texts: Iterable[str], *, max_length: int | None = None) -> list[list[int]]:
        """Token ids with the teacher's special tokens, truncated to ``max_length`` (the teacher's)."""
        texts = list(texts)
        if self.spec.do_lower_case:
            texts = [t.lower() for t in texts]
        tok = self._tokenizer_for(int(max_length or self.max_length))
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]

    def encode(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int = 64,
        normalize: bool | None = None,
        max_length: int | None = None,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Sentence embeddings as the sentence-transformers teacher computes them (float32 numpy)."""
        import torch

        single, batch_texts = as_texts(texts)  # the static model's rules: same texts, same errors
        batch_size = check_positive_int(batch_size, "batch_size")
        normalize = self.normalize if normalize is None else bool(normalize)
        out = np.zeros((len(batch_texts), self.dim), dtype=np.float32)
        if batch_texts:
            ids = self.tokenize(batch_texts, max_length=max_length)
            order = np.argsort([-len(x) for x in ids], kind="stable")
            bar = None
            if show_progress_bar:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(ids), desc="Teacher encode", unit=" texts")
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    idx = order[start : start + batch_size]
                    hidden, mask = self.forward_ids([ids[i] for i in idx])
                    pooled = self.pool(hidden, mask, self.pooling).float()
                    if normalize:
                        pooled = torch.nn.functional.normalize(pooled, dim=-1)
                    out[idx] = pooled.cpu().numpy()
                    if bar is not None:
                        bar.update(len(idx))
            if bar is not None:
                bar.close()
        return out[0] if single else out

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity matrix between two sets of embeddings."""
        a = np.atleast_2d(np.asarray(a, dtype=np.float32))
        b = np.atleast_2d(np.asarray(b, dtype=np.float32))
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return a @ b.T
