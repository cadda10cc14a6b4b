"""Long texts bounded before tokenizing: a 2 MB text costs no more than its first ``max_length`` tokens need.

:class:`LongTextBounder` is the stage :class:`~static_model.tokenization.TextEncoder` composes: it cuts a long text
where the ids of the kept part are a prefix of the whole text's, shrinks long runs of word characters that WordPiece
reads as one unknown token whatever their length, and collapses runs of unknown ideographs. Each gives the same ids.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer, normalizers

# A cut text ends where the ids of the kept part are a prefix of the ids of the whole text. BERT: before any space,
# tab or newline (``LongTextBounder._cut_pattern``). Other tokenizers: only where their pre-tokenizer always starts a
# new piece (see ``non_bert_cut_pattern``): the start of a whitespace run, as cut inside one the run's own tokens change
# (GPT-2's ByteLevel keeps a run as one piece, SentencePiece's normalizer folds it into one space); Metaspace splits
# only at " ".
_CUT_AT_RUN = re.compile(r"(?<!\s)[ \t\n\r]")
_CUT_AT_SPACE_RUN = re.compile(r"(?<!\s) ")
# Text without whitespace (Chinese, Japanese; a base64 blob, a URL) may also be cut before an ideograph, where
# BertNormalizer puts spaces (``handle_chinese_chars``), or before punctuation, which BertPreTokenizer splits off,
# when no added token can match across it (see ``LongTextBounder._cut_pattern``).
_IDEOGRAPH = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b81f\U0002f800-\U0002fa1f"
_IDEOGRAPH_CHAR = re.compile(f"[{_IDEOGRAPH}]")
# A run of word characters (``_word_class``) longer than this is shrunk to its first LONG_RUN characters and its last
# before tokenizing (``LongTextBounder.shrink``): WordPiece reads a word past ``max_input_chars_per_word`` (100) as
# one unknown token, whatever its length, so the ids stay the same and 2 MB of one emoji is not tokenized whole.
LONG_RUN = 1024
# How far past the cut position a cut point is looked for before long runs are shrunk (ordinary text has one near),
# and so how far a cut text may reach: what ``collapse_unknown_near`` scans for ideographs.
CUT_REACH = 4 * LONG_RUN


@functools.cache
def _punctuation_and_separators() -> tuple[str, ...]:
    """ASCII punctuation and every Unicode punctuation mark or separator (categories P and Z) that is not a combining
    character: the marks a BERT pre-tokenizer may split off (``LongTextBounder._cut_pattern`` checks each). One scan
    of Unicode a process (about 0.1 s)."""
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
    (an astral range costs each character a comparison). Only a search aid: ``LongTextBounder._learn_splits`` asks
    the tokenizer about each character found. One scan of the BMP a process (about 0.1 s)."""
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


