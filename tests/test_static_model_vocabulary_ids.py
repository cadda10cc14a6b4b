"""A tokenizer that gives one id to two tokens (two words would share an embedding row) is refused at load."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from static_model import StaticModel
from static_model.persistence import token_ids


def _added(content: str, token_id: int) -> dict[str, object]:
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


@pytest.fixture
def saved(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _edit_tokenizer(folder, edit) -> None:
    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    edit(spec)
    path.write_text(json.dumps(spec), encoding="utf-8")


def test_two_vocabulary_tokens_on_one_id_are_refused(saved):
    def edit(spec):
        vocab = spec["model"]["vocab"]
        vocab["dog"] = vocab["cat"]  # the table keeps a row (now a hole) at dog's old id: sizes still agree

    cat = json.loads((saved / "tokenizer.json").read_text())["model"]["vocab"]["cat"]
    _edit_tokenizer(saved, edit)
    message = f"{saved / 'tokenizer.json'} gives the id {cat} to two tokens, 'cat' and 'dog'"
    with pytest.raises(ValueError, match=re.escape(message)):
        StaticModel.from_pretrained(saved)


def test_an_added_token_on_another_tokens_id_is_refused(saved):
    # tokenizers would silently give "[NEW]" a new id past the vocabulary, not the row the file names
    def edit(spec):
        spec["added_tokens"].append(_added("[NEW]", spec["model"]["vocab"]["mat"]))

    mat = json.loads((saved / "tokenizer.json").read_text())["model"]["vocab"]["mat"]
    _edit_tokenizer(saved, edit)
    with pytest.raises(ValueError, match=re.escape(f"gives the id {mat} to two tokens, 'mat' and '[NEW]'")):
        StaticModel.from_pretrained(saved)


def test_unigram_added_token_on_a_pieces_position_is_refused(tmp_path):
    spec = {"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁a", -1.0], ["▁b", -2.0]]},
            "added_tokens": [_added("<unk>", 0), _added("<mask>", 2)]}
    with pytest.raises(ValueError, match=re.escape("x.json gives the id 2 to two tokens, '▁b' and '<mask>'")):
        token_ids(spec, tmp_path / "x.json")


def test_the_same_token_listed_in_vocabulary_and_added_tokens_is_fine(saved, tiny_model):
    spec = json.loads((saved / "tokenizer.json").read_text())
    assert {t["content"] for t in spec["added_tokens"]} >= {"[CLS]", "[SEP]", "[MASK]"}  # as BERT's file has them
    loaded = StaticModel.from_pretrained(saved)
    np.testing.assert_array_equal(loaded.encode(["the cat sat"]), tiny_model.encode(["the cat sat"]))


def test_an_in_memory_tokenizer_with_a_shared_id_is_refused():
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "a": 1, "b": 1, "c": 2}, unk_token="[UNK]"))
    table = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"the tokenizer gives the id 1 to two tokens, '(a|b)' and '(a|b)'"):
        StaticModel(table, tokenizer)


def test_real_bert_tokenizer_passes(minilm_folder, minilm_input_model):
    spec = json.loads((minilm_folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert len(token_ids(spec, minilm_folder / "tokenizer.json")) == 30522
    assert minilm_input_model.vocab_size == 30522


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_refused_exactly_when_two_tokens_share_an_id(ids):
    vocab = {"[UNK]": 8, **{f"w{i}": token_id for i, token_id in enumerate(ids)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    table = np.ones((9, 2), dtype=np.float32)
    if len(set(ids)) == len(ids):
        assert StaticModel(table, tokenizer).vocab_size == 9
    else:
        with pytest.raises(ValueError, match="to two tokens"):
            StaticModel(table, tokenizer)
