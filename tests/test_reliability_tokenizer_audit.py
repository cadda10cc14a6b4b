"""Tokenization audit (helper h2): the runtime's ids against the Hugging Face tokenizer's, for tokenizers other than
MiniLM's plain one, and what reaches the tokenizer for pathological long texts.

Reproducers (each failed before its fix):

* wrong ids: an added token "a" (or "b", "A"; "\u00e1" on an uncased model) made the probe for whitespace that BERT
  does not split on ("a" + c + "b" against "a b", by ids) pass for the form feed, U+001C-U+001F, U+0085 and the
  vertical tab, which BERT deletes: "0\x0c0" gave "0", "0" instead of "00", "hello\x1cworld" gave "hello",
  "world" instead of "hello", "##world";
* a BERT tokenizer with a *normalized* added token (all-mpnet-base-v2's "<unk>", special, ``normalized: true``) got
  no long-text shortening at all: runs of word characters were never shrunk and ideographs were never cut points,
  so 2 MB of one emoji, of U+20000, of letters in a minified JSON string, cost the Hugging Face tokenizer the whole
  text for 512 tokens (mpnet: 2.6 s / 350 MB, 4.9-7.7 s / 800 MB, 2.4 s);
* a run of characters that BERT deletes (2 MB of "\\x01", of U+200B) was never shrunk: tokenized whole, up to 1.3 s
  and 230 MB for no token;
* unknown ideographs were cut to one only when consecutive: 2 MB of U+20000 each with an accent (stripped) was
  tokenized whole for no token (3 s, 416 MB), of "\\u9fa6 " 0.65 s.

The property tests are guards: mpnet's tokenizer and MiniLM's with normalized added tokens (bounded by punctuation,
``lstrip``/``rstrip``, ``single_word``) on texts made of long runs, ideographs and the tokens themselves.
"""

from __future__ import annotations

import pytest
from helpers.tokenizers import ours, record_lengths, reference_ids, with_added_tokens
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer

from static_model.tokenization import TextEncoder


@pytest.fixture(scope="module")
def minilm(minilm_folder) -> Tokenizer:
    return Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def mpnet() -> Tokenizer:
    """all-mpnet-base-v2's tokenizer; skipped when its package is not installed."""
    from distill.resolve import resolve_teacher

    try:
        folder = resolve_teacher("all-mpnet-base-v2", allow_download=False)
    except Exception as error:  # noqa: BLE001 - any reason it is not there
        pytest.skip(f"all-mpnet-base-v2 is not installed: {error}")
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _unk_like(minilm: Tokenizer) -> Tokenizer:
    """MiniLM's tokenizer with mpnet's kind of added token: "<unk>", special and normalized (always available)."""
    return with_added_tokens(minilm, [], [AddedToken("<unk>", normalized=True)])


# ----------------------------------------------------------------------------------------------- odd whitespace
_ODD_WHITESPACE = ["0\x0c0", "hello\x1cworld", "x\x85y", "10\x0b000", "the\x1fcat", "a\x1db\x1ec", "\x0c",
                   "a\u3000b\xa0c\u2028d e\tf\ng\rh", "cat\x0c dog \x85"]


@pytest.mark.parametrize("token", ["a", "b", "A", "\u00e1", AddedToken("a", normalized=False)])
def test_an_added_letter_does_not_hide_whitespace_that_bert_deletes(minilm, token):
    """Python splits on these characters, BERT deletes them: the texts holding one must go to the tokenizer whole.
    The added token "a" gave "a\x0cb" and "a b" the same ids, so the form feed was taken for a space."""
    tokenizer = with_added_tokens(minilm, [token])
    encoder = TextEncoder(tokenizer)
    assert ours(encoder, _ODD_WHITESPACE) == reference_ids(tokenizer, _ODD_WHITESPACE)
    assert ours(encoder, _ODD_WHITESPACE, 1) == reference_ids(tokenizer, _ODD_WHITESPACE, 1)


def test_an_added_letter_does_not_hide_whitespace_that_bert_deletes_mpnet(mpnet):
    tokenizer = with_added_tokens(mpnet, ["\u00e1"])
    assert ours(TextEncoder(tokenizer), _ODD_WHITESPACE) == reference_ids(tokenizer, _ODD_WHITESPACE)


