"""Text → token ids, fast.

Tokenization is the whole cost of a static model, so BERT-style tokenizers (BertNormalizer, BertPreTokenizer) get
a fast path. Their output for a text is the concatenation of their outputs for its whitespace-separated chunks,
so a batch is one ``str.split`` and one dictionary look-up per chunk; each distinct chunk is tokenized once, by
the real tokenizer (batched), and cached. Texts where Python's notion of whitespace differs from BERT's, or that
contain an added token such as ``[MASK]``, go through the Hugging Face tokenizer whole, as does every text of
other tokenizer families. Both paths give the same ids; a test checks it on a real corpus.
"""

from __future__ import annotations

import json
import re
import string
import sys
from typing import Sequence

import numba
import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers

_SEPARATOR = "\x00"  # a chunk of its own between texts; texts holding \x00 take the slow path
_JOINER = f" {_SEPARATOR} "
_MAX_CACHED_CHUNKS = 1_000_000
_PY_WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# BertPreTokenizer splits at every punctuation character, so a chunk's ids are the concatenation of the ids of
# its pieces split there. Only ASCII punctuation is used (unambiguous in every Unicode version); a chunk with other
# punctuation is tokenized whole.
_ASCII_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")

Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # (text positions, flat ids, offsets)


def prepare_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of ``tokenizer`` with padding and truncation switched off (the runtime truncates itself)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str]) -> list:
    """``tokenizer.encode_batch_fast`` without special tokens; lone surrogates (which cannot cross into Rust)
    become U+FFFD, which BERT's normalizer deletes."""
    try:
        return tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
    except (TypeError, UnicodeEncodeError):
        texts = [t.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for t in texts]
        return tokenizer.encode_batch_fast(texts, add_special_tokens=False)


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the model's unknown token, or ``None`` when it has none."""
    model = json.loads(tokenizer.to_str())["model"]
    unk = model.get("unk_token")
    if unk is None and model.get("type") == "Unigram" and model.get("unk_id") is not None:
        return int(model["unk_id"])
    return tokenizer.token_to_id(unk) if isinstance(unk, str) else None


@numba.njit(cache=True)
def _expand_words(word_ids, piece_offsets, pieces, n_texts, max_length):  # pragma: no cover - compiled
    """Word indices (with -1 between texts) → flat token ids and per-text offsets, truncated to max_length."""
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    text = 0
    count = 0
    for w in word_ids:
        if w < 0:
            offsets[text + 1] = offsets[text] + count
            text += 1
            count = 0
        else:
            count = min(max_length, count + piece_offsets[w + 1] - piece_offsets[w])
    offsets[text + 1] = offsets[text] + count
    ids = np.empty(offsets[n_texts], dtype=np.int32)
    text = 0
    pos = offsets[0]
    for w in word_ids:
        if w < 0:
            text += 1
            pos = offsets[text]
        else:
            for p in range(piece_offsets[w], piece_offsets[w + 1]):
                if pos >= offsets[text + 1]:
                    break
                ids[pos] = pieces[p]
                pos += 1
    return ids, offsets


@numba.njit(cache=True)
def _drop_and_truncate(ids, lengths, unk_id, max_length):  # pragma: no cover - compiled
    """Per-text ids (concatenated, with lengths) without ``unk_id``, each cut to ``max_length``."""
    out = np.empty(ids.shape[0], dtype=np.int32)
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    start = 0
    pos = 0
    for i in range(lengths.shape[0]):
        kept = 0
        for k in range(start, start + lengths[i]):
            if ids[k] != unk_id and kept < max_length:
                out[pos] = ids[k]
                pos += 1
                kept += 1
        start += lengths[i]
        offsets[i + 1] = pos
    return out[:pos], offsets


