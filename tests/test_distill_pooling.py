"""The vocabulary pass pools as the teacher does: each token's (and added word's) vector is what the teacher's own
sentence-transformers pooling gives for that single input, computed here independently with sentence-transformers
and transformers; ``pooling=`` overrides it; ``pooler`` needs a trained pooler."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.teachers import SENTENCES, make_wordpiece_teacher, wordpiece_tokenizer

from distill import TeacherError, distill, embed_vocabulary, prepare
from distill.__main__ import main

RAW = dict(pca_dims=None, sif_coefficient=None, remove_common_component=False, dtype="float32",
           show_progress_bar=False)
WORDS = ["catdog", "horses", "playing", "rainbook"]  # several word pieces each, of different lengths
# sentence-transformers pooling mode in the teacher's 1_Pooling/config.json -> the vocabulary pooling it implies
TEACHER_MODES = {"mean": "mean", "cls": "first", "lasttoken": "last", "max": "max"}
ST_FLAGS = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "lasttoken": "pooling_mode_lasttoken",
            "max": "pooling_mode_max_tokens"}


def make_teacher(folder: Path, mode: str, *, pooling_layer: bool = True) -> Path:
    """A tiny BERT sentence-transformers folder (no Normalize) whose pooling config names ``mode``."""
    make_wordpiece_teacher(folder, normalize=False)
    pooling_config = {"word_embedding_dimension": 32, ST_FLAGS[mode]: True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config))
    if not pooling_layer:  # the same encoder saved without its pooler weights
        from transformers import BertModel

        BertModel.from_pretrained(str(folder), add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pool")
    return {mode: make_teacher(root / mode, mode) for mode in TEACHER_MODES}


def st_forward(folder: Path, sequences: list[list[int]]) -> dict[str, np.ndarray]:
    """sentence-transformers' own outputs (``sentence_embedding``: its pooling; ``token_embeddings``) and
    transformers' ``pooler_output``, one sequence at a time (no padding)."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    st = SentenceTransformer(str(folder), device="cpu")
    hf = AutoModel.from_pretrained(str(folder)).eval()
    out: dict[str, list[np.ndarray]] = {"sentence_embedding": [], "pooler_output": [], "token_embeddings": []}
    with torch.inference_mode():
        for ids in sequences:
            t = torch.tensor([ids])
            feats = {"input_ids": t, "attention_mask": torch.ones_like(t), "token_type_ids": torch.zeros_like(t)}
            st_out = st.forward(dict(feats))
            out["sentence_embedding"].append(st_out["sentence_embedding"][0].numpy())
            out["token_embeddings"].append(st_out["token_embeddings"][0].numpy())
            out["pooler_output"].append(hf(**feats).pooler_output[0].numpy())
    return {k: np.stack(v) if k != "token_embeddings" else v for k, v in out.items()}  # type: ignore[misc]


