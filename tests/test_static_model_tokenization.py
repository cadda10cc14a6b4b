"""The fast tokenization path gives exactly the Hugging Face tokenizer's ids."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers.tokenizers import TRICKY, ours, record_lengths, reference_ids, with_added_tokens
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from static_model.tokenization import TextEncoder, prepare_tokenizer, unknown_token_id


def test_tiny_tokenizer_tricky_texts(wordpiece_tokenizer):
    encoder = TextEncoder(wordpiece_tokenizer)
    assert encoder.fast
    assert ours(encoder, TRICKY) == reference_ids(wordpiece_tokenizer, TRICKY)
    assert ours(encoder, TRICKY, 3) == reference_ids(wordpiece_tokenizer, TRICKY, 3)
    # A second pass is served from the chunk cache and must not change anything.
    assert ours(encoder, TRICKY[::-1]) == reference_ids(wordpiece_tokenizer, TRICKY[::-1])


def test_real_tokenizer_tricky_texts(minilm_folder):
    tokenizer = Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))
    encoder = TextEncoder(tokenizer)
    assert ours(encoder, TRICKY) == reference_ids(tokenizer, TRICKY)
    # words of 99 and 101 characters around punctuation (WordPiece gives up on words over 100 characters)
    long_words = ["a" * 99 + "," + "b" * 101 + ".", "b" * 101 + ",x", "(" + "c" * 100 + ")"]
    assert ours(encoder, long_words) == reference_ids(tokenizer, long_words)


@pytest.mark.parametrize("step", [pytest.param(1, marks=pytest.mark.slow, id="every-line"),
                                  pytest.param(25, id="every-25th-line")])
def test_every_corpus_line_matches_the_hugging_face_tokenizer(minilm_folder, corpus_lines, step):
    """Token ids identical to the Hugging Face tokenizer's on corpus_general/sentences.txt: every 25th line always
    (23k lines, seconds), all 573k lines with --run-slow (about a minute on a quiet machine)."""
    corpus_lines = corpus_lines[::step]
    tokenizer = Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))
    plain = prepare_tokenizer(tokenizer)
    unk = unknown_token_id(plain)
    ids, offsets = TextEncoder(tokenizer).encode(corpus_lines, None)

    expected = [e.ids for e in plain.encode_batch_fast(corpus_lines, add_special_tokens=False)]
    flat = np.fromiter(itertools.chain.from_iterable(expected), dtype=np.int32)
    bounds = np.concatenate([[0], np.cumsum(np.fromiter(map(len, expected), dtype=np.int64))])
    kept = np.concatenate([[0], np.cumsum(flat != unk)])
    np.testing.assert_array_equal(offsets, kept[bounds], err_msg="token counts differ")
    np.testing.assert_array_equal(ids, flat[flat != unk], err_msg="token ids differ")


def test_non_bert_tokenizers_use_the_tokenizer_itself():
    from tokenizers import models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE({"a": 0, "b": 1, "ab": 2, "<unk>": 3}, [("a", "b")], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    encoder = TextEncoder(tokenizer)
    assert not encoder.fast
    assert ours(encoder, ["ab a b", "abc"]) == [[2, 0, 1], [2]]


def test_cased_bert_tokenizer_keeps_case_on_the_fast_path():
    from helpers.tokenizers import make_wordpiece_tokenizer
    from tokenizers import normalizers
    from tokenizers.models import WordPiece

    cased = make_wordpiece_tokenizer(["Hello", "hello", "World", "##s", "cat", "Cat", "CAT", "the", "The"], pad_to=None)
    cased.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    assert isinstance(cased.model, WordPiece)
    encoder = TextEncoder(cased)
    assert encoder.fast
    texts = ["Hello hello HELLO", "The cat, the Cat. CAT!", "Worlds worlds Héllo", "cat's Cats"] + TRICKY
    assert ours(encoder, texts) == reference_ids(cased, texts)
    assert ours(encoder, texts[::-1]) == reference_ids(cased, texts[::-1])  # served from the cache


# ----------------------------------------------------------------------------------------------- long texts
@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_folder) -> Tokenizer:
    return Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def minilm_encoder(minilm_tokenizer) -> TextEncoder:
    return TextEncoder(minilm_tokenizer)


def test_long_runs_before_the_words_do_not_hide_them(minilm_tokenizer, minilm_encoder):
    """The character cut never drops a token the Hugging Face tokenizer keeps within max_length."""
    texts = ["\n" * 9000 + "hello world", " " * 9000 + "hello world", "☃ " * 4100 + "hello world",
             "\x01" * 20000 + " hello", "a " * 8000 + "tail", "x" * 20000 + " hello"]
    got = ours(minilm_encoder, texts, 512)
    assert got == reference_ids(minilm_tokenizer, texts, 512)
    assert all(got[:5])


_RUN = st.sampled_from([" ", "\n", "\t", "☃", "☃ ", "\x01", "\u3000", "\xa0", "\ufffd", ",",
                        "zzzzzzzzzzzzzzzzzzzzzzzzzz"])
_WORD = st.sampled_from(["hello", "world", "cat", "Dog,", "naïve", "日本", "unbelievable", "x@y.z", "[MASK]"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_RUN, st.integers(0, 300), st.lists(_WORD, max_size=4)), min_size=1, max_size=6),
       st.integers(1, 6))
def test_cut_keeps_the_first_max_length_ids(minilm_tokenizer, minilm_encoder, pieces, max_length):
    text = "".join(run * n + " " + " ".join(words) + " " for run, n, words in pieces)
    assert ours(minilm_encoder, [text], max_length) == reference_ids(minilm_tokenizer, [text], max_length)


# ----------------------------------------------------------------------------------------------- fuzz
_ASCII_SOUP = st.lists(st.sampled_from(list("abcdeXYZ019 ,.-'!#\x01\x7f\t\n") + ["ing", "un", "##", "a" * 60]),
                       max_size=40).map("".join)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text(max_size=40), _ASCII_SOUP), min_size=1, max_size=8))
def test_random_text_matches_the_hugging_face_tokenizer(minilm_tokenizer, minilm_encoder, texts):
    """Random Unicode and ASCII soup (letters, digits, punctuation, control characters, long words): the compiled
    WordPiece, the chunk cache and the fallbacks give exactly the Hugging Face ids, from a cold cache (new chunks
    go through the chunk tokenizer) and from a warm one."""
    minilm_encoder.clear_cache()
    expected = reference_ids(minilm_tokenizer, texts)
    assert ours(minilm_encoder, texts) == expected
    assert ours(minilm_encoder, texts) == expected


def test_long_ascii_words_and_cased_models_match(minilm_tokenizer):
    words = ["a" * 100, "a" * 101, "supercalifragilisticexpialidocious" * 3, "x1" * 50 + "!", "Ab" * 51]
    assert ours(TextEncoder(minilm_tokenizer), words) == reference_ids(minilm_tokenizer, words)


# ----------------------------------------------------------------------------------------------- added tokens
def test_added_tokens_give_the_hugging_face_ids(minilm_tokenizer, corpus_lines):
    from tokenizers import AddedToken

    words = ["catnip", "ing", "zorblax", "e.g.", "Naïve", "new york", "COVID-19", "qu'il",
             AddedToken("FooBar", normalized=False), AddedToken("solo", single_word=True),
             AddedToken("lefty", lstrip=True, rstrip=True)]
    tokenizer = with_added_tokens(minilm_tokenizer, words, ["<extra>"])
    encoder = TextEncoder(tokenizer)
    texts = TRICKY + corpus_lines[:2000] + [
        "I love catnip and singing; e.g. Zorblax or NEW YORK or New  York", "foobar FooBar FOOBAR", "solo solos",
        "  lefty  ", "naive naïve NAÏVE", "covid-19 COVID-19x", "<extra>x", "qu'il", "ing" * 5]
    assert ours(encoder, texts) == reference_ids(tokenizer, texts)
    assert ours(encoder, texts[::-1]) == reference_ids(tokenizer, texts[::-1])  # from the cache


def test_thirty_thousand_added_words(minilm_tokenizer, corpus_lines):
    """Many added words (as `tokenizer.add_tokens` makes them): ids still exact, and texts take the chunk path."""
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    words = sorted({"".join(rng.choice(letters, rng.integers(4, 12))) for _ in range(30_000)})
    tokenizer = with_added_tokens(minilm_tokenizer, words + ["shipping", "weather", "an", "tion", "re"])
    encoder = TextEncoder(tokenizer)
    texts = corpus_lines[:3000]
    assert ours(encoder, texts) == reference_ids(tokenizer, texts)
    encoder.clear_cache()
    for text in texts[:100]:  # one text a call: the chunk path looks up each whitespace chunk of it in the cache
        encoder.encode([text], None)
    info = encoder.cache_info()
    assert info.hits + info.misses == sum(len(t.split()) for t in texts[:100])  # no text went to the tokenizer whole


@pytest.fixture(scope="module")
def overlapping_added(minilm_tokenizer) -> tuple[Tokenizer, TextEncoder]:
    tokenizer = with_added_tokens(minilm_tokenizer, ["ab", "abc", "bcd", "c", "de", "x1", "##", "-", "an", "tion"])
    return tokenizer, TextEncoder(tokenizer)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ASCII_SOUP, min_size=1, max_size=6))
def test_overlapping_added_words_split_like_the_tokenizer(overlapping_added, texts):
    """Added words matched anywhere inside words, overlapping each other: leftmost-longest, as the tokenizer does."""
    tokenizer, encoder = overlapping_added
    encoder.clear_cache()
    assert ours(encoder, texts) == reference_ids(tokenizer, texts)


def test_a_nul_character_sends_only_its_own_text_to_the_tokenizer(wordpiece_tokenizer, monkeypatch):
    """NUL separates texts inside a batch; a text holding one is tokenized whole, and only that text (every text of
    its batch went along, about 3x slower per batch)."""
    encoder = TextEncoder(wordpiece_tokenizer)
    slow_texts = []
    encode_slow = encoder._encode_slow

    def record(texts, limit):
        slow_texts.extend(texts)
        return encode_slow(texts, limit)

    monkeypatch.setattr(encoder, "_encode_slow", record)
    texts = ["the cat", "a\x00dog", "the mat", "fast", "[MASK] river"]
    assert ours(encoder, texts) == reference_ids(wordpiece_tokenizer, texts)
    assert sorted(slow_texts) == ["[MASK] river", "a\x00dog"]


def test_an_added_token_with_a_space_is_found_after_normalization(minilm_tokenizer):
    """"new york" (added, normalized) matches wherever BERT's normalizer makes that text: upper case in a text that is
    not plain ASCII, accents, deleted control characters. Those texts took the chunk path: "new", "york"."""
    tokenizer = with_added_tokens(minilm_tokenizer, ["new york"])
    encoder = TextEncoder(tokenizer)
    texts = ["“America/New York”", "NÉW YORK", "new\x01 york", "in New York", "new  york", "Zürich, not New York"]
    assert ours(encoder, texts) == reference_ids(tokenizer, texts)
    assert [tokenizer.token_to_id("new york") in ids for ids in ours(encoder, texts)] == [True] * 4 + [False, True]


_CJK = st.sampled_from(["日", "本", "語", "文", "章", "の", "です", "。", "、", "a", "Dog", " ", "\u0301", "\u4e00",
                        "\U00020001", "\uf900", "[MASK]", "\x01", "ー", "！", "x" * 30])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_CJK, max_size=400).map("".join), st.integers(1, 6))
def test_a_cut_before_an_ideograph_keeps_the_first_max_length_ids(minilm_tokenizer, minilm_encoder, text,
                                                                  max_length):
    assert ours(minilm_encoder, [text], max_length) == reference_ids(minilm_tokenizer, [text], max_length)


_BLOB = st.sampled_from(["abc", "+", "/", "=", "[MASK]", "]", "[", "?b=c&d", "##", "-", "ü", "\u0301", "x" * 30,
                         "日", "http://x.org/", "Q2F0", "...", "'s", "ab", "bcd", "tion", "x1", "\u2026", "\u3002",
                         "\u00a1", "\u3000", "\u00a0", "\u2029", "\u2e43", "\u037e", "\u0301\u2026"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_BLOB, max_size=300).map("".join), st.integers(1, 6))
def test_a_cut_before_punctuation_keeps_the_first_max_length_ids(minilm_tokenizer, minilm_encoder, overlapping_added,
                                                                 text, max_length):
    """Text without whitespace (a base64 blob, a URL) is cut before punctuation; never inside an added token: "]"
    ends [MASK], "#" is inside the added "##", so neither is a cut point."""
    assert ours(minilm_encoder, [text], max_length) == reference_ids(minilm_tokenizer, [text], max_length)
    tokenizer, encoder = overlapping_added
    assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length)


def test_a_huge_blob_is_cut_at_punctuation_not_tokenized_whole(minilm_tokenizer, minilm_encoder, monkeypatch):
    """A 4 MB base64 blob (a data: URI in scraped HTML) was tokenized whole for its first 64 tokens (1.4 s)."""
    import base64

    blob = base64.b64encode(np.random.default_rng(0).bytes(3_000_000)).decode()
    lengths = record_lengths(monkeypatch, minilm_encoder)
    assert ours(minilm_encoder, [blob], 64) == reference_ids(minilm_tokenizer, [blob[:20_000]], 64)
    assert max(lengths) < 3_000  # cut at the first "+" or "/" past 32 characters a token: 2,048, not 4,000,000


def test_a_huge_run_of_unicode_punctuation_is_cut_not_tokenized_whole(minilm_tokenizer, minilm_encoder, monkeypatch):
    """Unicode punctuation and spaces that BERT splits off are cut points as ASCII ones are: 2 MB of "\u2026" was
    tokenized whole (4.2 s, 1.1 GB peak) for its first 512 tokens. "\u2e43" (Unicode 14) is not split by the
    tokenizer: never a cut point."""
    lengths = record_lengths(monkeypatch, minilm_encoder)
    for mark in ("\u2026", "\u3002", "\u00a1x", "x\u3000"):
        lengths.clear()
        text = "word " + mark * (1_000_000 // len(mark))
        assert ours(minilm_encoder, [text], 64) == reference_ids(minilm_tokenizer, [text[:20_000]], 64)
        assert max(lengths) <= 32 * 64 + 1, mark
    cut_at = minilm_encoder.long_text.cut_pattern
    assert cut_at is not None and "\u2e43" not in cut_at.pattern and "\u2026" in cut_at.pattern


def test_a_huge_text_without_spaces_is_cut_too(minilm_tokenizer, monkeypatch):
    """Chinese or Japanese text has no whitespace to cut at: it was tokenized whole (2 million characters: 6 s and
    about 1 GB, for 512 tokens); it is cut before an ideograph, unless an added token could match across that cut."""
    text = "日本語の文章です。" * 20_000
    for tokenizer, cut in ((minilm_tokenizer, True), (with_added_tokens(minilm_tokenizer, ["本語"]), False)):
        encoder = TextEncoder(tokenizer)
        lengths = record_lengths(monkeypatch, encoder)
        head = text[:20_000]  # the reference: the Hugging Face tokenizer on the whole text would take seconds
        assert ours(encoder, [text], 64) == reference_ids(tokenizer, [head], 64)
        assert (max(lengths) <= 32 * 64 + 1) == cut


# A text longer than 32 x max_length characters is cut at whitespace; an added token holding a space ("new york")
# across that cut was read as its first word ("new"), so the first max_length ids differed from the tokenizer's.
_SPACED = st.sampled_from(["new york", "New  York", "NEW\tYORK", "the", "cat", "new", "york", "qqqqqqqqqqqqq", " ",
                           "日本", "\x01" * 7, "hello world", "hello  world"])


def _spaced_tokenizers(minilm_tokenizer: Tokenizer) -> list[Tokenizer]:
    """MiniLM's tokenizer (BERT: the chunk path) and a WordLevel one (the tokenizer path), with added tokens that
    hold a space: normalized and matched before normalization."""
    from tokenizers import AddedToken, models, pre_tokenizers

    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(
        ["[UNK]", "the", "cat", "new", "york", "hello", "world", "qqqqqqqqqqqqq"])}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    return [with_added_tokens(base, ["new york", AddedToken("hello world", normalized=False)])
            for base in (minilm_tokenizer, word_level)]


@pytest.fixture(scope="module")
def spaced_encoders(minilm_tokenizer) -> list[tuple[Tokenizer, TextEncoder]]:
    return [(tokenizer, TextEncoder(tokenizer)) for tokenizer in _spaced_tokenizers(minilm_tokenizer)]


@pytest.mark.parametrize("token", ["new york", "hello world"])
def test_a_cut_never_splits_an_added_token_that_holds_a_space(spaced_encoders, token):
    for tokenizer, encoder in spaced_encoders:
        for max_length in (1, 2, 3, 4):
            for filler in range(16 * max_length, 40 * max_length):  # the cut lands before, inside and after it
                text = "\x01" * filler + f" the cat {token} the cat"  # no ids before "the" (deleted or unknown)
                assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length), (
                    tokenizer.model, max_length, filler)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 160), st.lists(_SPACED, max_size=10), st.integers(1, 4))
def test_cut_texts_with_spaced_added_tokens_keep_the_first_max_length_ids(spaced_encoders, filler, words, max_length):
    text = "\x01" * filler + " " + " ".join(words)  # few ids before the cut at 32 x max_length characters
    for tokenizer, encoder in spaced_encoders:
        assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length)


def _unigram(vocab: list[tuple[str, float]]) -> Tokenizer:
    from tokenizers import models, pre_tokenizers

    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    return tokenizer


_PIECES = [("<unk>", 0.0), ("▁", -1.0), ("a", -1.0), ("b", -1.0), ("ab", -1.0), ("▁ab", -0.1), ("▁b", -2.0)]


def test_a_unigram_piece_listed_twice_is_refused_naming_the_piece():
    """The tokenizers library loads a Unigram vocabulary that lists a piece twice without a word and reads the piece
    as its last entry alone (its id and its score): the row of the other id is never used and the segmentation is not
    the one the first entry's score gives ('ab' was '▁' 'ab' with the score -50 listed last, '▁ab' with it first).
    A static model would give its texts other vectors than the file says, silently: it is refused."""
    from static_model import StaticModel
    from static_model.tokenization import repeated_unigram_piece

    tokenizer = _unigram([*_PIECES, ("▁ab", -50.0)])
    assert tokenizer.encode("ab").tokens == ["▁", "ab"]  # the last entry's score, and the last id
    table = np.ones((len(_PIECES) + 1, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"the tokenizer \(its tokenizer.json\): .*piece '▁ab' twice, as ids 5 and 7"):
        StaticModel(table, tokenizer)
    with pytest.raises(ValueError, match="'▁ab' twice"):
        TextEncoder(tokenizer)
    assert repeated_unigram_piece({"model": {"type": "Unigram", "vocab": [list(p) for p in _PIECES]}}) is None
    TextEncoder(_unigram(_PIECES))  # each piece once: fine


def test_a_folder_whose_unigram_vocabulary_lists_a_piece_twice_is_refused_at_load(tmp_path):
    import json

    from static_model import StaticModel

    model = StaticModel(np.ones((len(_PIECES), 4), dtype=np.float32), _unigram(_PIECES))
    model.save_pretrained(tmp_path / "model")
    path = tmp_path / "model" / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    assert spec["model"]["vocab"][6][0] == "▁b"
    spec["model"]["vocab"][6][0] = "▁ab"  # same number of ids and rows: only the piece is listed twice
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ValueError, match=r"model/tokenizer\.json: its Unigram.*piece '▁ab' twice, as ids 5 and 6"):
        StaticModel.from_pretrained(tmp_path / "model")


# ----------------------------------------------------------------------------------------------- long runs
# A run of word characters (no whitespace, no punctuation, no ideograph) longer than WordPiece's 100 characters is one
# [UNK] whatever its length: 2 MB of "\U0001F600" without a cut point was tokenized whole (1.9 s, 557 MB peak) for a
# text of no token. Runs past 1,024 characters are shrunk first, which must never change an id.
def _run_tokenizers(minilm_tokenizer: Tokenizer) -> list[Tokenizer]:
    """MiniLM's tokenizer as it is; with added words (normalized: runs are never shrunk); with tokens matched before
    normalization whose ends are punctuation (runs are shrunk), and one whose ends are word characters (not)."""
    from tokenizers import AddedToken

    return [minilm_tokenizer, with_added_tokens(minilm_tokenizer, ["qqqq", "éé"]),
            with_added_tokens(minilm_tokenizer, [AddedToken("<😀😀>", normalized=False),
                                                 AddedToken("[é]", normalized=False, single_word=True)]),
            with_added_tokens(minilm_tokenizer, [AddedToken("😀😀x", normalized=False)])]


@pytest.fixture(scope="module")
def run_encoders(minilm_tokenizer) -> list[tuple[Tokenizer, TextEncoder]]:
    return [(tokenizer, TextEncoder(tokenizer)) for tokenizer in _run_tokenizers(minilm_tokenizer)]


_RUN_CHARS = st.sampled_from(["\U0001F600", "\u00e9", "a", "\u0301", "a\u0301", "\u00c9", "\u0130", "\U0001d173",
                              "\U0001039f", "\ufffd", "\u03a3", "\U0001F600\u200d", "\x01", "\x85", "\u00ad",
                              "\U0001F600\u2e43", "\u00e9\u3002"])
_RUN_GLUE = st.sampled_from([" ", "x", "[MASK]", "\u2026", "e\u0301", "\u00c9", "\u0130", "\x01", "日", "##", "ab",
                             "qqqq", "éé", "<😀😀>", "[é]", "😀😀x", "\u2e43", "\U0002b820", "é\x01é"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.tuples(_RUN_CHARS, st.integers(1, 6000)).map(lambda p: p[0] * p[1]), _RUN_GLUE),
                max_size=8).map("".join),
       st.one_of(st.none(), st.integers(1, 6)))
@example("\u0301" * 6000 + "\u00e9" * 200 + " x", 1)  # the first 1,024 characters normalize to nothing
@example("\U0001F600" * 6000 + "\U0001039f" + "\u00e9" * 90 + " x", 1)  # U+1039F splits
@example("\U0001F600" * 6000 + "x[é]", 1)  # single_word: the run's last character stays
@example("\U0001F600" * 3000 + "😀😀x" + "\U0001F600" * 3000, 1)  # an added token of word characters inside
@example("\U0001F600" * 6000 + "é\x01é", 1)  # "éé" (normalized) is matched once the normalizer deletes "\x01"
def test_shrinking_long_runs_keeps_the_ids(run_encoders, text, max_length):
    for tokenizer, encoder in run_encoders:
        assert ours(encoder, [text], max_length) == reference_ids(tokenizer, [text], max_length)


def test_a_huge_run_of_one_word_character_is_shrunk_not_tokenized_whole(minilm_tokenizer, run_encoders, monkeypatch):
    """No text over a few thousand characters reaches the tokenizer, unless an added token might match inside or
    across a run (added words, normalized; a token that starts or ends with a word character)."""
    for (tokenizer, encoder), shrunk in zip(run_encoders, (True, False, True, False)):
        lengths = record_lengths(monkeypatch, encoder)
        for run in ("\U0001F600", "\u00e9", "a\u0301", "\u0130"):
            lengths.clear()
            text = "word " + run * (1_000_000 // len(run)) + " tail words"
            short = "word " + run * 2000 + " tail words"  # the reference on the whole text would take seconds
            assert ours(encoder, [text], 64) == reference_ids(tokenizer, [short], 64), run
            assert (max(lengths) < 3_000) == shrunk, run
        # no token before the run: cut again further on (``_encode_further``), each time from the original text
        lengths.clear()
        text = "\x01" * 40 + " " + "\U0001F600" * 1_000_000 + " tail words"
        assert ours(encoder, [text], 1) == reference_ids(tokenizer, ["tail"], 1)
        assert (max(lengths) < 3_000) == shrunk and len(lengths) > 1


def test_a_run_is_split_at_a_character_the_tokenizer_splits_on(minilm_encoder):
    """Word characters are found with Python's Unicode tables (all of plane 1, coarsely) and checked with the
    tokenizer: U+1039F (a word divider) splits, so the run is shrunk on each side of it, not across it."""
    emoji, shrink = "\U0001F600", minilm_encoder.long_text.shrink
    assert shrink(emoji * 3000 + "\U0001039f" + emoji * 3000) == (
        emoji * 1025 + "\U0001039f" + emoji * 1025)
    assert shrink("\u0301" * 5000) == "\u0301" * 5000  # normalizes to nothing: no [UNK] to keep
    assert shrink("\u0301" * 5000 + "\u00e9" * 200) == "\u0301" * 5000 + "\u00e9" * 200
    assert shrink("a" * 1025 + " ") == "a" * 1025 + " "