def normalized(normalizer: Any, text: str) -> str:
    """``text`` as ``normalizer`` gives it (``text`` itself without one); lone surrogates read as U+FFFD, as
    :func:`~static_model.tokenization.encode_batch` reads them."""
    if normalizer is None:
        return text
    try:
        return normalizer.normalize_str(text)
    except (TypeError, UnicodeEncodeError):
        return normalizer.normalize_str(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


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


class LongTextBounder:
    """Bounds long texts before tokenizing, without changing their first ids: cuts them, shrinks long word runs,
    collapses runs of unknown ideographs. Per-character answers of the tokenizer are memoized in dicts written
    without a lock (a race only computes an answer twice), so one instance may serve several threads."""

    def __init__(self, tokenizer: Tokenizer, spec: dict, *, fast: bool, unk_id: int | None,
                 spaced: re.Pattern | None, spaced_raw: re.Pattern | None) -> None:
        """``tokenizer``: the prepared tokenizer, ``spec`` its JSON; ``fast``: on the BERT chunk path; ``spaced`` and
        ``spaced_raw``: the added tokens holding whitespace, found in the normalized and in the raw text."""
        self._tokenizer = tokenizer
        self._fast = fast
        self._unk_id = unk_id
        self._spaced = spaced
        self._spaced_raw = spaced_raw
        self._cut_at = self._cut_pattern(spec) if fast else non_bert_cut_pattern(spec, tokenizer)
        # an unknown ideograph is a piece of its own and a dropped [UNK]: runs of them are cut to one
        # (``collapse_unknown``)
        self._unknown_runs = fast and unk_id is not None and self._may_cut_at_ideographs(spec)
        self._unknown: dict[str, bool] = {}  # ideograph → whether the tokenizer reads it as the unknown token alone
        self._silent_chars: dict[str, bool] = {}  # character → whether it normalizes to whitespace or nothing
        self._silent_tokens: bool | None = None  # whether an added token is made of such characters alone
        self._max_word = self._shrinkable_word(spec)
        self._added_contents = [t["content"] for t in spec.get("added_tokens", [])]
        self._splits: dict[str, bool] = {}  # character → whether the tokenizer splits on it (``_learn_splits``)
        self._deleted: dict[str, bool] = {}  # character → whether ``clean_text`` deletes it (``_fewer_deleted``)
        self._shrinks: bool | None = None  # whether runs are shrunk (``_shrinker``), decided at the first long text

    @property
    def cut_pattern(self) -> re.Pattern | None:
        """Where a long text may be cut (a match's start), or ``None`` when it may not be cut at all."""
        return self._cut_at

    def may_cut(self, text: str) -> bool:
        """Whether a long ``text`` may be cut: not when it holds an added token with whitespace ("new york"), raw or
        normalized, since a cut at that whitespace would give the token's first word instead. Only a tokenizer with
        such a token pays for the search (normalizing: about 0.4 s a MB)."""
        if self._spaced_raw is not None and self._spaced_raw.search(text):
            return False
        spaced = self._spaced
        return spaced is None or not spaced.search(normalized(self._tokenizer.normalizer, text))

    def cut(self, text: str, at: int, *, checked: bool = False) -> tuple[str, bool]:
        """``text`` up to the first place at or after ``at`` where it may be cut (whole where there is none), and
        whether that is the whole text; ``checked``: ``may_cut(text)`` is known to be true. A whole text, and one with
        no cut point near ``at``, has its long runs shrunk first (``shrink``: the same ids, and a short text); a part
        cut near ``at`` is not scanned for them (a third more time for 45 kB texts), as it is short already."""
        if len(text) <= at or self._cut_at is None or not (checked or self.may_cut(text)):
            return self.shrink(text), True
        m = self._cut_at.search(text, at, at + CUT_REACH)  # ordinary text has one near
        if m is not None:
            return text[: m.start()], False
        # None near: a long run may be all there is up to the next one. Shrinking the whole text first scans it once
        # (2 MB of one emoji: 7 ms); the cut pattern took 0.23 s over it (each astral character is compared with
        # each astral punctuation mark), and the Hugging Face tokenizer 1.9 s and 557 MB over the kept part.
        text = self.shrink(text)
        m = self._cut_at.search(text, at) if len(text) > at else None
        return (text, True) if m is None else (text[: m.start()], False)

    def _cut_pattern(self, spec: dict) -> re.Pattern:
        """Where a long text may be cut so that the ids of the kept part are a prefix of the whole text's: at
        whitespace; before an ideograph (``_may_cut_at_ideographs``); before a punctuation mark or space, ASCII or
        Unicode, that splits (``_splitting_marks``). A base64 blob or a long URL has no whitespace: cut there, it is
        not tokenized whole; 2 MB of "…" was tokenized whole, 4 s and 1.1 GB for its first 512 tokens."""
        tokens = [t["content"] for t in spec.get("added_tokens", [])]
        normalizer = self._tokenizer.normalizer
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
        tokenizer = self._tokenizer
        normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
        if normalizer is None or pre_tokenizer is None:  # pragma: no cover - the chunk path has both
            return []

        def splits(mark: str) -> bool:
            pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(f"x{mark}x"))
            return len(pieces) > 1 and pieces[0][0] == "x"

        found = [c for c in candidates if c not in inside and not set(normalizer.normalize_str(c)) & inside
                 and splits(c)]
        for head in ["ab", *single_words]:
            encodings = tokenizer.encode_batch([f"{head}{c}cd" for c in found] + [f"{c}cd" for c in found],
                                               add_special_tokens=False)
            head_ids, n = tokenizer.encode(head, add_special_tokens=False).ids, len(found)
            found = [c for i, c in enumerate(found) if encodings[i].ids == head_ids + encodings[n + i].ids]
        return found

    def _may_cut_at_ideographs(self, spec: dict) -> bool:
        """Whether the ids of a text cut just before a CJK ideograph are a prefix of the whole text's: the normalizer
        puts spaces around each ideograph (the pre-tokenizer then splits there), and no added token holds an
        ideograph, nor, if normalized, whitespace once normalized (so no match can reach across the cut)."""
        normalizer = self._tokenizer.normalizer
        if normalizer is None or any(normalizer.normalize_str(c) != f" {c} " for c in "\u3400\u4e00\u9fff\U00020000"):
            return False
        ideograph = re.compile(f"[{_IDEOGRAPH}]")

        def safe(token: dict) -> bool:
            # a normalized token (mpnet's "<unk>") is matched on normalized text, where the cut falls before the space
            # put before the ideograph: one without whitespace or ideographs, once normalized, cannot span it
            form = normalizer.normalize_str(token["content"]) if token.get("normalized", False) else ""
            return not (ideograph.search(token["content"] + form) or any(c.isspace() for c in form))

        return all(map(safe, spec.get("added_tokens", [])))

    def collapse_unknown(self, text: str) -> str:
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
            encodings = self._tokenizer.encode_batch(new, add_special_tokens=False)
            self._unknown.update((c, e.ids == [self._unk_id]) for c, e in zip(new, encodings))
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

    def collapse_unknown_near(self, text: str, at: int) -> str:
        """``collapse_unknown(text)`` where a cut at ``at`` may keep an ideograph; else ``text``, the rest of it not
        scanned (a long ordinary text: about 28 ms a MB)."""
        return self.collapse_unknown(text) if _IDEOGRAPH_CHAR.search(text, 0, at + CUT_REACH) else text

    def _silent(self, c: str) -> bool:
        """Whether the normalizer makes ``c`` whitespace or nothing, whatever its neighbours: each character is
        mapped on its own (``clean_text``, accents stripped after NFD, which only reorders combining marks)."""
        found = self._silent_chars.get(c)
        if found is None:
            normalizer = self._tokenizer.normalizer
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
        """WordPiece's ``max_input_chars_per_word`` when long runs may be shrunk (``shrink``): the chunk path, a
        WordPiece model with an unknown token, and every added token matched before normalization or, if normalized,
        ``_bounded`` (another normalized one, "éé", is matched on normalized text, where it might match inside or
        across a run). ``None`` otherwise. mpnet's normalized "<unk>" left its long texts unshrunk: 2 MB of one
        emoji took 2.6 s and 350 MB for 512 tokens, of U+20000 4.9 s and 800 MB."""
        model = spec.get("model") or {}
        if not self._fast or model.get("type") != "WordPiece" or self._unk_id is None:
            return None
        limit = model.get("max_input_chars_per_word", 100)
        if not (isinstance(limit, int) and 0 <= limit < LONG_RUN):
            return None
        normalizer = self._tokenizer.normalizer
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

    def shrink(self, text: str) -> str:
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
        """One run of ``shrink``, or each stretch of it between characters that the tokenizer splits on."""
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
        normalizer = self._tokenizer.normalizer
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
        normalizer, pre_tokenizer = self._tokenizer.normalizer, self._tokenizer.pre_tokenizer
        if normalizer is None or pre_tokenizer is None:  # pragma: no cover - the chunk path has both
            return True
        return len(pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(f"x{chars}x"))) != 1