class ChunkCache:
    """Whitespace-free chunk → its token ids (unknown token removed), filled in batches by the real tokenizer."""

    def __init__(self, tokenizer: Tokenizer, unk_id: int | None, *, lowercase: bool = True) -> None:
        self._tokenizer = tokenizer
        # Plain ASCII letters and digits (already lower-cased when the tokenizer lower-cases) are left as they are
        # by BertNormalizer and BertPreTokenizer, so they skip both: the normalizer is most of a new word's cost.
        self._bare = Tokenizer.from_str(tokenizer.to_str())
        self._bare.normalizer = normalizers.Sequence([])
        self._bare.pre_tokenizer = pre_tokenizers.Sequence([])
        self._plain = re.compile("[a-z0-9]+" if lowercase else "[A-Za-z0-9]+")
        self._unk_id = unk_id
        self.clear()

    def clear(self) -> None:
        self.index: dict[str, int] = {_SEPARATOR: -1}
        self._pieces: list[int] = []
        self._starts: list[int] = [0]
        self.pieces = np.zeros(0, dtype=np.int32)
        self.piece_offsets = np.zeros(1, dtype=np.int64)

    def add(self, chunks: list[str]) -> None:
        """Cache ``chunks``: each is split at ASCII punctuation, the parts never seen are tokenized (batched), and
        the chunk's ids are its parts' ids in order ("dog," = "dog" + ","), so a new spelling of a known word
        costs no tokenizer call."""
        if len(self.index) + 2 * len(chunks) > _MAX_CACHED_CHUNKS:
            self.clear()
        split = [[p for p in _ASCII_PUNCTUATION.split(c) if p] for c in chunks]
        new_parts = {p for parts in split for p in parts if p not in self.index}
        plain = [p for p in new_parts if self._plain.fullmatch(p)]
        other = list(new_parts.difference(plain))
        for tokenizer, parts in ((self._bare, plain), (self._tokenizer, other)):
            for part, encoding in zip(parts, encode_batch(tokenizer, parts)):
                self._append(part, [i for i in encoding.ids if i != self._unk_id])
        for chunk, parts in zip(chunks, split):
            if chunk not in self.index:
                self._append(chunk, [i for p in parts for i in self._pieces_of(p)])
        self.pieces = np.asarray(self._pieces, dtype=np.int32)
        self.piece_offsets = np.asarray(self._starts, dtype=np.int64)

    def _append(self, chunk: str, ids: list[int]) -> None:
        self.index[chunk] = len(self._starts) - 1
        self._pieces.extend(ids)
        self._starts.append(len(self._pieces))

    def _pieces_of(self, chunk: str) -> list[int]:
        k = self.index[chunk]
        return self._pieces[self._starts[k] : self._starts[k + 1]]

    def lookup(self, chunks: list[str]) -> np.ndarray:
        """Cache indices of ``chunks`` (-1 for the text separator), adding the ones not seen before."""
        try:
            return np.fromiter(map(self.index.__getitem__, chunks), dtype=np.int32, count=len(chunks))
        except KeyError:
            self.add(list(set(chunks).difference(self.index)))
            return np.fromiter(map(self.index.__getitem__, chunks), dtype=np.int32, count=len(chunks))


