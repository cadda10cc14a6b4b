"""A tiny BERT-style WordPiece tokenizer built in memory."""

from __future__ import annotations

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from static_model.tokenization import TextEncoder, prepare_tokenizer, unknown_token_id

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "a", "cat", "dog", "sat", "on", "mat", "runs", "fast", "slow", "bank", "river", "money", "tax", "law",
    "un", "##believ", "##able", "play", "##ing", "##s", "##ed", ".", ",", "!", "?", "'", "-", "(", ")", "[", "]",
    "hello", "world", "caf", "##e", "é", "日", "本", "😀", "1", "2", "3", "##0",
]


SENTENCE_WORDS = ["the", "cat", "dog", "sat", "on", "mat", "runs", "fast", "slow", "bank", "river", "money", "tax",
                  "law", "hello", "world"]


def random_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` texts of 0 to 11 words of ``SENTENCE_WORDS`` (all known to the tiny tokenizer), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(SENTENCE_WORDS, size=rng.integers(0, 12))) for _ in range(n)]


def make_wordpiece_tokenizer(words: list[str] = WORDS, *, pad_to: int | None = 16) -> Tokenizer:
    """A BERT-style uncased WordPiece tokenizer; padded and truncating like all-MiniLM-L6-v2's tokenizer.json."""
    vocab = {token: i for i, token in enumerate(SPECIAL + words)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.add_special_tokens(SPECIAL)
    if pad_to:
        tokenizer.enable_padding(length=pad_to, pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(max_length=pad_to)
    return tokenizer


# Texts that stress the fast tokenization path.
TRICKY = [
    "Hello, World! The CAT's mat (unbelievable) playing-cats.", "a\tb\nc\rd  e", "[MASK] the [cls] cat [SEP]x",
    "café Café CAFÉ e\u0301", "日本 cat", "\x00cat\x00dog", "cat\x0bdog\x0cmat\x1crun\x85fast", "a\xa0b\u3000c\u2028d",
    "zzz-qqq!!", "", " ", "x" * 150, "cat😀dog", "\u200bcat\u200d", "ABC123 1,000.50 $40", "lone \ud83d surrogate",
    # chunks split at ASCII punctuation in the cache: known words with new punctuation, long words, unknown pieces
    "cat, cat. (cat) cat's cat-dog e.g. x@y.com ... --- \"'\" '", "日本,cat;mat",
    "Ünïcödé—dash “quoted”, cat…", ",,,,", "cat,😀,dog",
]


def reference_ids(tokenizer: Tokenizer, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    """The Hugging Face tokenizer's ids of ``texts`` without specials and unknowns: what the fast path must give."""
    plain = prepare_tokenizer(tokenizer)
    unk = unknown_token_id(plain)
    out = []
    for text in texts:
        safe = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        ids = [i for i in plain.encode(safe, add_special_tokens=False).ids if i != unk]
        out.append(ids[:max_length] if max_length else ids)
    return out


def ours(encoder: TextEncoder, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    """The runtime's ids of each of ``texts`` (what ``reference_ids`` gives for the Hugging Face tokenizer)."""
    ids, offsets = encoder.encode(texts, max_length)
    return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(texts))]


def with_added_tokens(tokenizer: Tokenizer, words: list, specials: list | None = None) -> Tokenizer:
    """A copy of ``tokenizer`` with ``words`` added (``add_tokens``) and ``specials`` (``add_special_tokens``)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.add_tokens(words)
    if specials:
        copy.add_special_tokens(specials)
    return copy


def record_lengths(monkeypatch, encoder: TextEncoder) -> list[int]:
    """The length of every text ``encoder._encode_parts`` is given from now on: what reaches the tokenizer."""
    lengths: list[int] = []
    encode_parts = encoder._encode_parts

    def record(texts, limit):
        lengths.extend(map(len, texts))
        return encode_parts(texts, limit)

    monkeypatch.setattr(encoder, "_encode_parts", record)
    return lengths
