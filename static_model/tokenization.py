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
"""

from __future__ import annotations

import functools
import json
import operator
import re
import string
import sys
import unicodedata
from collections.abc import Sequence
from itertools import compress
from typing import Any

import numpy as np
from tokenizers import Tokenizer, normalizers

from static_model.chunk_cache import DEFAULT_CACHE_BYTES, SEPARATOR, CacheInfo, ChunkCache
from static_model.jit import njit
from static_model.wordpiece import AsciiWordPiece, StringTable, ascii_buffer, find_added, lower_ascii

_JOINER = f" {SEPARATOR} "
_PY_WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
# A cut text ends where the ids of the kept part are a prefix of the ids of the whole text. BERT: before any space,
# tab or newline (``TextEncoder._cut_pattern``). Other tokenizers: only where their pre-tokenizer always starts a new
# piece (see ``non_bert_cut_pattern``): the start of a whitespace run, as cut inside one the run's own tokens change
# (GPT-2's ByteLevel keeps a run as one piece, SentencePiece's normalizer folds it into one space); Metaspace splits
# only at " ".
_CUT_AT_RUN = re.compile(r"(?<!\s)[ \t\n\r]")
_CUT_AT_SPACE_RUN = re.compile(r"(?<!\s) ")
# Text without whitespace (Chinese, Japanese; a base64 blob, a URL) may also be cut before an ideograph, where
# BertNormalizer puts spaces (``handle_chinese_chars``), or before punctuation, which BertPreTokenizer splits off,
# when no added token can match across it (see ``TextEncoder._cut_pattern``).
_IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b81f\U0002f800-\U0002fa1f"
_IDEOGRAPH_CHAR = re.compile(f"[{_IDEOGRAPH}]")
# Characters per token below which a text's first max_length tokens may lie beyond the cut (then it is re-encoded
# whole): 32 is far above ordinary text's ~4-6.
CHARS_PER_TOKEN = 32
# A text cut there that gives fewer than max_length tokens is cut again this many times further on, until it gives
# max_length tokens or is whole; such texts are encoded again in groups of at most REDO_CHARS characters (a longer
# text alone), so a batch of long texts of few tokens holds about one slice at a time, as ``encode``'s slices do.
REDO_GROWTH = 4
REDO_CHARS = 1 << 22
# A run of word characters (``_word_class``) longer than this is shrunk to its first LONG_RUN characters and its last
# before tokenizing (``TextEncoder._shrink``): WordPiece reads a word past ``max_input_chars_per_word`` (100) as one
# unknown token, whatever its length, so the ids stay the same and 2 MB of one emoji is not tokenized whole.
LONG_RUN = 1024

Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # (text positions, flat ids, offsets)


@functools.cache
def _punctuation_and_separators() -> tuple[str, ...]:
    """ASCII punctuation and every Unicode punctuation mark or separator (categories P and Z) that is not a combining
    character: the marks a BERT pre-tokenizer may split off (``TextEncoder._cut_pattern`` checks each). One scan of
    Unicode a process (about 0.1 s)."""
    found = dict.fromkeys(string.punctuation)
    found.update(dict.fromkeys(c for c in map(chr, range(sys.maxunicode + 1))
                               if unicodedata.category(c)[0] in "PZ" and not unicodedata.combining(c)))
    return tuple(c for c in found if c not in " \t\n\r")


@functools.cache
def _word_class() -> str:
    """A regular-expression class of the characters that may sit inside a long word: ASCII letters, digits and
    controls, and every other letter, mark, number, symbol, punctuation, control or format character of the Basic
    Multilingual Plane that is neither whitespace nor a CJK ideograph (the normalizer puts spaces around those) and
    whose canonical decomposition holds only such characters ("≠" holds "="); plus all of plane 1 (emoji, historic
    scripts) and the tags and variation selectors of plane 14, coarsely, to keep the class short and the scan fast
    (an astral range costs each character a comparison). Only a search aid: ``TextEncoder._learn_splits`` asks the
    tokenizer about each character found. One scan of the BMP a process (about 0.1 s)."""
    ideograph = re.compile(f"[{_IDEOGRAPH}]")

    def wordlike(c: str) -> bool:
        if c.isspace():
            return False
        category = unicodedata.category(c)
        if c.isascii():
            return c.isalnum() or category == "Cc"
        # controls, format characters (U+200D joins emoji) and private use: deleted by the normalizer, never split on.
        # Punctuation: most is split on (a run is shrunk on each side of it), some not ("\u2e43", newer than the
        # tokenizer's tables): a run of emoji each followed by one was tokenized whole.
        return (category[0] in "LMNSP" or category in ("Cc", "Cf", "Co")) and not ideograph.match(c)

    codes = [o for o in range(0x10000)
             if wordlike(chr(o)) and all(map(wordlike, unicodedata.normalize("NFD", chr(o))))]
    ranges: list[list[int]] = []
    for o in codes:
        if ranges and ranges[-1][1] == o - 1:
            ranges[-1][1] = o
        else:
            ranges.append([o, o])
    bmp = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return bmp + "\U00010000-\U0001ffff\U000e0000-\U000e01ef"


@functools.cache
def _long_runs() -> re.Pattern:
    """Maximal runs of ``_word_class`` characters longer than ``LONG_RUN``. The look-behind starts a match only at a
    run's first character: without it every character of a shorter run started a scan to the run's end."""
    word = _word_class()
    return re.compile(f"(?<![{word}])[{word}]{{{LONG_RUN + 1},}}")


@functools.cache
def _clean_text_only() -> Any:
    """BERT's normalizer doing its first step alone: ``clean_text`` (controls deleted, whitespace made a space)."""
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                      lowercase=False)


