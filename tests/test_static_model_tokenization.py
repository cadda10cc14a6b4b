"""The fast tokenization path gives exactly the Hugging Face tokenizer's ids."""

from __future__ import annotations

import itertools

import numpy as np
from tokenizers import Tokenizer

from static_model.tokenization import TextEncoder, prepare_tokenizer, unknown_token_id

TRICKY = [
    "Hello, World! The CAT's mat (unbelievable) playing-cats.", "a\tb\nc\rd  e", "[MASK] the [cls] cat [SEP]x",
    "café Café CAFÉ e\u0301", "日本 cat", "\x00cat\x00dog", "cat\x0bdog\x0cmat\x1crun\x85fast", "a\xa0b\u3000c\u2028d",
    "zzz-qqq!!", "", " ", "x" * 150, "cat😀dog", "\u200bcat\u200d", "ABC123 1,000.50 $40", "lone \ud83d surrogate",
    # chunks split at ASCII punctuation in the cache: known words with new punctuation, long words, unknown pieces
    "cat, cat. (cat) cat's cat-dog e.g. x@y.com ... --- \"'\" '", "日本,cat;mat",
    "Ünïcödé—dash “quoted”, cat…", ",,,,", "cat,😀,dog",
]


def reference_ids(tokenizer: Tokenizer, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    plain = prepare_tokenizer(tokenizer)
    unk = unknown_token_id(plain)
    out = []
    for text in texts:
        safe = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        ids = [i for i in plain.encode(safe, add_special_tokens=False).ids if i != unk]
        out.append(ids[:max_length] if max_length else ids)
    return out


def ours(encoder: TextEncoder, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    ids, offsets = encoder.encode(texts, max_length)
    return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]


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


def test_every_corpus_line_matches_the_hugging_face_tokenizer(minilm_folder, corpus_lines):
    """Token ids identical to the Hugging Face tokenizer's on every line of corpus_general/sentences.txt."""
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
    from tokenizers import normalizers
    from tokenizers.models import WordPiece

    from conftest import make_wordpiece_tokenizer

    cased = make_wordpiece_tokenizer(["Hello", "hello", "World", "##s", "cat", "Cat", "CAT", "the", "The"], pad_to=None)
    cased.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    assert isinstance(cased.model, WordPiece)
    encoder = TextEncoder(cased)
    assert encoder.fast
    texts = ["Hello hello HELLO", "The cat, the Cat. CAT!", "Worlds worlds Héllo", "cat's Cats"] + TRICKY
    assert ours(encoder, texts) == reference_ids(cased, texts)
    assert ours(encoder, texts[::-1]) == reference_ids(cased, texts[::-1])  # served from the cache