def reference_rows(folder: Path, model) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ids of a few teacher tokens and of the added words in ``model``, and the teacher's outputs for each alone
    in the [CLS] ... [SEP] template."""
    vocab = model.tokenizer.get_vocab()
    tokens = ["the", "dog", "##ing", "a", ".", "river"]
    enc = wordpiece_tokenizer(None)
    sequences = [[vocab["[CLS]"], vocab[t], vocab["[SEP]"]] for t in tokens]
    sequences += [enc.encode(w).ids for w in WORDS]
    assert all(len(s) > 3 for s in sequences[len(tokens):])  # the words really are several pieces
    ids = np.array([vocab[t] for t in tokens + WORDS])
    return ids, st_forward(folder, sequences)


@pytest.mark.parametrize("mode", list(TEACHER_MODES))
def test_default_pooling_is_the_teachers_own(teachers, mode):
    model = distill(str(teachers[mode]), vocabulary=WORDS, **RAW)
    ids, ref = reference_rows(teachers[mode], model)
    np.testing.assert_allclose(model.embedding_matrix()[ids], ref["sentence_embedding"], atol=2e-5)
    assert model.config["pooling"] == TEACHER_MODES[mode]
    assert model.config["distill"]["parameters"]["pooling"] == TEACHER_MODES[mode]
    assert model.config["distill"]["teacher_pooling"] == mode


def test_cls_teacher_distills_with_the_first_position(teachers):
    plan = prepare(str(teachers["cls"]))
    vectors = embed_vocabulary(plan, show_progress_bar=False)
    assert vectors.pooling == "first"
    mean = embed_vocabulary(plan, pooling="mean", show_progress_bar=False)
    assert mean.pooling == "mean" and not np.allclose(mean.vectors, vectors.vectors)


@pytest.mark.parametrize("pooling", ["pooler", "mean", "first", "last", "token"])
def test_override_names_the_pooling(teachers, pooling):
    folder = teachers["cls"]
    model = distill(str(folder), vocabulary=WORDS, pooling=pooling, **RAW)
    ids, ref = reference_rows(folder, model)
    table = model.embedding_matrix()[ids]
    if pooling == "pooler":
        expected = ref["pooler_output"]
    elif pooling == "token":  # the token's own position, a word's pieces averaged
        expected = np.stack([h[1:-1].mean(0) for h in ref["token_embeddings"]])
    else:
        pick = {"mean": lambda h: h.mean(0), "first": lambda h: h[0], "last": lambda h: h[-1]}[pooling]
        expected = np.stack([pick(h) for h in ref["token_embeddings"]])
    np.testing.assert_allclose(table, expected, atol=2e-5)
    assert model.config["pooling"] == pooling


def test_pooler_without_trained_weights_is_refused(tmp_path):
    folder = make_teacher(tmp_path / "nopool", "cls", pooling_layer=False)
    with pytest.raises(TeacherError, match=r"no trained pooler weights \(pooler.dense.bias, pooler.dense.weight\)"):
        distill(str(folder), pooling="pooler", **RAW)
    assert distill(str(folder), **RAW).config["pooling"] == "first"  # its own pooling needs no pooler


def test_pooler_of_a_model_without_one_is_refused(tmp_path, teachers):
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path / "distilbert"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "modules.json", "sentence_bert_config.json"):
        (folder / name).write_bytes((teachers["cls"] / name).read_bytes())
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_bytes((teachers["cls"] / "1_Pooling" / "config.json").read_bytes())
    cfg = DistilBertConfig(vocab_size=wordpiece_tokenizer(None).get_vocab_size(), dim=32, n_layers=1, n_heads=2,
                           hidden_dim=64, max_position_embeddings=160, pad_token_id=0)
    DistilBertModel(cfg).save_pretrained(folder)
    with pytest.raises(TeacherError, match="has no pooler layer"):
        distill(str(folder), pooling="pooler", **RAW)


@pytest.mark.parametrize("bad", ["median", "", None, 3, "CLS"])
def test_unknown_pooling_is_refused_before_the_teacher_loads(teachers, bad):
    with pytest.raises(ValueError, match="pooling must be one of"):
        distill(str(teachers["mean"]), pooling=bad, **RAW)


def test_cli_pooling_option(teachers, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(teachers["lasttoken"]), "-o", str(out), "--pca-dims", "8", "--quiet"]) == 0
    assert "vocabulary pooling  last (the teacher pools with lasttoken)" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["pooling"] == "last"
    assert "| vocabulary pass pooling | last |" in (out / "README.md").read_text()
    assert main([str(teachers["lasttoken"]), "-o", str(out), "--pooling", "cls", "--pca-dims", "auto", "--overwrite",
                 "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["pooling"], config["dim"], config["apply_pca"]) == ("first", 32, "auto")
    with pytest.raises(SystemExit) as exc:
        main([str(teachers["mean"]), "-o", str(tmp_path / "x"), "--pooling", "median"])
    assert exc.value.code == 2 and "--pooling" in capsys.readouterr().err


def make_decoder_teacher(folder: Path) -> Path:
    """A tiny GPT-2 style decoder embedder: byte-level BPE that appends ``<|endoftext|>``, last-token pooling."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import GPT2Config, GPT2Model

    folder.mkdir(parents=True)
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES, trainer)
    eos = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(single="$A <|endoftext|>",
                                                       special_tokens=[("<|endoftext|>", eos)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     bos_token_id=eos, eos_token_id=eos)
    GPT2Model(cfg).eval().save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_lasttoken": True}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return folder


def test_decoder_teacher_distills_with_its_last_token(tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = make_decoder_teacher(tmp_path / "gpt")
    words = ["playingtogether", "sleepingrain"]  # several BPE pieces each: padded batches
    model = distill(str(folder), vocabulary=words, **RAW)
    assert model.config["pooling"] == "last" and model.config["distill"]["teacher_pooling"] == "lasttoken"
    st = SentenceTransformer(str(folder), device="cpu")
    vocab = model.tokenizer.get_vocab()
    eos = vocab["<|endoftext|>"]
    # teacher tokens spread over its table, in id order: a dict's order from get_vocab() is a Rust HashMap's, new in
    # every call, and put the added words (ids past the teacher's 300 rows) among "the first 20" in ~12% of runs
    teacher_vocab = st.tokenizer.get_vocab()
    tokens = sorted((t for t in teacher_vocab if t != "<|endoftext|>"), key=teacher_vocab.__getitem__)[::15]
    fed = prepare(str(folder), vocabulary=words).added_words  # as the teacher reads them (byte-level: " word")
    sequences = [[vocab[t], eos] for t in tokens] + [st.tokenizer(w)["input_ids"] for w in fed]
    assert all(s[-1] == eos for s in sequences) and all(len(s) > 3 for s in sequences[len(tokens):])
    with torch.inference_mode():  # sentence-transformers' own pipeline, one input at a time, as its tokenizer gives it
        ref = np.stack([st.forward({"input_ids": torch.tensor([s]), "attention_mask": torch.ones(1, len(s),
                                    dtype=torch.long)})["sentence_embedding"][0].numpy() for s in sequences])
    np.testing.assert_allclose(model.embedding_matrix()[[vocab[t] for t in tokens + words]], ref, atol=2e-5)


def test_config_without_a_hidden_size_is_named(tmp_path, teachers):
    folder = tmp_path / "nodim"
    shutil.copytree(teachers["mean"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["hidden_size"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TeacherError, match=r"config.json states no hidden size"):
        distill(str(folder), **RAW)