# ----------------------------------------------------------------------------------------------- normalized tokens
_HUGE = [
    ("word " + "\U0001F600" * 1_000_000 + " tail words", "word " + "\U0001F600" * 2000 + " tail words"),
    ('{"key":"' + "abcdefghijklmnop" * 100_000 + '"}', '{"key":"' + "abcdefghijklmnop" * 200 + '"}'),
    ("word " + "\U00020000" * 1_000_000 + " tail words", "word \U00020000 tail words"),
    ("\U00020000x" * 500_000, "\U00020000x" * 2000),
]


@pytest.mark.parametrize("which", ["mpnet", "unk_like"])
def test_a_normalized_added_token_leaves_long_texts_shortened(minilm, request, which, monkeypatch):
    """mpnet's normalized "<unk>" switched off the shrinking of long runs and the cut before ideographs: each of these
    2 MB texts reached the Hugging Face tokenizer whole (2.4 to 7.7 s and up to 800 MB for 512 tokens). A normalized
    token bounded by ASCII punctuation cannot match inside a run nor across the space BERT puts before an ideograph."""
    tokenizer = request.getfixturevalue("mpnet") if which == "mpnet" else _unk_like(minilm)
    encoder = TextEncoder(tokenizer)
    lengths = record_lengths(monkeypatch, encoder)
    for text, short in _HUGE:
        lengths.clear()
        assert ours(encoder, [text], 64) == reference_ids(tokenizer, [short], 64), ascii(short[:20])
        assert max(lengths) < 20_000, ascii(short[:20])


def _normalized_token_tokenizers(minilm: Tokenizer) -> list[Tokenizer]:
    """MiniLM's tokenizer with normalized tokens that allow shrinking (bounded by punctuation, stripping or not) and
    one that does not (``single_word``), beside tokens matched before normalization."""
    return [
        with_added_tokens(minilm, ["<x>", "[\u00e9]", "<\U0001F600\U0001F600>", "<\u0301>", "(ab)",
                                   AddedToken("<l>", lstrip=True, rstrip=True), "<a\x01b>"],
                          [AddedToken("<unk>", normalized=True), AddedToken("<s>", normalized=False)]),
        with_added_tokens(minilm, [AddedToken("<sw>", single_word=True), "<unk>"]),
        with_added_tokens(minilm, [AddedToken("<\x01\x01>", normalized=False),
                                   AddedToken("[\u200b]", normalized=False, single_word=True)]),
    ]


@pytest.fixture(scope="module")
def normalized_encoders(minilm, request) -> list[tuple[Tokenizer, TextEncoder]]:
    tokenizers = _normalized_token_tokenizers(minilm)
    try:
        tokenizers.append(request.getfixturevalue("mpnet"))
    except pytest.skip.Exception:
        pass
    return [(tokenizer, TextEncoder(tokenizer)) for tokenizer in tokenizers]


_RUN = st.sampled_from(["\U0001F600", "\u00e9", "a\u0301", "\u0301", "\x01", "\u0130", "\u2e43", "a", "\ufffd",
                        "\U000E0041", "\u03a3", "\U0001F600\u200d", "\u00ad", "\u200b", "\x01\u200b", "\x01a",
                        "\x01\u0301", "\u034f", "\U0001D16D", "\U00020000", "\u9fa6", "\u4e00"])
_GLUE = st.sampled_from([" ", "<unk>", "<UNK>", "<\u00fcnk>", "<\x01unk>", "<un\u0301k>", "<x>", "[\u00c9]",
                         "[e\u0301]", "<\U0001F600\U0001F600>", "<\u0301>", "(AB)", " <l> ", "<a\x01b>", "<ab>",
                         "<sw>", "x<sw>", "\u2e43<sw>", "<s>", "[UNK]", "<mask>", ",", "\u2026", "\u65e5", "\u3002",
                         "<\x01\x01>", "[\u200b]", "a[\u200b]", "\U0001D16D\U0001D165"])
