"""A bounded, thread-safe cache from whitespace-free chunks to their token ids.

Design (readers take no lock, and no call depends on anything eviction can take away):

* A *generation* holds a dict ``chunk -> entry`` and append-only arrays (``pieces``, ``starts``) with spare
  capacity. A writer first writes an entry's ids into the arrays (growing means: copy into bigger arrays, then
  publish the new pair as one attribute), and only then publishes the dict entries. So any entry a reader finds
  is already in the arrays the reader fetches after its look-ups. Entries are never changed or removed.
* The cache holds two generations: *current* and *previous*, swapped as one tuple. When current passes half the
  byte budget it becomes previous and a new, empty current starts; the old previous is dropped. A call holds
  references to the generation it read, so a swap never takes anything away from a call in flight.
* A call resolves the chunks it does not find (from previous, or by tokenizing them, outside any lock) into
  ids of its own, uses those for itself, and then merges them into current under a short lock (appends only).
* Bytes are measured, not guessed: the id arrays' capacity, the dict's table (``sys.getsizeof``), each chunk's
  ``str`` object (``sys.getsizeof``: 1, 2 or 4 bytes per character plus its header) and each entry number's ``int``.
  Lowering the budget drops, at once, the generations that no longer fit.
* A child forked while a thread of the parent was merging (holding the lock) starts with a new lock and, since
  that merge stopped half-way, an empty cache.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SEPARATOR = "\x00"  # the chunk between texts; it maps to -1 in every generation
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
# The smallest budget accepted besides 0 (off): below about 3.3 KB a generation cannot hold its first arrays and one
# entry, so it would cache nothing while looking on; 16 KiB holds a few dozen short chunks.
MIN_CACHE_BYTES = 16 * 1024
MAX_CACHED_CHUNK_CHARS = 256  # longer chunks (rare; mostly junk) are tokenized every time, never cached
_INT_BYTES = sys.getsizeof(1 << 20)  # an entry number's int object (28 bytes on 64-bit CPython)
_SMALL_INTS = 257  # 0..256 are CPython's shared small ints: entry numbers below cost nothing
# Bytes a new entry is planned at, besides its str and its ids: its int, a dict slot (20-44 bytes measured, with
# the table's spare room) and its offset in ``starts`` with spare capacity (2 x 8).
_ENTRY_OVERHEAD = _INT_BYTES + 48 + 16
_ID_BYTES = 8  # a token id in ``pieces`` (int32) with spare capacity
_INITIAL_CAPACITY = 128  # the arrays' first size (an empty generation allocates none)
# Each generation fills up to this share of the budget. The arrays and the dict grow by doubling, so the append
# that fills a generation may take it somewhat past its share (then it becomes previous); two stay within budget.
_GENERATION_SHARE = 0.4

# chunks → (the same chunks in the order of the results, flat ids, offsets)
Resolver = Callable[[list[str]], tuple[list[str], np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class CacheInfo:
    """What :meth:`ChunkCache.info` reports: entries and bytes held (measured), the budget, chunk look-ups served
    from the cache (hits; the separators between texts are not look-ups) and distinct chunks tokenized (misses)
    since the last clear."""

    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int


class Generation:
    """One generation: a dict from chunk to entry number and append-only id arrays. Writers hold the cache's
    lock; readers do their dict look-ups first and read :attr:`arrays` after."""

    __slots__ = ("arrays", "counts", "index")

    def __init__(self) -> None:
        self.index: dict[str, int] = {SEPARATOR: -1}
        self.arrays = (np.empty(0, dtype=np.int32), np.zeros(0, dtype=np.int64))  # pieces, starts; grown on append
        # (entries, pieces, str bytes): replaced as one, so an append cut short anywhere (KeyboardInterrupt, an
        # error) leaves them all as they were or all updated, never an entry count that disagrees with the pieces
        self.counts = (0, 0, 0)

    @property
    def n_entries(self) -> int:
        """Entries appended (an append cut short after counting its entries may leave some not in the dict)."""
        return self.counts[0]

    @n_entries.setter
    def n_entries(self, value: int) -> None:
        self.counts = (value, *self.counts[1:])

    @property
    def n_pieces(self) -> int:
        """Token ids in ``pieces`` that entries own."""
        return self.counts[1]

    @n_pieces.setter
    def n_pieces(self, value: int) -> None:
        self.counts = (self.counts[0], value, self.counts[2])

    @property
    def text_bytes(self) -> int:
        """The entries' chunk ``str`` objects' bytes."""
        return self.counts[2]

    @property
    def nbytes(self) -> int:
        """Bytes held: the id arrays (their capacity), the dict's table, the chunks' str objects and the entry
        numbers' int objects."""
        pieces, starts = self.arrays
        return (pieces.nbytes + starts.nbytes + sys.getsizeof(self.index) + self.text_bytes
                + _INT_BYTES * max(self.n_entries - _SMALL_INTS, 0))

    def ids_of(self, chunk: str) -> np.ndarray | None:
        """The token ids of ``chunk``, or None when it is not held."""
        entry = self.index.get(chunk)
        if entry is None:
            return None
        pieces, starts = self.arrays  # read after the look-up
        return pieces[starts[entry] : starts[entry + 1]]

    def append(self, chunks: list[str], ids: np.ndarray, offsets: np.ndarray) -> None:
        """Add entries (ids of chunk k: ``ids[offsets[k]:offsets[k + 1]]``); amortised O(total size). Callers
        hold the cache's lock.

        Safe to cut short at any point (a KeyboardInterrupt, a MemoryError): the ids are written past what entries
        own, then the arrays, then the counts (one attribute), and only then the dict entries are published; so an
        append cut short leaves unused room, never an entry whose ids a later append overwrites."""
        pieces, starts = self.arrays
        n_entries, n_pieces, text_bytes = self.counts
        n, total = len(chunks), int(offsets[-1] - offsets[0])
        if n_pieces + total > len(pieces) or n_entries + n + 1 > len(starts):
            grown_pieces = np.empty(max(2 * len(pieces), n_pieces + total, _INITIAL_CAPACITY), dtype=np.int32)
            grown_pieces[:n_pieces] = pieces[:n_pieces]
            grown_starts = np.zeros(max(2 * len(starts), n_entries + n + 1, _INITIAL_CAPACITY), dtype=np.int64)
            kept = min(len(starts), n_entries + 1)  # an empty generation has no starts yet
            grown_starts[:kept] = starts[:kept]
            pieces, starts = grown_pieces, grown_starts
        pieces[n_pieces : n_pieces + total] = ids[offsets[0] : offsets[-1]]
        starts[n_entries + 1 : n_entries + n + 1] = offsets[1:] - offsets[0] + n_pieces
        counts = (n_entries + n, n_pieces + total, text_bytes + sum(map(sys.getsizeof, chunks)))
        self.arrays = (pieces, starts)  # published before the entries that point into it
        self.counts = counts  # counted before they are published: a later append never reuses their room
        self.index.update(zip(chunks, range(n_entries, n_entries + n)))  # one C call: no signal lands inside