def _distinct(text: str, passes: int = 8) -> set[str]:
    """The distinct characters of ``text``: a run of one or a few characters is read ``passes`` times at C speed
    (``set`` of 2 MB of one emoji takes about 0.1 s)."""
    found: set[str] = set()
    for _ in range(passes):
        if not text:
            return found
        found.add(text[0])
        text = text.replace(text[0], "")
    return found | set(text)


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


def non_bert_cut_pattern(spec: dict, tokenizer: Tokenizer | None = None) -> re.Pattern | None:
    """Where a long text of a tokenizer off the BERT chunk path may be cut so that the ids of the kept part are a
    prefix of the whole text's (``None``: nowhere; such texts are tokenized whole).

    The cut must fall where the pre-tokenizer always starts a new piece, whatever follows: a pre-tokenizer that keeps
    the whole text as one piece (none, Metaspace with ``split=False``, ByteLevel without its regex) lets the model
    (Unigram's best segmentation, BPE merges, tokens spanning spaces) change tokens far before the cut: 129 spaces
    gave a Unigram model other first tokens than the 128 of the cut text. Whitespace, WhitespaceSplit, BERT's,
    ByteLevel's and Metaspace's pre-tokenizers all start a piece at the first character of a run of spaces, so the cut
    goes there (not inside the run, whose own tokens change with its length, nor at tabs or newlines for Metaspace,
    which splits only at spaces). A Sequence may be cut where each of its steps may (Punctuation and Digits only split
    further; a Metaspace that replaces " " by " " without splitting only puts a space before the text) if one of them
    starts pieces at spaces. Any other pre-tokenizer (a ``Split`` regex, as Llama 3's and
    Qwen's) is asked (``tokenizer``): if it starts a new piece at a space after each of many kinds of characters,
    leaving the pieces before as they are, it is cut before such a space."""
    root = spec.get("pre_tokenizer") or {}
    steps = root.get("pretokenizers", []) if root.get("type") == "Sequence" else [root]
    pattern, splitting = _CUT_AT_RUN, False
    for step in steps:
        kind = step.get("type") if isinstance(step, dict) else None
        if kind == "Metaspace" and step.get("replacement") == " " and not step.get("split", True):
            continue  # it only puts a space before the text's start (a distilled byte-level BPE's "first" prefix)
        if kind in ("Whitespace", "WhitespaceSplit", "BertPreTokenizer") or (
                kind == "ByteLevel" and step.get("use_regex", True)):
            splitting = True
        elif kind == "Metaspace" and step.get("split", True):
            splitting, pattern = True, _CUT_AT_SPACE_RUN
        elif kind not in ("Punctuation", "Digits"):
            splitting = False
            break
    if splitting:
        return pattern
    pre_tokenizer = None if tokenizer is None or not root else tokenizer.pre_tokenizer
    return _CUT_AT_SPACE_RUN if pre_tokenizer is not None and _starts_pieces_at_spaces(pre_tokenizer) else None