_PIECE = st.one_of(st.tuples(_RUN, st.sampled_from([1, 50, 101, 1024, 1025, 1500, 3000])).map(lambda p: p[0] * p[1]),
                   _GLUE)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(st.lists(_PIECE, max_size=8).map("".join), st.sampled_from([1, 3, 8, 512]), st.sampled_from(["", "\x01"]))
@example("a" * 2000 + "\u2e43\x01<sw>", 3, "")  # single_word: the run's last normalized character is "\u2e43"
@example("<" + "\x01" * 3000 + "\x01>", 1, "\x01")  # "<\x01\x01>" is only ever matched whole
@example("\x01" * 3000 + "a" * 200 + "\u200b" * 2000 + "[\u200b]", 2, "")
@example("\U00020000" * 50 + "<unk>" + "\U00020000" * 50 + "<l> \u65e5", 1, "\x01")
def test_shrinking_with_normalized_tokens_keeps_the_ids(normalized_encoders, text, max_length, pad):
    text = pad * 32 * max_length + text  # the interesting part right past the cut
    for tokenizer, encoder in normalized_encoders:
        assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length)


def test_a_huge_run_of_deleted_characters_is_shrunk(minilm, monkeypatch):
    """Characters that BERT's clean_text deletes (controls, U+200B, U+FFFD) normalize to nothing, so a run of them
    was never shrunk (no unknown token to keep): 2 MB of "\\x01" or of U+200B reached the tokenizer whole (up to
    1.3 s and 230 MB, for no token). clean_text is the normalizer's first step: shortening them changes nothing."""
    for tokenizer in (minilm, _unk_like(minilm)):
        encoder = TextEncoder(tokenizer)
        lengths = record_lengths(monkeypatch, encoder)
        for run in ("\x01", "\u200b", "\ufffd\x01", "a\u200b" * 60 + "\u200b" * 5000):
            lengths.clear()
            text = "word " + run * (2_000_000 // len(run)) + " tail words"
            short = "word " + run * max(2, 6000 // len(run)) + " tail words"
            assert ours(encoder, [text], 64) == reference_ids(tokenizer, [short], 64), ascii(run[:4])
            assert max(lengths) < 20_000, ascii(run[:4])


# ----------------------------------------------------------------------------------------------- unknown ideographs
_SEPARATED = ["\U00020000\u0301", "\u9fa6 ", "\u9fa6\n\u3000", "\U00020000\x01\u200b", "\u9fa6\u034f"]


@pytest.mark.parametrize("unit", _SEPARATED)
def test_unknown_ideographs_with_silent_characters_between_are_cut_to_one(minilm, unit, monkeypatch):
    """Unknown ideographs each followed by an accent (stripped), whitespace or deleted characters give no token, and
    were only cut to one when consecutive: 2 MB of U+20000 + U+0301 was cut, read no token, and cut again further
    on until the Hugging Face tokenizer read it whole (3 s, 416 MB); "\\u9fa6 " 0.65 s."""
    for tokenizer in (minilm, _unk_like(minilm)):
        encoder = TextEncoder(tokenizer)
        lengths = record_lengths(monkeypatch, encoder)
        text = "word " + unit * (2_000_000 // len(unit)) + " tail words"
        assert ours(encoder, [text], 3) == reference_ids(tokenizer, ["word " + unit * 3 + " tail words"], 3)
        assert max(lengths) < 20_000, ascii(unit)


def _ideograph_tokenizers(minilm: Tokenizer) -> list[Tokenizer]:
    """Tokenizers where what lies between ideographs matters: an added token made of deleted characters alone (it
    would match between two ideographs), cased ones that keep accents (not silent), a normalized "<unk>"."""
    import json

    cased = json.loads(minilm.to_str())
    cased["normalizer"].update(lowercase=False, strip_accents=False)
    deleted = with_added_tokens(minilm, [AddedToken("\x01\x01", normalized=False),
                                         AddedToken("\u0301 ", normalized=False)])
    return [deleted, Tokenizer.from_str(json.dumps(cased)), _unk_like(minilm)]


@pytest.fixture(scope="module")
def ideograph_encoders(minilm) -> list[tuple[Tokenizer, TextEncoder]]:
    return [(tokenizer, TextEncoder(tokenizer)) for tokenizer in _ideograph_tokenizers(minilm)]


_CJK = st.sampled_from(["\u65e5", "\U00020000", "\u9fa6" * 40, "\u9fa6", "\uf900", " ", "a", "\u3002", "<unk>",
                        "\x01", "\u0301", "\u200b", "\u034f", "\n", "\x01\x01", "\u0301 ", " \u0301", "\U0001D165",
                        "\u00ad", "\ufffd", "\x0c", "\U00020000\u0301" * 30, "\u9fa6 " * 20, "[MASK]", "\u3000"])


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_CJK, max_size=60).map("".join), st.integers(1, 4))
@example("\u9fa6\x01\x01\u9fa6 end", 1)  # "\x01\x01" is a token between the ideographs
@example("\u9fa6\u0301 \u9fa6 end", 1)
def test_cutting_separated_unknown_ideographs_keeps_the_ids(ideograph_encoders, text, max_length):
    text = "\u200b" * 32 * max_length + text  # the interesting part right past the cut
    for tokenizer, encoder in ideograph_encoders:
        assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length)


