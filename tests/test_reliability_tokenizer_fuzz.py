"""Differential fuzz of StaticModel.tokenize / encode against the Hugging Face tokenizer itself (add_special_tokens
False, unknown token dropped, first max_length ids kept, rows averaged): Unicode classes the chunk path must get
right (NFKC/compatibility characters, combining marks, Turkish dotted/dotless i, final sigma, ligatures, zero-width
and bidi marks, every kind of whitespace, spelled-out special tokens, words at the 100-character WordPiece limit),
on the real MiniLM tokenizer and on small tokenizers of other kinds (byte-level BPE, Unigram, WordPiece cased or not,
with added tokens), for short texts and for long ones around the 32 x max_length character cut."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from helpers.tokenizers import record_lengths, reference_ids
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from static_model import StaticModel
from static_model.tokenization import TextEncoder

_ATOMS = [
    "e\u0301", "é", "É", "E\u0301", "İ", "ı", "I", "ß", "ẞ", "ﬁ", "ﬂ", "ﬆ", "Ａ", "ｂ", "１", "²", "½", "Ⅻ", "㎏",
    "ｶﾞ", "カ\u3099", "ǅ", "Ǆ", "ŉ", "ΐ", "Σ", "σ", "ς", "ΌΣΟΣ", "Ω", "Å", "K", "𝐀", "ⓐ", "ᴬ",
    "日", "本", "語", "กรุงเทพ", "、", "。",
    "\u200d", "\u200c", "\u200b", "\xad", "\ufeff", "\u200f", "\u200e", "\u202e", "\x01", "\x7f", "\x00", "\ud800",
    "👍🏽", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "\ufffd", "\u0301", "x\u0301\u0302",
    " ", "  ", "\xa0", "\u2003", "\u3000", "\t", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u180e",
    "\u202f", "\u1680",
    "a", "the", "Hello", "HELLO", "unbelievable", "İstanbul", "straße", "café", "naïve", "1", "2024", "3.14",
    "x" * 99, "x" * 100, "x" * 101, "é" * 50, "ab" * 50,
    "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[unk]", "[cls", "mask]", "##", "##ing",
    ",", ".", "!", "'", "-", "(", "—", "“", "…", "¿", "«", "＂", "ʼ", "$", "€", "#", "&", "_", "~", "`", "^", "|",
    "\\", "/", "<", ">", "=", "+", "*", "?", '"', "{", "[", "]",
]
_TEXT = st.one_of(st.lists(st.sampled_from(_ATOMS), max_size=25).map("".join), st.text(max_size=25))


def _check(model: StaticModel, tokenizer: Tokenizer, texts: list[str], max_length: int | None) -> None:
    """tokenize's ids equal the tokenizer's; encode's vectors are the mean of those ids' rows."""
    expected = reference_ids(tokenizer, texts, max_length)
    assert [ids.tolist() for ids in model.tokenize(texts, max_length=max_length)] == expected
    vectors = model.encode(texts, max_length=max_length, normalize=False)
    rows = model.embedding_matrix()
    for ids, vector in zip(expected, vectors):
        np.testing.assert_allclose(vector, rows[ids].mean(axis=0) if ids else 0.0, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def minilm(minilm_input_model) -> tuple[StaticModel, Tokenizer]:
    model = StaticModel(minilm_input_model.embeddings, minilm_input_model.tokenizer, max_length=None)
    return model, model.tokenizer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_TEXT, min_size=1, max_size=6), st.sampled_from([None, 1, 2, 512]), st.booleans())
def test_minilm_unicode_classes_match_the_tokenizer(minilm, texts, max_length, cold):
    """Cold and warm cache, the same texts in another order, and after other texts filled the cache."""
    model, tokenizer = minilm
    if cold:
        model.clear_cache()
    _check(model, tokenizer, texts, max_length)
    _check(model, tokenizer, texts[::-1], max_length)


# ----------------------------------------------------------------------------------------------- other tokenizers
_CORPUS = ["the cat sat on the mat", "hello world", "new york city", "café naïve straße İstanbul", "日本語の文章です",
           "unbelievable playing things", "a  b   c    d", "x" * 40, "    indented code",
           "def foo(bar):\n    return bar", "ΣΊΣΥΦΟΣ σίσυφος", "ﬁne ﬂow", "e.g. COVID-19 qu'il"] * 10
# no two with the same normalized form (which id the tokenizer then gives differs between Tokenizer objects)
_ADDED = ["catnip", "new york", "e.g.", "Naïve", AddedToken("FooBar", normalized=False),
          AddedToken("hello world", normalized=False), AddedToken("solo", single_word=True),
          AddedToken("lefty", lstrip=True, rstrip=True), "ß", "ﬁ", "İ", AddedToken("<tag>", normalized=False), "ab",
          "x1", AddedToken("İs", normalized=False), "σ", "日本", "a.b"]


# Llama 3's pre-tokenizer regex (Qwen's is alike): a Split step, then ByteLevel without its own regex
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
           r"\s+(?!\S)|\s+")


def _trained(kind: str) -> Tokenizer:
    if kind.startswith("bpe"):
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        if kind == "bpe_split_regex":
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(_LLAMA3), "isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind.startswith("unigram"):
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(split=kind != "unigram_one_piece")
        trainer = trainers.UnigramTrainer(vocab_size=150, special_tokens=["<unk>"], unk_token="<unk>",
                                          show_progress=False)
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase="cased" not in kind,
                                                          strip_accents=False if "keep" in kind else None)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=250, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[MASK]"],
                                           show_progress=False)
    tokenizer.train_from_iterator(_CORPUS, trainer)
    if kind.endswith("added"):
        tokenizer.add_tokens(_ADDED)
    return tokenizer


_KINDS = ["bpe", "bpe_added", "bpe_split_regex", "unigram", "unigram_one_piece", "unigram_added", "wp", "wp_cased",
          "wp_keep_accents", "wp_added", "wp_cased_added"]


@pytest.fixture(scope="module")
def small_models() -> dict[str, tuple[StaticModel, Tokenizer]]:
    out = {}
    for kind in _KINDS:
        tokenizer = _trained(kind)
        table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 4)).astype(np.float32)
        out[kind] = (StaticModel(table, tokenizer, max_length=None), tokenizer)
    return out


_EXTRA = ["catnip", "new york", "New  York", "e.g.", "NAÏVE", "FooBar", "foobar", "hello world", "solo", "solos",
          "lefty", " lefty ", "<tag>", "abc", "x1", "İs", "a.b", "def", "    ", "return"]
_SMALL_TEXT = st.one_of(st.lists(st.sampled_from(_ATOMS + _EXTRA), max_size=25).map("".join), st.text(max_size=25))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(_KINDS), st.lists(_SMALL_TEXT, min_size=1, max_size=5), st.sampled_from([None, 1, 2, 3]))
def test_small_tokenizers_of_every_kind_match(small_models, kind, texts, max_length):
    model, tokenizer = small_models[kind]
    _check(model, tokenizer, texts, max_length)
    _check(model, tokenizer, texts[::-1], max_length)


_RUN = st.sampled_from([" ", "  ", "\n", "\t", "☃", "\x01", "\u3000", "\xa0", ",", ".", "x", "ab", "日", "\u200b", "é",
                        "İ", "\x00", "[MASK]", "new york", "hello world", "FooBar", "    ", "the cat ", "👍🏽", "<tag>",
                        "\u0301", "\r\n", "\x85"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(_KINDS), st.lists(st.tuples(_RUN, st.integers(1, 140)), min_size=1, max_size=4),
       st.integers(1, 4))
def test_long_texts_around_the_cut_match(small_models, kind, runs, max_length):
    """Texts longer than 32 x max_length characters are cut before tokenizing: the first max_length ids stay."""
    model, tokenizer = small_models[kind]
    text = "".join(run * n for run, n in runs)
    _check(model, tokenizer, [text, text[: 32 * max_length], text[: 32 * max_length + 1]], max_length)


# ----------------------------------------------------------------------------------------------- found by the fuzz
def _one_piece_unigram() -> Tokenizer:
    """SentencePiece-style Unigram whose pre-tokenizer keeps the whole text one piece (``split=False``)."""
    vocab = [("<unk>", 0.0), ("▁", -2.0), ("▁▁", -3.0), ("▁▁▁▁", -3.0), ("a", -2.0), ("▁a", -1.0), ("b", -2.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(split=False)
    return tokenizer


def _long_space_bpe() -> Tokenizer:
    """Byte-level BPE with tokens for runs of 2 to 64 spaces (code models have such tokens)."""
    vocab = {"a": 0, "b": 1, "Ġb": 2}
    merges = [("Ġ", "b")]
    for k in range(7):
        vocab["Ġ" * (1 << k)] = len(vocab)
        if k:
            merges.append(("Ġ" * (1 << (k - 1)), "Ġ" * (1 << (k - 1))))
    tokenizer = Tokenizer(models.BPE(vocab, merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


def _collapsing_metaspace_unigram() -> Tokenizer:
    """Unigram + Metaspace whose normalizer folds runs of spaces into one, as SentencePiece's nmt normalizer does."""
    vocab = [("<unk>", 0.0), ("▁", -3.0), ("▁a", -1.0), ("▁b", -1.0), ("a", -4.0), ("b", -4.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0))
    tokenizer.normalizer = normalizers.Replace(Regex(" +"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    return tokenizer


@pytest.mark.parametrize(("make", "text", "max_length"), [
    # the cut text (128 spaces) is all "▁▁▁▁"; the whole text's best segmentation puts a "▁" fourth
    (_one_piece_unigram, " " * 129, 4),
    # cut inside the run of spaces: "a" + 63 spaces gives 32 + 16 + ... spaces; the whole run starts with 64
    (_long_space_bpe, "a" + " " * 200 + "b", 2),
    # cut inside the run: "a" + 63 spaces is normalized to "a ", which ends in a "▁" the whole text does not have
    (_collapsing_metaspace_unigram, "a" + " " * 200 + "b", 2),
], ids=["unigram-one-piece", "bpe-long-space-tokens", "metaspace-folding-spaces"])
def test_a_cut_keeps_the_first_ids_for_tokenizers_off_the_bert_path(make, text, max_length):
    """A long text used to be cut at the first space, tab or newline past 32 x max_length characters whatever the
    tokenizer: inside a run of spaces, or inside the one piece that Metaspace(split=False) makes of the whole text,
    the kept part's ids were not a prefix of the whole text's."""
    tokenizer = make()
    encoder = TextEncoder(tokenizer)
    ids, offsets = encoder.encode([text], max_length)
    assert ids[offsets[0] : offsets[1]].tolist() == reference_ids(tokenizer, [text], max_length)[0]


def test_added_tokens_sharing_a_normalized_form_give_the_tokenizers_id():
    """"Hello" and "hello" added to an uncased model share the normalized form "hello": which id the tokenizer gives
    differs between Tokenizer objects loaded from the same JSON. The compiled WordPiece (ASCII chunks) always took
    the first, while the tokenizer object (other chunks, whole texts) might take the other: "Hello" and "éHello"
    got different ids for "hello" from one model."""
    base = _trained("wp")
    base.add_tokens(["Hello", "hello", "Catnip", "catnip"])
    texts = ["Hello catnip", "éHello éCatnip", "HELLO, CATNIP!", "\x01hello\x01 catnip"]
    for _ in range(16):  # each encoder's tokenizer is a new Tokenizer object: either id, about half the time each
        encoder = TextEncoder(base)
        ids, offsets = encoder.encode(texts, None)
        unk = encoder.tokenizer.token_to_id("[UNK]")
        expected = [[i for i in e.ids if i != unk]  # this very object (reference_ids would load a new one)
                    for e in encoder.tokenizer.encode_batch(texts, add_special_tokens=False)]
        assert [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))] == expected