@dataclass
class Lookup:
    """One call's view: chunk entries (-1: separator; ``>= 0``: in ``pieces``/``starts``; ``<= -2``: entry
    ``-2 - e`` of the call's own ``local_ids``/``local_offsets``)."""

    entries: np.ndarray
    pieces: np.ndarray
    starts: np.ndarray
    local_ids: np.ndarray
    local_offsets: np.ndarray


_CACHES: weakref.WeakSet[ChunkCache] = weakref.WeakSet()


class ChunkCache:
    """Chunk → token ids, bounded by ``max_bytes``; ``resolve`` tokenizes the chunks it does not hold."""

    def __init__(self, resolve: Resolver, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._state = (Generation(), Generation())  # (current, previous), replaced as one
        self.max_bytes = max_bytes
        self._hits = 0
        self._misses = 0
        self._merges = 0  # merges so far: a call that saw the same count at look-up time can skip its filter
        _CACHES.add(self)

    @property
    def max_bytes(self) -> int:
        """The memory budget in bytes (0 turns the cache off, else at least ``MIN_CACHE_BYTES``); setting it checks the
        value, and a lower budget drops at once the generations that no longer fit (calls in flight keep what they
        already read)."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"cache_bytes must be a non-negative integer; got {value!r}")
        if 0 < value < MIN_CACHE_BYTES:
            raise ValueError(f"cache_bytes={value} is too small to hold anything: give at least {MIN_CACHE_BYTES} "
                             "bytes (16 KiB; the default is 64 MiB), or 0 for no cache")
        with self._lock:
            self._max_bytes = int(value)
            self._trim()

    def _trim(self) -> None:
        """Drop what does not fit the budget (the lock is held): current over its share (merges keep it within),
        previous over the rest of the budget; so current can fill its share and the two stay within budget."""
        share = int(self._max_bytes * _GENERATION_SHARE)
        current, previous = self._state
        if current.n_entries and current.nbytes > share:
            current = Generation()
        if previous.n_entries and previous.nbytes > self._max_bytes - share:
            previous = Generation()
        if (current, previous) != self._state:
            self._state = (current, previous)

    def clear(self) -> None:
        """Drop every entry and reset the counters (calls in flight keep what they already read)."""
        with self._lock:
            self._state = (Generation(), Generation())
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        """Entries, bytes, budget, hits and misses now (a generation holding nothing counts no bytes, as the budget
        counts it: an empty cache, or one turned off, reported its two empty tables' 368 bytes over a budget of 0)."""
        current, previous = self._state
        return CacheInfo(
            entries=current.n_entries + previous.n_entries,
            bytes=sum(generation.nbytes for generation in (current, previous) if generation.n_entries),
            max_bytes=self._max_bytes,
            hits=self._hits,
            misses=self._misses,
        )

    def lookup(self, chunks: list[str], separators: int | None = None) -> Lookup:
        """Entries for ``chunks`` (the separator is -1); chunks not held are resolved for this call and merged.
        ``separators``: how many of ``chunks`` are the separator, if the caller knows (else they are counted);
        they are not look-ups, so not hits."""
        looked_up = len(chunks) - (chunks.count(SEPARATOR) if separators is None else separators)
        merges = self._merges  # before any look-up: if it is the same at merge time, nothing was added since
        current, previous = self._state
        index = current.index
        try:
            entries = np.fromiter(map(index.__getitem__, chunks), dtype=np.int32, count=len(chunks))
            pieces, starts = current.arrays  # read after the look-ups: it covers every entry found
            with self._lock:
                self._hits += looked_up
            return Lookup(entries, pieces, starts, _EMPTY_IDS, _EMPTY_OFFSETS)
        except KeyError:
            pass
        distinct = set(chunks)
        missing = list(distinct.difference(index))
        found = list(distinct.difference(missing))
        view = dict(zip(found, map(index.__getitem__, found)))  # this call's entries: cached ones...
        pieces, starts = current.arrays  # read after the look-ups: it covers every entry found
        missing, local_ids, local_offsets, tokenized = self._resolve_missing(missing, previous)
        view.update(zip(missing, range(-2, -2 - len(missing), -1)))  # ...and its own (entry -2 - k)
        entries = np.fromiter(map(view.__getitem__, chunks), dtype=np.int32, count=len(chunks))
        self._merge(missing, local_ids, local_offsets, hits=looked_up - tokenized, misses=tokenized,
                    seen=(merges, current))
        return Lookup(entries, pieces, starts, local_ids, local_offsets)

    def _resolve_missing(
        self, missing: list[str], previous: Generation
    ) -> tuple[list[str], np.ndarray, np.ndarray, int]:
        """Ids for ``missing`` (in the order returned): copied from the previous generation where it has them,
        else tokenized; and how many were tokenized."""
        if not previous.n_entries:
            return (*self._resolve(missing), len(missing)) if missing else ([], _EMPTY_IDS, _EMPTY_OFFSETS, 0)
        found = [previous.ids_of(c) for c in missing]
        new = [c for c, ids in zip(missing, found) if ids is None]
        old = [(c, ids) for c, ids in zip(missing, found) if ids is not None]
        new, new_ids, new_offsets = self._resolve(new) if new else ([], _EMPTY_IDS, _EMPTY_OFFSETS)
        arrays = [new_ids] + [ids for _, ids in old]
        lengths = np.concatenate([np.diff(new_offsets), np.fromiter((len(ids) for _, ids in old), dtype=np.int64,
                                                                    count=len(old))])
        offsets = np.zeros(len(missing) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return new + [c for c, _ in old], np.concatenate(arrays).astype(np.int32, copy=False), offsets, len(new)

    def _merge(self, chunks: list[str], ids: np.ndarray, offsets: np.ndarray, *, hits: int, misses: int,
               seen: tuple[int, Generation]) -> None:
        """Add this call's resolved chunks to the current generation, as many as fit; when it is full it becomes
        the previous generation and the rest go to a new one (what does not fit there either is not cached).
        ``seen``: the merge count and current generation when the call looked up; if both are still the same,
        none of ``chunks`` can be there yet (a merge counts itself once it has published its entries, so a call that
        looked up while one was under way sees the count move and filters)."""
        with self._lock:
            self._hits += hits
            self._misses += misses
            share = int(self._max_bytes * _GENERATION_SHARE)
            if share == 0 or not chunks:
                return
            current = self._state[0]
            unchanged = seen == (self._merges, current) and max(map(len, chunks)) <= MAX_CACHED_CHUNK_CHARS
            keep = None if unchanged else np.fromiter(
                (len(c) <= MAX_CACHED_CHUNK_CHARS and c not in current.index for c in chunks), dtype=bool,
                count=len(chunks))
            try:  # counted once its entries are published: a call that read the count before sees it move
                if keep is not None and not keep.any():
                    return
                lengths = np.diff(offsets)
                if keep is not None and not keep.all():
                    ids = ids[np.repeat(keep, lengths)]
                    lengths = lengths[keep]
                    chunks = [c for c, k in zip(chunks, keep) if k]
                sizes = np.fromiter(map(sys.getsizeof, chunks), dtype=np.int64, count=len(chunks))
                costs = np.cumsum(lengths * _ID_BYTES + sizes + _ENTRY_OVERHEAD)
                offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
                np.cumsum(lengths, out=offsets[1:])
                done = 0
                for _ in range(2):
                    fits = done + int(np.searchsorted(costs[done:] - (costs[done - 1] if done else 0),
                                                      share - current.nbytes, side="right"))
                    if fits > done:
                        current.append(chunks[done:fits], ids, offsets[done : fits + 1])
                        done = fits
                    if done == len(chunks) and current.nbytes <= share:
                        return
                    current = Generation()
                    self._state = (current, self._state[0])
                    self._trim()  # the new previous, if its last append took it far past its share
                    if done == len(chunks):
                        return
            finally:
                self._merges += 1

    def _after_fork(self) -> None:
        """In a forked child: a new lock. The old one held means a thread of the parent (absent here) was merging:
        its generation may be half-written, so the child starts empty, as after :meth:`clear`."""
        if self._lock.locked():
            self._state = (Generation(), Generation())
            self._hits = self._misses = 0
        self._lock = threading.Lock()


_EMPTY_IDS = np.zeros(0, dtype=np.int32)
_EMPTY_OFFSETS = np.zeros(1, dtype=np.int64)


def _reset_locks_in_child() -> None:
    """``os.register_at_fork(after_in_child=...)``: every live cache's lock, and its state if a merge was cut."""
    for cache in list(_CACHES):
        cache._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_in_child)
