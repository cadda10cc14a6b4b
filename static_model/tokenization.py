"""Text → token ids, fast.

Tokenization is the whole cost of a static model, so BERT-style tokenizers (BertNormalizer, BertPreTokenizer) get
a fast path. Their output for a text is the concatenation of their outputs for its whitespace-separated chunks,
so a batch is one ``str.split`` and one dictionary look-up per chunk in a bounded, thread-safe chunk cache
(:mod:`static_model.chunk_cache`). Chunks not in the cache are tokenized in one batch: plain-ASCII chunks of a
WordPiece model by a compiled WordPiece (:mod:`static_model.wordpiece`), all others by the real tokenizer. Texts
where Python's notion of whitespace differs from BERT's, or that contain an added token the chunk path cannot
place (one matched before normalization, such as ``[MASK]``, or one holding whitespace), go through the Hugging
Face tokenizer whole, as does every text of other tokenizer families. Both paths give the same ids; tests check it
on a real corpus and on fuzzed text.
Long texts are first bounded (cut, long runs shrunk) by :class:`~static_model.long_text.LongTextBounder`, to
what their first ``max_length`` tokens need.
"""

from __future__ import annotations

import json
import operator
import re
import sys
from collections.abc import Sequence
from itertools import compress
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from static_model.chunk_cache import DEFAULT_CACHE_BYTES, SEPARATOR, CacheInfo, ChunkCache
from static_model.jit import njit
from static_model.long_text import LongTextBounder, normalized
from static_model.wordpiece import AsciiWordPiece, StringTable, ascii_buffer, find_added, lower_ascii

_JOINER = f" {SEPARATOR} "
_PY_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
# Characters per token below which a text's first max_length tokens may lie beyond the cut (then it is re-encoded
# whole): 32 is far above ordinary text's ~4-6.
CHARS_PER_TOKEN = 32
# A text cut there that gives fewer than max_length tokens is cut again this many times further on, until it gives
# max_length tokens or is whole; such texts are encoded again in groups of at most REDO_CHARS characters (a longer
# text alone), so a batch of long texts of few tokens holds about one slice at a time, as ``encode``'s slices do.
REDO_GROWTH = 4
REDO_CHARS = 1 << 22

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


def unknown_token_id(tokenizer: Tokenizer, spec: dict | None = None) -> int | None:
    """The id of the model's unknown token, or ``None`` when it has none (``spec``: the tokenizer's JSON, if
    already parsed)."""
    model = (spec or json.loads(tokenizer.to_str()))["model"]
    unk = model.get("unk_token")
    if unk is None and model.get("type") == "Unigram" and model.get("unk_id") is not None:
        return int(model["unk_id"])
    return tokenizer.token_to_id(unk) if isinstance(unk, str) else None


def repeated_unigram_piece(spec: dict) -> tuple[str, int, int] | None:
    """The first piece that a ``tokenizer.json``'s Unigram vocabulary (``model.vocab``, ``[piece, score]`` entries whose
    position is the id) lists twice, with its first and its next id; ``None`` when each is listed once (or the model
    is not Unigram)."""
    model = spec.get("model")
    if not isinstance(model, dict) or model.get("type") != "Unigram" or not isinstance(model.get("vocab"), list):
        return None
    first: dict[Any, int] = {}
    for i, entry in enumerate(model["vocab"]):
        piece = entry[0] if isinstance(entry, list) and entry else entry
        if not isinstance(piece, str):
            continue  # not a piece: the tokenizers library refuses the file
        j = first.setdefault(piece, i)
        if j != i:
            return piece, j, i
    return None


def check_unigram_pieces(spec: dict, where: str) -> None:
    """A ``ValueError`` naming ``where`` (the file, or the argument) and the piece when a Unigram vocabulary lists a
    piece twice: the tokenizers library loads it silently and uses the last entry alone (its id and its score), so the
    row of the other id is never read and the segmentation is not the one the first entry's score gives."""
    repeated = repeated_unigram_piece(spec)
    if repeated is not None:
        piece, first, second = repeated
        raise ValueError(
            f"{where}: its Unigram vocabulary (model.vocab) lists the piece {piece!r} twice, as ids {first} and "
            f"{second}; the tokenizers library would read it as id {second} alone (row {first} never used, the first "
            "entry's score ignored). List each piece once"
        )