# Reproducers of the fuzz review of the change above: the ids at HEAD before the fix, against the reference.
_SINGLE_WORD_AFTER_A_RUN = [
    ("\ufa6e \U00020000<x>" + " z" * 15, 1),  # [30522] against [1026]: "<x>" matched after U+FA6E, not after U+20000
    ("\U00020000" + "\u200b" * 1200 + "\ufa6e<x> hello world", 2),
    ("\ufa6e\u3000" + "\U00020000" * 1500 + "<x>" + " hello" * 300, 4),
    ("\ufa6e\U00020000<x>" + " z" * 15, 1),
    ("\U00020000\ufa6e<x>" + " z" * 15, 1),
]


@pytest.mark.parametrize(("text", "max_length"), _SINGLE_WORD_AFTER_A_RUN,
                         ids=[f"case{i}" for i in range(len(_SINGLE_WORD_AFTER_A_RUN))])
def test_a_single_word_token_next_to_a_run_of_unknown_ideographs_keeps_its_ids(minilm, text, max_length):
    """A run of unknown ideographs was cut to its first, so a ``single_word`` added token right after the run saw
    another character before it: U+FA6E (unassigned, an ideograph to the normalizer, no letter) let "<x>" match where
    U+20000 (a letter) did not, and the other way round. A run keeps its first and last ideograph now."""
    tokenizer = with_added_tokens(minilm, [AddedToken("<x>", single_word=True, normalized=False)])
    assert ours(TextEncoder(tokenizer), [text], max_length) == reference_ids(tokenizer, [text], max_length)


def test_a_long_ordinary_text_is_not_scanned_for_ideographs_past_the_cut(minilm, monkeypatch):
    """With mpnet's kind of tokenizer, every text past the cut was scanned whole for ideographs (about 28 ms a MB):
    50 documents of 37 kB at max_length 8 took 0.05 s instead of 0.0005 s. Only the part the cut may keep is looked
    at; a text whose kept part gives too few tokens is collapsed before it is read further."""
    tokenizer = _unk_like(minilm)
    encoder = TextEncoder(tokenizer)
    scanned: list[int] = []
    few_unknown = encoder.long_text.collapse_unknown
    monkeypatch.setattr(encoder.long_text, "collapse_unknown",
                        lambda text: scanned.append(len(text)) or few_unknown(text))
    document = "the cat sat on the mat and looked at the river bank. " * 700 + "\U00020000" * 500
    assert ours(encoder, [document], 8) == reference_ids(tokenizer, [document], 8)
    assert scanned == []
    lengths = record_lengths(monkeypatch, encoder)
    spaces_first = " " * 30_000 + "\U00020000" * 1_000_000 + " tail words"  # the kept part: no token
    assert ours(encoder, [spaces_first], 3) == reference_ids(tokenizer, [" " * 30_000 + "\U00020000 tail words"], 3)
    assert scanned and max(lengths) < 100_000
