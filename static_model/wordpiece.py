"""WordPiece for plain-ASCII chunks, compiled: exactly what BertNormalizer + BertPreTokenizer + WordPiece give.

On ASCII, BertNormalizer only lower-cases (when set) and deletes control characters, and BertPreTokenizer splits
at whitespace and at each ASCII punctuation character (``string.punctuation``, the same set). So a whitespace-free
ASCII chunk of letters, digits and punctuation is a sequence of pre-tokens: maximal runs of letters/digits and single
punctuation characters, each tokenized by WordPiece's greedy longest-match-first over the vocabulary (``##`` or the
model's continuation prefix inside a word; a word longer than ``max_input_chars_per_word``, or one with a piece not in
the vocabulary, is the unknown token, which the runtime drops). Any other byte (a control character) makes the
chunk "not handled": the caller sends it to the Hugging Face tokenizer. Added tokens are the caller's business too
(:func:`find_added` flags the chunks that contain one).
"""

from __future__ import annotations

import string

import numpy as np

from static_model.jit import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

# A ``StringTable`` as compiled code takes it: ``(slots, data, offsets, ids)``.
TableArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

# byte classes: 1 letter/digit, 2 punctuation, 0 anything else (control characters)
BYTE_CLASS = np.zeros(256, dtype=np.uint8)
for _c in string.ascii_letters + string.digits:
    BYTE_CLASS[ord(_c)] = 1
for _c in string.punctuation:
    BYTE_CLASS[ord(_c)] = 2


class StringTable:
    """An open-addressing hash table from byte strings to ids, usable inside compiled code (as its arrays)."""

    def __init__(self, keys: list[bytes], ids: list[int]) -> None:
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        self.offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.data = np.frombuffer(b"".join(keys), dtype=np.uint8).copy()
        self.ids = np.asarray(ids, dtype=np.int32)
        size = 1 << max(4, int(2 * len(keys) - 1).bit_length())
        self.slots = np.full(size, -1, dtype=np.int32)
        self.max_len = int(lengths.max()) if len(keys) else 0
        _fill(self.slots, self.data, self.offsets)

    @property
    def arrays(self) -> TableArrays:
        """The table's arrays ``(slots, data, offsets, ids)``, for compiled code."""
        return self.slots, self.data, self.offsets, self.ids


@njit(nogil=True)
def _hash(prefix: np.ndarray, buf: np.ndarray, start: int, end: int) -> np.uint64:  # pragma: no cover - compiled
    h = _FNV_OFFSET
    for i in range(prefix.shape[0]):
        h = (h ^ np.uint64(prefix[i])) * _FNV_PRIME
    for i in range(start, end):
        h = (h ^ np.uint64(buf[i])) * _FNV_PRIME
    return h