class TextEncoder:
    """Turns texts into flat token ids and offsets: no special tokens, unknown token dropped, truncated."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.unk_id = unknown_token_id(self.tokenizer)
        spec = json.loads(self.tokenizer.to_str())
        normalizer = spec.get("normalizer") or {}
        pre_tokenizer = spec.get("pre_tokenizer") or {}
        self.fast = (
            normalizer.get("type") == "BertNormalizer"
            and normalizer.get("clean_text", True)
            and pre_tokenizer.get("type") == "BertPreTokenizer"
        )
        self._lowercase = bool(normalizer.get("lowercase", True))
        self._cache = ChunkCache(self.tokenizer, self.unk_id, lowercase=self._lowercase) if self.fast else None
        self._trouble = self._slow_path_pattern(spec) if self.fast else None

    def _slow_path_pattern(self, spec: dict) -> re.Pattern:
        """What sends a text through the tokenizer whole: whitespace that BERT does not split on (it deletes some
        control characters that Python splits on), and added tokens (raw, lowered by us, or in any case where
        the tokenizer matches them after normalization)."""
        reference = self.tokenizer.encode("a b", add_special_tokens=False).ids
        odd = [c for c in _PY_WHITESPACE if self.tokenizer.encode(f"a{c}b", add_special_tokens=False).ids != reference]
        alternatives = [re.escape(c) for c in odd]
        for token in sorted(spec.get("added_tokens", []), key=lambda t: len(t["content"]), reverse=True):
            content = token["content"]
            if token.get("normalized", False):
                alternatives.append(f"(?i:{re.escape(content)})")
            else:
                alternatives += [re.escape(content), re.escape(content.lower())]
        return re.compile("|".join(alternatives) or "(?!)")

    def encode(self, texts: Sequence[str], max_length: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Flat int32 ids and int64 offsets (``len(texts) + 1``) for already validated texts."""
        parts = self.encode_parts(texts, max_length)
        if len(parts) == 1:
            return parts[0][1], parts[0][2]
        return _merge(len(texts), parts)

    def encode_parts(self, texts: Sequence[str], max_length: int | None) -> list[Part]:
        """Like :meth:`encode`, as ``(positions, ids, offsets)`` parts that together cover every text once."""
        limit = np.iinfo(np.int64).max if max_length is None else int(max_length)
        if max_length is not None:
            # Characters past this point cannot give one of the first max_length tokens of ordinary text.
            cut = 32 * limit
            texts = [t if len(t) <= cut else t[:cut] for t in texts]
        if not self.fast:
            return [(np.arange(len(texts), dtype=np.int64), *self._encode_slow(texts, limit))]
        originals = texts
        if self._lowercase:  # exact for ASCII, and it makes the cache case-blind
            texts = [t.lower() if t.isascii() else t for t in texts]
        joined = _JOINER.join(texts)
        hits = [m.start() for m in self._trouble.finditer(joined)]
        if joined.count(_SEPARATOR) != len(texts) - 1:  # some text holds the separator itself
            hits += [m.start() for m in re.finditer(_SEPARATOR, joined)]
        if not hits:
            return [(np.arange(len(texts), dtype=np.int64), *self._encode_fast(joined, len(texts), limit))]
        starts = np.cumsum([0] + [len(t) + len(_JOINER) for t in texts[:-1]])
        flagged = np.zeros(len(texts), dtype=bool)
        flagged[np.searchsorted(starts, hits, side="right") - 1] = True
        fast, slow = np.flatnonzero(~flagged), np.flatnonzero(flagged)
        parts = [(slow, *self._encode_slow([originals[i] for i in slow], limit))]
        if len(fast):
            parts.append((fast, *self._encode_fast(_JOINER.join([texts[i] for i in fast]), len(fast), limit)))
        return parts

    def _encode_fast(self, joined: str, n_texts: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        chunk_ids = self._cache.lookup(joined.split())
        return _expand_words(chunk_ids, self._cache.piece_offsets, self._cache.pieces, n_texts, limit)

    def _encode_slow(self, texts: Sequence[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(texts):
            return np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64)
        encodings = encode_batch(self.tokenizer, texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
        unk = -1 if self.unk_id is None else self.unk_id
        return _drop_and_truncate(flat, lengths, unk, limit)

    def __getstate__(self) -> dict:
        return {"tokenizer": self.tokenizer.to_str()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(Tokenizer.from_str(state["tokenizer"]))


def _merge(n: int, parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Interleave per-part results back into the original text order."""
    lengths = np.zeros(n, dtype=np.int64)
    for positions, _, offsets in parts:
        lengths[positions] = np.diff(offsets)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.empty(offsets[-1], dtype=np.int32)
    for positions, part_ids, part_offsets in parts:
        for k, i in enumerate(positions):
            ids[offsets[i] : offsets[i + 1]] = part_ids[part_offsets[k] : part_offsets[k + 1]]
    return ids, offsets