@pytest.mark.parametrize("kind", ["bpe", "bpe_split_regex", "unigram", "wp_cased"])
def test_long_texts_of_other_tokenizers_are_still_cut(small_models, kind, monkeypatch):
    """Tokenizers whose pre-tokenizer starts a piece at a space (known kinds; a Split regex as Llama 3's, asked with
    probes) still have a long text cut (not tokenized whole) for its first max_length ids."""
    tokenizer = small_models[kind][1]
    encoder = TextEncoder(tokenizer)
    lengths = record_lengths(monkeypatch, encoder)
    text = "the cat sat on the mat, hello world! " * 2000
    ids, offsets = encoder.encode([text], 8)
    assert ids[offsets[0] : offsets[1]].tolist() == reference_ids(tokenizer, [text[:2000]], 8)[0]
    assert max(lengths) < 32 * 8 + 40


@functools.cache
def _first_prefix_byte_level_bpe() -> Tokenizer:
    """A byte-level BPE as distill writes one for a teacher whose ByteLevel has ``add_prefix_space``, with an added
    word: a Metaspace that only puts " " before the text's start ("first"), then ByteLevel without the prefix."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=" ", prepend_scheme="first", split=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_CORPUS, trainer)
    tokenizer.add_tokens([AddedToken("catnip", single_word=True, normalized=True, lstrip=True)])
    return tokenizer


def test_a_first_prefix_byte_level_bpe_is_cut_at_newlines_like_its_teacher(monkeypatch):
    """The prefix-only Metaspace step changes nothing a cut depends on: a long text is cut before any whitespace run
    (a newline too), as for the plain ByteLevel teacher, not only before spaces (a text of lines without spaces was
    tokenized whole), and the first max_length ids are the tokenizer's."""
    from static_model.long_text import non_bert_cut_pattern

    tokenizer = _first_prefix_byte_level_bpe()
    encoder = TextEncoder(tokenizer)
    teacher = Tokenizer(models.BPE())
    teacher.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    plain = non_bert_cut_pattern({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True}}, teacher)
    cut_at = encoder.long_text.cut_pattern
    assert cut_at is not None and plain is not None and cut_at.pattern == plain.pattern
    lengths = record_lengths(monkeypatch, encoder)
    for text in ("catnip,\nthe-cat\n" * 2000, "hello\tworld\ncatnip.\n" * 2000):
        lengths.clear()
        ids, offsets = encoder.encode([text], 8)
        assert ids[offsets[0] : offsets[1]].tolist() == reference_ids(tokenizer, [text], 8)[0]
        assert max(lengths) < 32 * 8 + 40


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(_RUN | st.sampled_from(["catnip", " catnip", "catnip.", ", "]), st.integers(1, 140)),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 4),
)
def test_a_first_prefix_byte_level_bpe_matches_around_the_cut(runs, max_length):
    tokenizer = _first_prefix_byte_level_bpe()
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 4)).astype(np.float32)
    model = StaticModel(table, tokenizer, max_length=None)
    text = "".join(run * n for run, n in runs)
    _check(model, tokenizer, [text, text[: 32 * max_length], text[: 32 * max_length + 1]], max_length)