_PROBE_LEFT = ["a", "abc", "A", "1", "123", "1234", "x1", "!", "a!", "?!", "'", "a'", "a's", "don't", "日", "日本",
               "é", "e\u0301", "ß", "Ａ", "😀", "👍🏽", ".", ",", "(", ")", "_", "-", "/", "\u200b", "\xad",
               "\ufffd", "\x01", "\u0301"]
_PROBE_RIGHT = [" ", "  ", " a", "  a", " A", " 1", " 12345", " !", " '", " 's", " 日", " \n", "  \n\n", "   x\n",
                " \t", " \u3000", " \xa0b", " é", " _", " -1"]


def _starts_pieces_at_spaces(pre_tokenizer: Any) -> bool:
    """Whether ``pre_tokenizer`` splits each probe ``left + right`` (``right`` starts with a space) before that space
    (no piece spans it) and gives the pieces of ``left`` alone before it."""
    try:
        for left in _PROBE_LEFT:
            for context in ("", "x ", "Hello, "):
                head = context + left
                alone = pre_tokenizer.pre_tokenize_str(head)
                for right in _PROBE_RIGHT:
                    pieces = pre_tokenizer.pre_tokenize_str(head + right)
                    before = [p for p in pieces if p[1][1] <= len(head)]
                    if before != alone or any(p[1][0] < len(head) < p[1][1] for p in pieces):
                        return False
    except Exception:  # noqa: BLE001 - a pre-tokenizer that cannot take a probe is not cut
        return False
    return True


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
        self._cut_at = self._cut_pattern(spec) if self.fast else non_bert_cut_pattern(spec, self.tokenizer)
        # an unknown ideograph is a piece of its own and a dropped [UNK]: runs of them are cut to one (``_few_unknown``)
        self._unknown_runs = self.fast and self.unk_id is not None and self._may_cut_at_ideographs(spec)
        self._unknown: dict[str, bool] = {}  # ideograph → whether the tokenizer reads it as the unknown token alone
        self._silent_chars: dict[str, bool] = {}  # character → whether it normalizes to whitespace or nothing
        self._silent_tokens: bool | None = None  # whether an added token is made of such characters alone
        self._max_word = self._shrinkable_word(spec)
        self._added_contents = [t["content"] for t in spec.get("added_tokens", [])]
        self._splits: dict[str, bool] = {}  # character → whether the tokenizer splits on it (``_learn_splits``)
        self._deleted: dict[str, bool] = {}  # character → whether ``clean_text`` deletes it (``_fewer_deleted``)
        self._shrinks: bool | None = None  # whether runs are shrunk (``_shrinker``), decided at the first long text

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

    def _cut_pattern(self, spec: dict) -> re.Pattern:
        """Where a long text may be cut so that the ids of the kept part are a prefix of the whole text's: at
        whitespace; before an ideograph (``_may_cut_at_ideographs``); before a punctuation mark or space, ASCII or
        Unicode, that splits (``_splitting_marks``). A base64 blob or a long URL has no whitespace: cut there, it is
        not tokenized whole; 2 MB of "…" was tokenized whole, 4 s and 1.1 GB for its first 512 tokens."""
        tokens = [t["content"] for t in spec.get("added_tokens", [])]
        normalizer = self.tokenizer.normalizer
        if normalizer is not None:
            tokens += [normalizer.normalize_str(t) for t in tokens]
        inside = set("".join(t[1:] for t in tokens))
        single_words = [t["content"] for t in spec.get("added_tokens", []) if t.get("single_word")]
        try:
            marks = self._splitting_marks(_punctuation_and_separators(), inside, single_words)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - pyo3's PanicException: the tokenizer cannot take some Unicode marks
            marks = self._splitting_marks(tuple(string.punctuation), inside, single_words)
        ideographs = _IDEOGRAPH if self._may_cut_at_ideographs(spec) and not single_words else ""
        return re.compile(f"[ \t\n\r{ideographs}{re.escape(''.join(marks))}]")

    def _splitting_marks(self, candidates: Sequence[str], inside: set[str], single_words: list[str]) -> list[str]:
        """The ``candidates`` a long text may be cut before: the normalizer and pre-tokenizer start a new piece at the
        mark (``"x" + mark + "x"`` splits after its first "x": asked of the tokenizer itself, not of an ids probe
        that an added "ab" also passes); neither the mark nor its normalized form ("\u037e" is ";") is inside an
        added token past its first character, so no match reaches across the cut; the ids of ``"ab" + mark + "cd"``
        are those of "ab" and of ``mark + "cd"``; and, after each ``single_word`` added token, those of the token and
        of ``mark + "cd"`` (a single-word token does not match before "_" or "\uff3f", which it counts as word
        characters)."""
        normalizer, pre_tokenizer = self.tokenizer.normalizer, self.tokenizer.pre_tokenizer
        if normalizer is None or pre_tokenizer is None:  # pragma: no cover - the chunk path has both
            return []

        def splits(mark: str) -> bool:
            pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(f"x{mark}x"))
            return len(pieces) > 1 and pieces[0][0] == "x"

        found = [c for c in candidates if c not in inside and not set(normalizer.normalize_str(c)) & inside
                 and splits(c)]
        for head in ["ab", *single_words]:
            encodings = self.tokenizer.encode_batch([f"{head}{c}cd" for c in found] + [f"{c}cd" for c in found],
                                                    add_special_tokens=False)
            head_ids, n = self.tokenizer.encode(head, add_special_tokens=False).ids, len(found)
            found = [c for i, c in enumerate(found) if encodings[i].ids == head_ids + encodings[n + i].ids]
        return found

    def _may_cut_at_ideographs(self, spec: dict) -> bool:
        """Whether the ids of a text cut just before a CJK ideograph are a prefix of the whole text's: the normalizer
        puts spaces around each ideograph (the pre-tokenizer then splits there), and no added token holds an
        ideograph, nor, if normalized, whitespace once normalized (so no match can reach across the cut)."""
        normalizer = self.tokenizer.normalizer
        if normalizer is None or any(normalizer.normalize_str(c) != f" {c} " for c in "\u3400\u4e00\u9fff\U00020000"):
            return False
        ideograph = re.compile(f"[{_IDEOGRAPH}]")

        def safe(token: dict) -> bool:
            # a normalized token (mpnet's "<unk>") is matched on normalized text, where the cut falls before the space
            # put before the ideograph: one without whitespace or ideographs, once normalized, cannot span it
            form = normalizer.normalize_str(token["content"]) if token.get("normalized", False) else ""
            return not (ideograph.search(token["content"] + form) or any(c.isspace() for c in form))

        return all(map(safe, spec.get("added_tokens", [])))

    def _few_unknown(self, text: str) -> str:
        """``text`` with each run of unknown CJK ideographs, consecutive or with only silent characters between them
        (``_silent``: whitespace, deleted characters, stripped accents), cut to its first and last. The normalizer
        puts spaces around each ideograph, so each is a piece of its own, and an unknown one is the unknown token
        alone, which the runtime drops; what lies between them normalizes to whitespace or nothing: the ids are the
        same, and the run's neighbours see the same characters next to it (no added token holds an ideograph,
        ``_may_cut_at_ideographs``, nor is made of silent characters alone, which could match between them). 2 MB of
        U+20000 was cut before each ideograph, read no token, and was cut again further on until the Hugging Face
        tokenizer read it whole (13 s, 1.1 GB); 2 MB of U+20000 each with an accent, 3 s and 416 MB."""
        if not self._unknown_runs or not _IDEOGRAPH_CHAR.search(text):
            return text
        chars = _distinct(text)
        ideographs = {c for c in chars if _IDEOGRAPH_CHAR.match(c)}
        new = sorted(c for c in ideographs if c not in self._unknown)
        if new:
            encodings = self.tokenizer.encode_batch(new, add_special_tokens=False)
            self._unknown.update((c, e.ids == [self.unk_id]) for c, e in zip(new, encodings))
        unknown = {c for c in ideographs if self._unknown[c]}
        if not unknown:
            return text
        silent = set() if self._silent_token() else {c for c in chars if c not in ideographs and self._silent(c)}
        # Each character as a letter (u: unknown ideograph, s: silent, x: other), so that the regular expression has
        # three letters to look at: a class of thousands of astral ideographs (random text) is a list that the
        # regular expression engine reads through at each character (93 s for 2 MB).
        shape = text.translate({ord(c): "u" if c in unknown else "s" if c in silent else "x" for c in chars})
        pieces, start = [], 0
        # from the run's first ideograph to its last: both kept, so the characters next to the run are unchanged (a
        # single_word added token after it looks at the character before it: U+FA6E, an unassigned ideograph that is
        # no letter, before "<x>" let it match where U+20000 did not)
        for m in re.finditer("u[us]+u", shape):
            pieces.append(text[start : m.start() + 1] + text[m.end() - 1])
            start = m.end()
        return "".join(pieces) + text[start:] if pieces else text

    def _silent(self, c: str) -> bool:
        """Whether the normalizer makes ``c`` whitespace or nothing, whatever its neighbours: each character is
        mapped on its own (``clean_text``, accents stripped after NFD, which only reorders combining marks)."""
        found = self._silent_chars.get(c)
        if found is None:
            normalizer = self.tokenizer.normalizer
            try:
                found = normalizer is not None and not normalizer.normalize_str(c).strip(" ")
            except (TypeError, UnicodeEncodeError):  # a lone surrogate: U+FFFD for the tokenizer, not looked into
                found = False
            self._silent_chars[c] = found
        return found

    def _silent_token(self) -> bool:
        """Whether some added token is made of ``_silent`` characters alone (one could match between ideographs);
        decided once."""
        if self._silent_tokens is None:
            self._silent_tokens = any(all(map(self._silent, content)) for content in self._added_contents)
        return self._silent_tokens

    def _shrinkable_word(self, spec: dict) -> int | None:
        """WordPiece's ``max_input_chars_per_word`` when long runs may be shrunk (``_shrink``): the chunk path, a
        WordPiece model with an unknown token, and every added token matched before normalization or, if normalized,
        ``_bounded`` (another normalized one, "éé", is matched on normalized text, where it might match inside or
        across a run). ``None`` otherwise. mpnet's normalized "<unk>" left its long texts unshrunk: 2 MB of one
        emoji took 2.6 s and 350 MB for 512 tokens, of U+20000 4.9 s and 800 MB."""
        model = spec.get("model") or {}
        if not self.fast or model.get("type") != "WordPiece" or self.unk_id is None:
            return None
        limit = model.get("max_input_chars_per_word", 100)
        if not (isinstance(limit, int) and 0 <= limit < LONG_RUN):
            return None
        normalizer = self.tokenizer.normalizer
        for token in spec.get("added_tokens", []):
            if not token.get("content"):
                return None
            if token.get("normalized", True) and not self._bounded(token, normalizer, limit):
                return None
        return limit

    @staticmethod
    def _bounded(token: dict, normalizer: Any, limit: int) -> bool:
        """Whether a normalized added token cannot change a shrunk run's ids (mpnet's "<unk>"): its normalized form
        starts and ends with ASCII punctuation and is at most ``limit`` (``max_input_chars_per_word``) long, and it is
        not ``single_word``. BERT's normalizer maps word characters (``_word_class``) to word characters only, never
        to ASCII punctuation or whitespace, so a match overlapping a run's normalized form holds it whole: more than
        ``limit`` characters, before and after shrinking. ``single_word`` looks at the character next to the match,
        which may differ once shrunk (a run ending in deleted characters)."""
        if normalizer is None or token.get("single_word"):
            return False
        form = normalizer.normalize_str(token["content"])
        return 0 < len(form) <= limit and form[0] in string.punctuation and form[-1] in string.punctuation

    def _shrinker(self) -> re.Pattern | None:
        """The long-run pattern, or ``None`` when runs are not shrunk. An added token that starts or ends with a word
        character ("😀😀x") might match inside a run or across its ends (and a shrunk run might make a new match):
        none is shrunk. Tokens that start and end with other characters ("[MASK]", "<😀😀>", no longer than a shrunk
        run) cannot overlap a maximal run without holding it whole. Decided at the first long text, so that building
        the class (about 0.1 s) is paid only by a process that meets one."""
        if self._max_word is None:
            return None
        if self._shrinks is None:
            word = re.compile(f"[{_word_class()}]")
            self._shrinks = not any(word.match(t[0]) or word.match(t[-1]) or len(t) > LONG_RUN
                                    for t in self._added_contents)
        return _long_runs() if self._shrinks else None

    def _shrink(self, text: str) -> str:
        """``text`` with each maximal run of word characters longer than ``LONG_RUN`` shrunk to its first
        ``LONG_RUN`` characters and its last, where that gives the same ids: no character of the run splits (asked of
        the tokenizer; a run is shrunk on each side of one that does), and its first ``LONG_RUN`` characters
        normalize to more than ``max_input_chars_per_word``. BERT's normalizer works character by character (accents
        stripped, controls deleted, case folded), so the run's word normalizes to more characters still, before and
        after: one unknown token either way. The last character stays for ``single_word`` added tokens next to it."""
        runs = self._shrinker()
        if runs is None or len(text) <= LONG_RUN:
            return text
        return runs.sub(lambda m: self._shrink_run(m.group()), text)

    def _shrink_run(self, run: str) -> str:
        """One run of ``_shrink``, or each stretch of it between characters that the tokenizer splits on."""
        chars = _distinct(run)
        self._learn_splits(sorted(c for c in chars if c not in self._splits))
        splitting = {c for c in chars if self._splits[c]}
        if not splitting:
            return self._shrunk(run)
        others = re.escape("".join(sorted(splitting)))
        inside = re.compile(f"(?<![^{others}])[^{others}]{{{LONG_RUN + 1},}}")  # starts after one, or at 0
        return inside.sub(lambda m: self._shrunk(m.group()), run)

    def _shrunk(self, run: str) -> str:
        """``run`` (no character splits) shortened: its characters that BERT's ``clean_text`` deletes thinned out
        (``_fewer_deleted``), then cut to its head and last character when the head normalizes to more than
        ``max_input_chars_per_word`` characters (not when it normalizes to fewer, as combining marks do: no unknown
        token to keep)."""
        normalizer = self.tokenizer.normalizer
        if normalizer is None or self._max_word is None:  # pragma: no cover - set whenever runs are shrunk
            return run
        run = self._fewer_deleted(run)
        head = run[:LONG_RUN]
        return head + run[-1] if len(normalizer.normalize_str(head)) > self._max_word else run

    def _fewer_deleted(self, run: str) -> str:
        """``run`` with each stretch of characters that BERT's ``clean_text`` deletes (controls, format characters
        such as U+200B, U+FFFD) inside it cut to one, its first and last characters kept, and still longer than
        ``LONG_RUN`` (deleted characters put back after the first where needed). ``clean_text`` is the normalizer's
        first step, so these characters never reach the rest of it (they do not even block the reordering of
        combining marks, as U+034F does): the normalized text is the same; and the run keeps its ends and a length
        that no added token can hold (``_shrinker``), so added tokens match as before. 2 MB of "\x01" or of U+200B
        reached the tokenizer whole (up to 1.3 s and 230 MB for no token)."""
        chars = sorted(_distinct(run))
        clean = _clean_text_only()
        self._deleted.update((c, clean.normalize_str(c) == "") for c in chars if c not in self._deleted)
        deleted = "".join(c for c in chars if self._deleted[c])
        if not deleted:
            return run
        inner = re.sub(f"[{re.escape(deleted)}]{{2,}}", lambda m: m.group()[0], run[1:-1])
        if len(inner) == len(run) - 2:
            return run
        return run[0] + deleted[0] * max(0, LONG_RUN - 1 - len(inner)) + inner + run[-1]

    def _learn_splits(self, chars: list[str]) -> None:
        """Record in ``self._splits`` whether the tokenizer's normalizer and pre-tokenizer start a new piece at (or
        around) each of ``chars``: asked of the tokenizer, as Python's Unicode tables and its own may differ. All at
        once, then halves of a group that splits (a run of many distinct characters costs a few calls, not one a
        character)."""
        if not chars:
            return
        splits = self._splits_any("".join(chars))
        if not splits or len(chars) == 1:
            self._splits.update(dict.fromkeys(chars, splits))
            return
        half = len(chars) // 2
        self._learn_splits(chars[:half])
        self._learn_splits(chars[half:])

    def _splits_any(self, chars: str) -> bool:
        """Whether some character of ``chars`` splits: BERT's normalizer maps each character on its own (combining
        marks only move among themselves), so "x" + chars + "x" is one piece exactly when none does."""
        normalizer, pre_tokenizer = self.tokenizer.normalizer, self.tokenizer.pre_tokenizer
        if normalizer is None or pre_tokenizer is None:  # pragma: no cover - the chunk path has both
            return True
        return len(pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(f"x{chars}x"))) != 1

    def _holding_spaced_tokens(self, texts: Sequence[str]) -> list[int]:
        """The texts whose normalized form holds an added token with whitespace (none without such tokens)."""
        spaced, normalizer = self._spaced, self.tokenizer.normalizer
        if spaced is None:
            return []
        found = []
        for i, text in enumerate(texts):
            try:
                normalized = text if normalizer is None else normalizer.normalize_str(text)
            except (TypeError, UnicodeEncodeError):  # lone surrogates, as encode_batch handles them
                normalized = normalizer.normalize_str(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
            if spaced.search(normalized):
                found.append(i)
        return found

    def _may_cut(self, text: str) -> bool:
        """Whether a long ``text`` may be cut (``encode_parts``): not when it holds an added token with whitespace
        ("new york"), raw or normalized, since a cut at that whitespace would give the token's first word instead.
        Only a tokenizer with such a token pays for the search (normalizing: about 0.4 s a MB)."""
        return not (self._spaced_raw is not None and self._spaced_raw.search(text)) \
            and not self._holding_spaced_tokens([text])

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
            if _IDEOGRAPH_CHAR.search(texts[i], 0, cut + 4 * LONG_RUN):
                texts[i] = self._few_unknown(texts[i])
        originals = {i: texts[i] for i in cuts}
        whole: dict[int, bool] = {}
        for i in cuts:
            texts[i], whole[i] = self._cut(texts[i], cut)
        ids, offsets = _merge(len(texts), self._encode_parts(texts, limit))
        counts = np.diff(offsets)
        short = [i for i in cuts if counts[i] < limit and not whole[i]]
        if not short:
            return [(np.arange(len(texts), dtype=np.int64), ids, offsets)]
        rest = np.setdiff1d(np.arange(len(texts)), short)
        short_positions = np.asarray(short, dtype=np.int64)
        redo = self._encode_further([self._few_unknown(originals[i]) for i in short], limit, cut)
        return [(rest, *_reorder(ids, offsets, rest)), (short_positions, *redo)]

    def _cut(self, text: str, at: int, *, checked: bool = False) -> tuple[str, bool]:
        """``text`` up to the first place at or after ``at`` where it may be cut (whole where there is none), and
        whether that is the whole text; ``checked``: ``_may_cut(text)`` is known to be true. A whole text, and one with
        no cut point near ``at``, has its long runs shrunk first (``_shrink``: the same ids, and a short text); a part
        cut near ``at`` is not scanned for them (a third more time for 45 kB texts), as it is short already."""
        if len(text) <= at or self._cut_at is None or not (checked or self._may_cut(text)):
            return self._shrink(text), True
        m = self._cut_at.search(text, at, at + 4 * LONG_RUN)  # ordinary text has one near
        if m is not None:
            return text[: m.start()], False
        # None near: a long run may be all there is up to the next one. Shrinking the whole text first scans it once
        # (2 MB of one emoji: 7 ms); the cut pattern took 0.23 s over it (each astral character is compared with
        # each astral punctuation mark), and the Hugging Face tokenizer 1.9 s and 557 MB over the kept part.
        text = self._shrink(text)
        m = self._cut_at.search(text, at) if len(text) > at else None
        return (text, True) if m is None else (text[: m.start()], False)

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
            cut_texts = [self._cut(texts[k], cut, checked=True) for k in pending]  # each was cut once
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
        """The same tokenizer and compiled tables (never changed after ``__init__``, so shared), with a chunk cache of
        its own (empty, same budget): a copy's ``cache_bytes`` and ``clear_cache`` leave the original's cache alone."""
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