def post_processor_ids(node: Any) -> list[Any]:
    """The ids a ``tokenizer.json``'s post-processor adds (TemplateProcessing's ``ids``, Bert/Roberta's
    ``cls``/``sep``), nested or not, as the file gives them (the caller checks they are ids)."""
    out: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "ids" and isinstance(value, list):
                    out.extend(value)
                elif key in ("cls", "sep") and isinstance(value, list) and len(value) == 2:
                    out.append(value[1])
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return out


@njit(nogil=True)
def _expand_words(  # pragma: no cover - compiled
    entries: np.ndarray, pieces: np.ndarray, starts: np.ndarray, local_ids: np.ndarray, local_offsets: np.ndarray,
    n_texts: int, max_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Chunk entries (-1 between texts, >= 0 cached, <= -2 this call's own) → flat token ids and per-text
    offsets, each text truncated to max_length."""
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    text = 0
    count = 0
    for w in entries:
        if w == -1:
            offsets[text + 1] = offsets[text] + count
            text += 1
            count = 0
        elif w >= 0:
            count = min(max_length, count + starts[w + 1] - starts[w])
        else:
            count = min(max_length, count + local_offsets[-1 - w] - local_offsets[-2 - w])
    offsets[text + 1] = offsets[text] + count
    ids = np.empty(offsets[n_texts], dtype=np.int32)
    text = 0
    pos = offsets[0]
    for w in entries:
        if w == -1:
            text += 1
            pos = offsets[text]
            continue
        if w >= 0:
            source, lo, hi = pieces, starts[w], starts[w + 1]
        else:
            source, lo, hi = local_ids, local_offsets[-2 - w], local_offsets[-1 - w]
        for p in range(lo, hi):
            if pos >= offsets[text + 1]:
                break
            ids[pos] = source[p]
            pos += 1
    return ids, offsets


@njit(nogil=True)
def _drop_and_truncate(  # pragma: no cover - compiled
    ids: np.ndarray, lengths: np.ndarray, unk_id: int, max_length: int
) -> tuple[np.ndarray, np.ndarray]:
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


class ChunkTokenizer:
    """Token ids (unknown token dropped) of whitespace-free chunks of a BERT-style tokenizer, in one batch:
    plain-ASCII chunks of a WordPiece model that hold no added token by :class:`AsciiWordPiece`, the rest by the
    tokenizer itself (chunk by chunk, which is exact: BERT's ids for a text are its chunks' ids in order)."""

    def __init__(self, tokenizer: Tokenizer, spec: dict, unk_id: int | None, *, lowercase: bool) -> None:
        self._tokenizer = tokenizer
        self._unk_id = -1 if unk_id is None else unk_id
        model = spec.get("model") or {}
        self._wordpiece = AsciiWordPiece(model) if model.get("type") == "WordPiece" else None
        self._lowercase = lowercase
        forms = added_token_forms(tokenizer, spec)
        split, flagged = forms["split"], sorted(forms["chunk"])
        self._split = StringTable([f.encode() for f in split], list(split.values())) if split else None
        self._added = StringTable([f.encode() for f in flagged], list(range(len(flagged)))) if flagged else None

    def __call__(self, chunks: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The chunks in the order of the results (ASCII ones first), their flat ids and offsets."""
        wordpiece = self._wordpiece
        if wordpiece is None:
            return (chunks, *self._by_tokenizer(chunks))
        if "".join(chunks).isascii():
            return (chunks, *self._ascii(wordpiece, chunks))
        flags = list(map(str.isascii, chunks))
        ascii_chunks = list(compress(chunks, flags))
        other = list(compress(chunks, map(operator.not_, flags)))
        ids, offsets = self._ascii(wordpiece, ascii_chunks)
        other_ids, other_offsets = self._by_tokenizer(other)
        return (ascii_chunks + other, np.concatenate([ids, other_ids]),
                np.concatenate([offsets, other_offsets[1:] + offsets[-1]]))

    def _ascii(self, wordpiece: AsciiWordPiece, chunks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        buf, chunk_offsets = ascii_buffer(chunks)
        if self._lowercase:
            buf = lower_ascii(buf)
        ids, offsets, handled = wordpiece.encode(buf, chunk_offsets, self._split)
        if self._added is not None:
            handled &= ~find_added(buf, chunk_offsets, self._added.arrays, self._added.max_len)
        if handled.all():
            return ids, offsets
        rest = np.flatnonzero(~handled)
        rest_ids, rest_offsets = self._by_tokenizer([chunks[i] for i in rest])
        lengths = np.diff(offsets)
        ids = ids[np.repeat(handled, lengths)]  # a chunk with an added token has WordPiece ids to drop
        lengths[rest] = np.diff(rest_offsets)
        merged_offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum(lengths, out=merged_offsets[1:])
        merged = np.empty(merged_offsets[-1], dtype=np.int32)
        keep = np.repeat(handled, lengths)
        merged[keep] = ids
        merged[~keep] = rest_ids
        return merged, merged_offsets

    def _by_tokenizer(self, chunks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not chunks:
            return np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64)
        encodings = encode_batch(self._tokenizer, chunks)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
        return _drop_and_truncate(flat, lengths, self._unk_id, np.iinfo(np.int64).max)


def _reorder(ids: np.ndarray, offsets: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segments ``order[0], order[1], ...`` of (ids, offsets) as a new (ids, offsets)."""
    lengths = np.diff(offsets)[order]
    new_offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    index = np.arange(new_offsets[-1], dtype=np.int64) + np.repeat(offsets[order] - new_offsets[:-1], lengths)
    return ids[index], new_offsets


def added_token_forms(tokenizer: Tokenizer, spec: dict) -> dict:
    """The added tokens, as the chunk path must see them. ``"split"``: normalized form → id of the plain normalized
    tokens that ``tokenizer.add_tokens(["word"])`` makes (matched anywhere in normalized text, no stripping; the
    compiled WordPiece splits them out itself); ``"chunk"``: normalized forms of the other normalized tokens (a
    chunk holding one goes to the tokenizer); ``"text"``: strings that send a whole text to the tokenizer (tokens
    matched before normalization, raw and lower-cased, and normalized tokens that hold whitespace); ``"spaced"``:
    the normalized forms of those last ones (a text whose normalized form holds one goes to the tokenizer too);
    ``"spaced_raw"``: the tokens matched before normalization that hold whitespace, as written. Only whitespace-free
    ASCII forms are in ``"split"`` and ``"chunk"`` (other forms cannot occur in an ASCII chunk).

    Two added tokens may share a normalized form ("Hello" and "hello" added to an uncased model). Which id the
    tokenizer then gives is not fixed by the file: it differs between ``Tokenizer`` objects loaded from the same
    JSON (tokenizers 0.23). ``"split"`` takes the id that ``tokenizer`` itself gives, so the compiled WordPiece
    agrees with the tokenizer that handles the other chunks and texts."""
    split: dict[str, int] = {}
    shared: set[str] = set()  # forms of more than one such token
    chunk: set[str] = set()
    text: set[str] = set()
    spaced: set[str] = set()
    spaced_raw: set[str] = set()
    normalizer = tokenizer.normalizer
    for token in spec.get("added_tokens", []):
        content = token["content"]
        if not content:
            continue
        if not token.get("normalized", False):
            text.update((content, content.lower()))
            if any(c.isspace() for c in content):
                spaced_raw.add(content)
            continue
        form = normalizer.normalize_str(content) if normalizer is not None else content
        if any(c in _PY_WHITESPACE or c.isspace() for c in form + content):
            text.update((content, content.lower(), form))
            spaced.add(form)
        elif not form or not form.isascii():
            continue
        elif token.get("special") or token.get("single_word") or token.get("lstrip") or token.get("rstrip"):
            chunk.add(form)
        else:
            if form in split:
                shared.add(form)
            split.setdefault(form, int(token["id"]))
    for form in shared:
        ids = tokenizer.encode(form, add_special_tokens=False).ids
        if len(ids) == 1:
            split[form] = ids[0]
    return {"split": {f: i for f, i in split.items() if f not in chunk}, "chunk": chunk, "text": text,
            "spaced": spaced, "spaced_raw": spaced_raw}


def trie_pattern(strings: set[str]) -> str:
    """A regular expression matching any of ``strings``, shaped as a trie (shared prefixes are matched once, so
    the scan costs about the same for 30,000 strings as for 30)."""
    trie: dict = {}
    for s in strings:
        node = trie
        for c in s:
            node = node.setdefault(c, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if "" in node:
            branches.append("")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    return build(trie) if trie else "(?!)"


class TextEncoder:
    """Turns texts into flat token ids and offsets: no special tokens, unknown token dropped, truncated.

    Safe to share between threads: the chunk cache takes no lock to read (see :mod:`static_model.chunk_cache`).
    """

    def __init__(self, tokenizer: Tokenizer, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.tokenizer = prepare_tokenizer(tokenizer)
        spec = json.loads(self.tokenizer.to_str())
        # a piece listed twice is refused, not read as its last entry alone: for a tokenizer given in memory and for a
        # folder's tokenizer.json (which persistence.read_tokenizer does not check for it)
        check_unigram_pieces(spec, "the tokenizer (its tokenizer.json)")
        self.unk_id = unknown_token_id(self.tokenizer, spec)
        normalizer = spec.get("normalizer") or {}
        pre_tokenizer = spec.get("pre_tokenizer") or {}
        self.fast = (
            normalizer.get("type") == "BertNormalizer"
            and normalizer.get("clean_text", True)
            and pre_tokenizer.get("type") == "BertPreTokenizer"
        )
        self._lowercase = bool(normalizer.get("lowercase", True))
        self._cache = ChunkCache(
            ChunkTokenizer(self.tokenizer, spec, self.unk_id, lowercase=self._lowercase) if self.fast else _no_resolve,
            cache_bytes,
        )
        forms = added_token_forms(self.tokenizer, spec)
        self._trouble = self._slow_path_pattern(forms["text"]) if self.fast else None
        # "new york" (added, normalized) matches "New York" in a text that is not plain ASCII (not lower-cased here),
        # "NÉW YORK", "new\x01 york": found in the normalized text
        self._spaced = re.compile(trie_pattern(forms["spaced"])) if forms["spaced"] else None
        # the same for added tokens matched before normalization: found in the text as it is
        self._spaced_raw = re.compile(trie_pattern(forms["spaced_raw"])) if forms["spaced_raw"] else None
        # the bounding of long texts (cut, long runs shrunk, unknown ideographs collapsed): the same ids, less work
        self.long_text = LongTextBounder(self.tokenizer, spec, fast=self.fast, unk_id=self.unk_id,
                                         spaced=self._spaced, spaced_raw=self._spaced_raw)

    @property
    def cache_bytes(self) -> int:
        """The chunk cache's byte budget (0: no cache)."""
        return self._cache.max_bytes

    @cache_bytes.setter
    def cache_bytes(self, value: int) -> None:
        self._cache.max_bytes = value

    def cache_info(self) -> CacheInfo:
        """The chunk cache's counters: entries, bytes, budget, hits and misses."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Empty the chunk cache and reset its counters."""
        self._cache.clear()

    def _slow_path_pattern(self, texts: set[str]) -> re.Pattern:
        """What sends a text through the tokenizer whole: whitespace that BERT does not split on (it deletes some
        control characters that Python splits on), and the added tokens of ``added_token_forms(...)["text"]``.

        Each character is asked of the normalizer and pre-tokenizer themselves ("x" + c + "x" must give the pieces
        "x" and "x"), as well as by ids: with an added token "a" (or "á" on an uncased model), "a\x0cb" and "a b" have
        the same ids, so the ids probe alone took the form feed for a space, and "0\x0c0" ("00" once BERT deletes
        the form feed) gave two tokens "0"."""
        reference = self.tokenizer.encode("a b", add_special_tokens=False).ids
        normalizer, pre_tokenizer = self.tokenizer.normalizer, self.tokenizer.pre_tokenizer

        def splits_like_a_space(c: str) -> bool:
            if normalizer is None or pre_tokenizer is None:  # pragma: no cover - the chunk path has both
                return False
            pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(f"x{c}x"))
            return [p for p, _ in pieces] == ["x", "x"] and self.tokenizer.encode(
                f"a{c}b", add_special_tokens=False).ids == reference

        return re.compile(trie_pattern({c for c in _PY_WHITESPACE if not splits_like_a_space(c)} | texts))

    def _holding_spaced_tokens(self, texts: Sequence[str]) -> list[int]:
        """The texts whose normalized form holds an added token with whitespace (none without such tokens)."""
        spaced, normalizer = self._spaced, self.tokenizer.normalizer
        if spaced is None:
            return []
        return [i for i, text in enumerate(texts) if spaced.search(normalized(normalizer, text))]

    def encode(self, texts: Sequence[str], max_length: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Flat int32 ids and int64 offsets (``len(texts) + 1``) for already validated texts."""
        parts = self.encode_parts(texts, max_length)
        if len(parts) == 1 and np.array_equal(parts[0][0], np.arange(len(texts))):
            return parts[0][1], parts[0][2]
        return _merge(len(texts), parts)

    def encode_parts(self, texts: Sequence[str], max_length: int | None) -> list[Part]:
        """Like :meth:`encode`, as ``(positions, ids, offsets)`` parts that together cover every text once."""
        if max_length is None:
            return self._encode_parts(texts, np.iinfo(np.int64).max)
        limit = int(max_length)
        # Text far past this point cannot give one of the first max_length tokens of ordinary text: cut there (at
        # whitespace), and encode again whole the rare text whose kept part gives fewer than max_length tokens.
        cut = CHARS_PER_TOKEN * limit
        if not texts or max(map(len, texts)) <= cut:
            return self._encode_parts(texts, limit)
        cuts = [i for i, t in enumerate(texts) if len(t) > cut]
        if not cuts:
            return self._encode_parts(texts, limit)
        texts = list(texts)
        for i in cuts:  # an ideograph where the cut may keep it (else the part kept holds none: no scan of the rest)
            texts[i] = self.long_text.collapse_unknown_near(texts[i], cut)
        originals = {i: texts[i] for i in cuts}
        whole: dict[int, bool] = {}
        for i in cuts:
            texts[i], whole[i] = self.long_text.cut(texts[i], cut)
        ids, offsets = _merge(len(texts), self._encode_parts(texts, limit))
        counts = np.diff(offsets)
        short = [i for i in cuts if counts[i] < limit and not whole[i]]
        if not short:
            return [(np.arange(len(texts), dtype=np.int64), ids, offsets)]
        rest = np.setdiff1d(np.arange(len(texts)), short)
        short_positions = np.asarray(short, dtype=np.int64)
        redo = self._encode_further([self.long_text.collapse_unknown(originals[i]) for i in short], limit, cut)
        return [(rest, *_reorder(ids, offsets, rest)), (short_positions, *redo)]

    def _encode_further(self, texts: list[str], limit: int, cut: int) -> tuple[np.ndarray, np.ndarray]:
        """Ids and offsets of long ``texts`` whose part up to ``cut`` gave fewer than ``limit`` tokens: each is cut
        ``REDO_GROWTH`` times further on, round after round, until it gives ``limit`` tokens or is whole (the ids of
        a cut text are a prefix of the whole text's, so its first ``limit`` are the same), and each round is encoded
        in groups of at most ``REDO_CHARS`` characters. Re-encoding them whole, at once, held every character of a
        batch of long texts of few tokens (whitespace, unknown symbols) in memory together."""
        results: list[np.ndarray] = [_NO_IDS] * len(texts)
        pending = list(range(len(texts)))
        while pending:
            cut *= REDO_GROWTH
            cut_texts = [self.long_text.cut(texts[k], cut, checked=True) for k in pending]  # each was cut once
            pieces = [piece for piece, _ in cut_texts]
            still: list[int] = []
            start = 0
            while start < len(pieces):
                end, total = start + 1, len(pieces[start])
                while end < len(pieces) and total + len(pieces[end]) <= REDO_CHARS:
                    total += len(pieces[end])
                    end += 1
                ids, offsets = _merge(end - start, self._encode_parts(pieces[start:end], limit))
                for j in range(end - start):
                    k = pending[start + j]
                    if offsets[j + 1] - offsets[j] >= limit or cut_texts[start + j][1]:
                        results[k] = ids[offsets[j] : offsets[j + 1]]
                    else:
                        still.append(k)
                start = end
            pending = still
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(r) for r in results], out=offsets[1:])
        return np.concatenate(results).astype(np.int32, copy=False), offsets

    def _encode_parts(self, texts: Sequence[str], limit: int) -> list[Part]:
        if not self.fast:
            return [(np.arange(len(texts), dtype=np.int64), *self._encode_slow(texts, limit))]
        originals = texts
        if self._lowercase:  # exact for ASCII, and it makes the cache case-blind
            texts = [t.lower() if t.isascii() else t for t in texts]
        joined = _JOINER.join(texts)
        trouble = self._trouble
        if trouble is None:  # pragma: no cover - set whenever self.fast
            raise RuntimeError("the fast path has no slow-path pattern")
        hits = [m.start() for m in trouble.finditer(joined)]
        # texts that hold the separator themselves (not the separators between texts, which would flag them all)
        holding = [i for i, t in enumerate(texts) if SEPARATOR in t] if joined.count(SEPARATOR) >= len(texts) else []
        holding += self._holding_spaced_tokens(originals)
        if not hits and not holding:
            return [(np.arange(len(texts), dtype=np.int64), *self._encode_fast(joined, len(texts), limit))]
        starts = np.cumsum([0] + [len(t) + len(_JOINER) for t in texts[:-1]])
        flagged = np.zeros(len(texts), dtype=bool)
        flagged[np.searchsorted(starts, np.asarray(hits, dtype=np.int64), side="right") - 1] = True
        flagged[holding] = True
        fast, slow = np.flatnonzero(~flagged), np.flatnonzero(flagged)
        parts = [(slow, *self._encode_slow([originals[i] for i in slow.tolist()], limit))]
        if len(fast):
            joined_fast = _JOINER.join([texts[i] for i in fast.tolist()])
            parts.append((fast, *self._encode_fast(joined_fast, len(fast), limit)))
        return parts

    def _encode_fast(self, joined: str, n_texts: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        found = self._cache.lookup(joined.split(), separators=max(n_texts - 1, 0))
        return _expand_words(found.entries, found.pieces, found.starts, found.local_ids, found.local_offsets,
                             n_texts, limit)

    def _encode_slow(self, texts: Sequence[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(texts):
            return np.zeros(0, dtype=np.int32), np.zeros(1, dtype=np.int64)
        encodings = encode_batch(self.tokenizer, texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
        unk = -1 if self.unk_id is None else self.unk_id
        return _drop_and_truncate(flat, lengths, unk, limit)

    def __getstate__(self) -> dict:
        return {"tokenizer": self.tokenizer.to_str(), "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        TextEncoder.__init__(self, Tokenizer.from_str(state["tokenizer"]),
                             cache_bytes=state.get("cache_bytes", DEFAULT_CACHE_BYTES))

    def __copy__(self) -> TextEncoder:
        """The same tokenizer and compiled tables (never changed after ``__init__``, so shared), the same long-text
        stage (its per-character answers hold for both), with a chunk cache of its own (empty, same budget): a copy's
        ``cache_bytes`` and ``clear_cache`` leave the original's cache alone."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._cache = ChunkCache(self._cache._resolve, self._cache.max_bytes)
        return copy


_NO_IDS = np.zeros(0, dtype=np.int32)


def _no_resolve(chunks: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:  # pragma: no cover - never called
    raise RuntimeError("this tokenizer has no chunk path")


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