@njit(nogil=True)
def _fill(slots: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> None:  # pragma: no cover - compiled
    mask = np.uint64(slots.shape[0] - 1)
    empty = data[:0]
    for k in range(offsets.shape[0] - 1):
        s = np.int64(_hash(empty, data, offsets[k], offsets[k + 1]) & mask)
        while slots[s] >= 0:
            s = (s + 1) & (slots.shape[0] - 1)
        slots[s] = k


@njit(nogil=True, inline="always")
def _find(  # pragma: no cover - compiled
    table: TableArrays, prefix: np.ndarray, buf: np.ndarray, start: int, end: int
) -> int:
    """The id of ``prefix + buf[start:end]`` in the table, or -1."""
    slots, data, offsets, ids = table
    size = slots.shape[0]
    n = prefix.shape[0] + end - start
    s = np.int64(_hash(prefix, buf, start, end) & np.uint64(size - 1))
    while slots[s] >= 0:
        k = slots[s]
        if offsets[k + 1] - offsets[k] == n:
            same = True
            base = offsets[k]
            for i in range(prefix.shape[0]):
                if data[base + i] != prefix[i]:
                    same = False
                    break
            if same:
                base += prefix.shape[0]
                for i in range(end - start):
                    if data[base + i] != buf[start + i]:
                        same = False
                        break
            if same:
                return ids[k]
        s = (s + 1) & (size - 1)
    return -1


@njit(nogil=True)
def _segment(  # pragma: no cover - compiled
    buf: np.ndarray, i: int, end: int, out: np.ndarray, pos: int, table: TableArrays, max_len: int,
    prefix: np.ndarray, max_chars: int, byte_class: np.ndarray,
) -> int:
    """Pre-tokenize ``buf[i:end]`` (runs of letters/digits, single punctuation characters) and WordPiece each
    piece into ``out[pos:]``; the new ``pos``, or -1 at a byte this path does not cover."""
    no_prefix = prefix[:0]
    while i < end:
        kind = byte_class[buf[i]]
        if kind == 0:
            return -1
        if kind == 2:  # a word of one character: unknown (dropped) past max_input_chars_per_word 0 as any other
            token = _find(table, no_prefix, buf, i, i + 1)
            if token >= 0 and max_chars >= 1:
                out[pos] = token
                pos += 1
            i += 1
            continue
        word_end = i + 1
        while word_end < end and byte_class[buf[word_end]] == 1:
            word_end += 1
        if word_end - i <= max_chars:
            word_pos = pos
            start = i
            while start < word_end:
                stop = min(word_end, start + max_len)
                token = -1
                while stop > start:
                    token = _find(table, prefix if start > i else no_prefix, buf, start, stop)
                    if token >= 0:
                        break
                    stop -= 1
                if token < 0:  # a piece not in the vocabulary: the whole word is the unknown token
                    pos = word_pos
                    break
                out[pos] = token
                pos += 1
                start = stop
        i = word_end
    return pos


@njit(nogil=True)
def wordpiece_chunks(  # pragma: no cover
    buf: np.ndarray, offsets: np.ndarray, table: TableArrays, max_len: int, prefix: np.ndarray, max_chars: int,
    byte_class: np.ndarray, added: TableArrays, added_max_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids of each ASCII chunk ``buf[offsets[k]:offsets[k + 1]]`` (unknown token left out): flat ids,
    per-chunk offsets, and ``handled[k]`` (False: a byte this path does not cover; its ids are empty).

    ``added`` (used when ``added_max_len > 0``): added tokens as the tokenizer matches them in normalized text
    (anywhere, not only at word boundaries, no stripping): leftmost-longest matches split the chunk, each is its
    own id, and the pieces between them are pre-tokenized and WordPiece'd on their own, as the tokenizer does."""
    n = offsets.shape[0] - 1
    out = np.empty(buf.shape[0], dtype=np.int32)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    handled = np.ones(n, dtype=np.bool_)
    empty = buf[:0]
    pos = 0
    for k in range(n):
        chunk_start = pos
        end = offsets[k + 1]
        segment = offsets[k]
        i = segment
        while added_max_len > 0 and i < end and pos >= 0:
            token = -1
            stop = min(end, i + added_max_len)
            while stop > i:
                token = _find(added, empty, buf, i, stop)
                if token >= 0:
                    break
                stop -= 1
            if token < 0:
                i += 1
                continue
            pos = _segment(buf, segment, i, out, pos, table, max_len, prefix, max_chars, byte_class)
            if pos >= 0:
                out[pos] = token
                pos += 1
            i = segment = stop
        if pos >= 0:
            pos = _segment(buf, segment, end, out, pos, table, max_len, prefix, max_chars, byte_class)
        if pos < 0:
            handled[k] = False
            pos = chunk_start
        out_offsets[k + 1] = pos
    return out[:pos], out_offsets, handled


@njit(nogil=True)
def find_added(  # pragma: no cover - compiled
    buf: np.ndarray, offsets: np.ndarray, table: TableArrays, max_len: int
) -> np.ndarray:
    """For each chunk ``buf[offsets[k]:offsets[k + 1]]``: does it contain one of the table's strings?"""
    n = offsets.shape[0] - 1
    hits = np.zeros(n, dtype=np.bool_)
    empty = buf[:0]
    for k in range(n):
        end = offsets[k + 1]
        for start in range(offsets[k], end):
            for stop in range(start + 1, min(end, start + max_len) + 1):
                if _find(table, empty, buf, start, stop) >= 0:
                    hits[k] = True
                    break
            if hits[k]:
                break
    return hits


@njit(nogil=True)
def lower_ascii(buf: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """A copy of the ASCII bytes with A-Z lower-cased."""
    out = buf.copy()
    for i in range(out.shape[0]):
        if 65 <= out[i] <= 90:
            out[i] += 32
    return out


class AsciiWordPiece:
    """:func:`wordpiece_chunks` bound to one WordPiece vocabulary (built from the tokenizer's JSON model)."""

    def __init__(self, model: dict) -> None:
        vocab = model["vocab"]
        ascii_tokens = [(t.encode("ascii"), i) for t, i in vocab.items() if t.isascii()]
        self.table = StringTable([t for t, _ in ascii_tokens], [i for _, i in ascii_tokens])
        self.prefix = np.frombuffer(model.get("continuing_subword_prefix", "##").encode("utf-8"), dtype=np.uint8).copy()
        self.max_chars = int(model.get("max_input_chars_per_word", 100))

    def encode(
        self, buf: np.ndarray, offsets: np.ndarray, added: StringTable | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids, offsets and ``handled`` for the chunks in ``buf`` (already lower-cased for an uncased model),
        splitting out the ``added`` tokens' normalized forms (see :func:`wordpiece_chunks`)."""
        added_arrays = (added or _NO_ADDED).arrays
        return wordpiece_chunks(buf, offsets, self.table.arrays, self.table.max_len, self.prefix, self.max_chars,
                                BYTE_CLASS, added_arrays, 0 if added is None else added.max_len)


_NO_ADDED = StringTable([], [])


def ascii_buffer(chunks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """ASCII strings as one uint8 buffer and their offsets."""
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks)), out=offsets[1:])
    return np.frombuffer(bytearray("".join(chunks).encode("ascii")), dtype=np.uint8), offsets
