"""Audit of the distill stages: on tokenizers other than uncased WordPiece, rows that go to the right tokens and a
static model that reads the tokens its teacher reads; frequency lists near float64's limit; corrupt teacher configs
and too many vocabulary clusters refused in one line, before the vocabulary pass."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.teachers import WORDPIECE_VOCAB, make_bpe_teacher, make_wordpiece_teacher

from distill import distill, prepare
from distill.teacher import Teacher

PLAIN = dict(pca_dims=None, sif_coefficient=None, dtype="float32", remove_common_component=False, drop_components=0,
             show_progress_bar=False)


@pytest.fixture(scope="module")
def bpe_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bpe_teacher(tmp_path_factory.mktemp("bpe") / "teacher")


def _lower_case_config(folder: Path) -> None:
    config = folder / "sentence_bert_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "do_lower_case": True}))


def test_a_vocabulary_word_spelled_as_a_byte_level_token_leaves_that_tokens_row_alone(bpe_teacher: Path) -> None:
    """'Ġthe' is how byte-level BPE writes the token ' the'; as a vocabulary word (a list made from a GPT-2 or
    RoBERTa vocab.json) it once became an added token of that content, which took the id of ' the', so the row of
    one of the commonest tokens became the teacher's vector of the text ' Ġthe' (the last write wins)."""
    teacher = Teacher(bpe_teacher)
    the = teacher.tokenizer.token_to_id("Ġthe")
    assert the is not None
    plan = prepare(teacher, vocabulary=["Ġthe", "rivers"])
    assert not set(plan.added_ids) & set(plan.base_ids)  # every kept id gets one row
    assert len(set(plan.kept_ids.tolist())) == plan.kept_ids.size
    assert plan.added_words == (" rivers",)
    assert plan.vocabulary_stats["already_single_token"] == 1
    assert plan.vocabulary_stats["added"] == 1

    plain = distill(teacher, **PLAIN)
    with_words = distill(teacher, vocabulary=["Ġthe", "rivers"], **PLAIN)
    # the same row (up to float rounding of another batch; the overwritten row differed by 0.55)
    np.testing.assert_allclose(with_words.embedding_matrix()[the], plain.embedding_matrix()[the], atol=1e-5)
    np.testing.assert_allclose(with_words.encode("a cat on the mat"), plain.encode("a cat on the mat"), atol=1e-5)


def _cased_wordpiece_teacher(folder: Path) -> Path:
    """A WordPiece teacher whose tokenizer keeps case ('Cat' and 'cat' are two tokens)."""
    from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    make_wordpiece_teacher(folder, pad_to=None)
    words = ["Cat" if w == "rain" else "The" if w == "river" else w for w in WORDPIECE_VOCAB]  # same table size
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.add_special_tokens([AddedToken(t, special=True) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]])
    tok.save(str(folder / "tokenizer.json"))
    return folder


@pytest.mark.parametrize("kind", ["cased-wordpiece", "byte-level-bpe"])
def test_a_do_lower_case_teacher_gives_a_model_that_lowers_the_text_too(
    kind: str, bpe_teacher: Path, tmp_path: Path
) -> None:
    """sentence_bert_config.json's do_lower_case lowers every text before the teacher's tokenizer (Teacher.tokenize,
    as sentence-transformers): 'The Cat' and 'the cat' are one text to the teacher. The static model's tokenizer was
    the teacher's as it is, so it read 'Cat' (a token the teacher never sees in a text) and 'C' 'at', and gave two
    different vectors; it now lowers the text first and reads the teacher's tokens."""
    if kind == "cased-wordpiece":
        folder = _cased_wordpiece_teacher(tmp_path / "teacher")
    else:
        import shutil

        folder = Path(shutil.copytree(bpe_teacher, tmp_path / "teacher"))
    before = Teacher(folder)  # without do_lower_case: the case stays, in the teacher and in the model
    plan = prepare(before)
    assert plan.tokenizer.encode("The Cat", add_special_tokens=False).ids != \
        plan.tokenizer.encode("the cat", add_special_tokens=False).ids

    _lower_case_config(folder)
    teacher = Teacher(folder)
    assert teacher.spec.do_lower_case
    texts = ["The Cat sat on the MAT", "Hello World", "a Dog is PLAYING"]
    plan = prepare(teacher)
    for text, ids in zip(texts, teacher.tokenize(texts)):
        assert plan.tokenizer.encode(text, add_special_tokens=False).ids == ids[1:-1]  # the teacher's less specials
    model = distill(teacher, **PLAIN)
    for text in texts:
        assert model.tokenize(text)[0].tolist() == model.tokenize(text.lower())[0].tolist()
        np.testing.assert_array_equal(model.encode(text), model.encode(text.lower()))
    # an added word is read whatever its case, and its row is the teacher's vector of the lower-cased word
    with_word = distill(teacher, vocabulary=["Rivers"], **PLAIN)
    assert with_word.config["distill"]["added_words"]["added"] == 1
    row = with_word.tokenize("RIVERS")[0]
    assert row.size == 1 and row.tolist() == with_word.tokenize("rivers")[0].tolist()


def test_word_frequencies_near_the_float64_limit_give_the_model_of_their_ratios(tmp_path: Path) -> None:
    """Only the ratios of a word-frequency list count; frequencies of 1e308 once added up to infinity, every p became
    0 and the distill failed after its whole vocabulary pass with numpy's 'zero-size array to reduction operation
    minimum which has no identity'."""
    from distill.frequencies import probabilities

    kept = np.ones(3, dtype=bool)
    np.testing.assert_allclose(probabilities(np.array([1e308, 1e308, 2e307]), kept), [0.5 / 1.1, 0.5 / 1.1, 0.1 / 1.1])

    teacher = Teacher(make_wordpiece_teacher(tmp_path / "teacher", pad_to=None))
    huge, small = tmp_path / "huge.tsv", tmp_path / "small.tsv"
    huge.write_text("the\t1e308\nthe\t1e308\ncat\t1e308\ndog\t1e307\n")
    small.write_text("the\t10\nthe\t10\ncat\t10\ndog\t1\n")
    settings = dict(PLAIN, sif_coefficient=1e-2, frequency_weight=1.0)
    from_huge = distill(teacher, token_frequencies=huge, **settings)
    from_small = distill(teacher, token_frequencies=small, **settings)
    assert np.isfinite(from_huge.embedding_matrix()).all()
    np.testing.assert_allclose(from_huge.embedding_matrix(), from_small.embedding_matrix(), rtol=1e-4, atol=1e-6)


def test_an_added_word_before_punctuation_adds_no_metaspace_token_on_a_unigram_teacher(tmp_path: Path) -> None:
    """A SentencePiece (Unigram, Metaspace) teacher: an added word splits the text around it, and the Metaspace
    pre-tokenizer (prepend_scheme 'always') put a '▁' before the section after it, so 'rivers.' was read as
    'rivers' '▁' '.' (the teacher reads '▁ri' 'ver' 's' '.'): one token the teacher never sees, in the mean of every
    text with the word before a comma or a full stop. Texts without an added word keep the teacher's tokens."""
    from helpers.teachers import SENTENCES, make_unigram_teacher

    teacher = Teacher(make_unigram_teacher(tmp_path / "teacher"))
    model = distill(teacher, vocabulary=["rivers", "catdog"], **PLAIN)
    tok = model.tokenizer
    rivers, catdog, dot, comma = (tok.token_to_id(t) for t in ("rivers", "catdog", ".", ","))
    assert None not in (rivers, catdog, dot, comma)
    assert model.tokenize("rivers.")[0].tolist() == [rivers, dot]
    assert model.tokenize("rivers, catdog.")[0].tolist() == [rivers, comma, catdog, dot]
    mean = model.embedding_matrix()[[rivers, dot]].mean(axis=0)
    np.testing.assert_allclose(model.encode("rivers."), mean / np.linalg.norm(mean), atol=1e-6)  # a normalizing teacher
    for text, ids in zip(SENTENCES, teacher.tokenize(SENTENCES)):  # no added word: the teacher's own tokens
        assert model.tokenize(text)[0].tolist() == ids[1:-1]


@pytest.mark.parametrize(("file", "content", "named"), [
    ("config.json", {"hidden_size": "abc"}, "hidden_size is 'abc'"),
    ("config.json", {"hidden_size": 32.5}, "hidden_size is 32.5"),
    ("sentence_bert_config.json", {"max_seq_length": "x"}, "max_seq_length is 'x'"),
    ("sentence_bert_config.json", {"max_seq_length": -4}, "max_seq_length is -4"),
    ("modules.json", [{"type": "sentence_transformers.models.Transformer", "path": None}], "path is None"),
])
def test_a_corrupt_teacher_config_is_one_line_naming_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, content: object, named: str
) -> None:
    """Values of the wrong type in a teacher's configs once ended as Python's own words ('invalid literal for int()
    with base 10', "unsupported operand type(s) for /: 'PosixPath' and 'NoneType'"), naming neither file nor key."""
    from distill.__main__ import main

    folder = make_wordpiece_teacher(tmp_path / "teacher", pad_to=None)
    (folder / file).write_text(json.dumps(content))
    out = tmp_path / "out"
    capsys.readouterr()  # building the teacher drew a bar
    assert main([str(folder), "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(folder / file) in err[0] and named in err[0]
    assert not out.exists()


def test_more_vocabulary_clusters_than_token_rows_is_refused_before_the_vocabulary_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """quantize_vocabulary refuses more clusters than non-zero rows, but only after the whole vocabulary pass (a
    minute and more for a real teacher); the most rows a model can have is known from the tokenizer alone."""
    import distill.pipeline
    from distill.__main__ import main

    folder = make_wordpiece_teacher(tmp_path / "teacher", pad_to=None)
    rows = len(prepare(folder).kept_ids)
    capsys.readouterr()

    def no_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the vocabulary pass ran")

    monkeypatch.setattr(distill.pipeline, "embed_vocabulary", no_pass)
    out = tmp_path / "out"
    assert main([str(folder), "--output", str(out), "--quiet", "--vocabulary-clusters", str(rows + 1)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --vocabulary-clusters {rows + 1}: n_clusters={rows + 1} is more than the model's {rows} "
                   "token rows at most (the teacher's tokens less its special ones, plus the added words); pass at "
                   "most that"]
    assert not out.exists()
    monkeypatch.undo()
    assert main([str(folder), "--output", str(out), "--quiet", "--vocabulary-clusters", str(rows)]) == 0
    from static_model import StaticModel

    assert len(StaticModel.from_pretrained(out).embeddings) == rows


def _with_prefix_space(folder: Path) -> Path:
    """The byte-level BPE teacher with ``add_prefix_space: true`` (RoBERTa and GPT-2 ship it off)."""
    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text())
    assert spec["pre_tokenizer"]["type"] == "ByteLevel"
    spec["pre_tokenizer"]["add_prefix_space"] = True
    path.write_text(json.dumps(spec))
    return folder


def _replace_runs(ids: list[int], run: list[int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if ids[i : i + len(run)] == run:
            out.append(new)
            i += len(run)
        else:
            out.append(ids[i])
            i += 1
    return out


def test_an_added_word_before_punctuation_adds_no_space_token_on_a_prefixing_byte_level_teacher(
    tmp_path: Path,
) -> None:
    """A byte-level BPE teacher whose pre-tokenizer has add_prefix_space: an added word splits the text around it, and
    ByteLevel put a space before every section that did not start with one, so 'zebra.' was read as 'zebra' 'Ġ' '.'
    (the teacher reads 'Ġze' 'bra' '.'): a token the teacher never sees in the mean of every text with the word before
    punctuation. The static model reads the teacher's tokens with the word's id in place of the pieces of ' zebra';
    texts without an added word keep the teacher's tokens, also once saved and loaded."""
    from helpers.teachers import SENTENCES

    from static_model import StaticModel

    teacher = Teacher(_with_prefix_space(make_bpe_teacher(tmp_path / "teacher")))
    words = ["zebra", "catdog", "rivers"]
    model = distill(teacher, vocabulary=words, **PLAIN)
    assert model.config["distill"]["added_words"]["added"] == 3
    word_ids = {w: model.tokenizer.token_to_id(w) for w in words}
    pieces = {w: ids[1:-1] for w, ids in zip(words, teacher.tokenize(words))}
    assert None not in word_ids.values() and all(len(p) > 1 for p in pieces.values())
    texts = ["zebra.", "rivers, zebra.", "I like zebra!", "zebra, catdog and rivers.", "the zebra: catdog? rivers",
             "a <mask> zebra.", "zebra\n. rivers;"]
    saved = tmp_path / "model"
    model.save_pretrained(saved)
    loaded = StaticModel.from_pretrained(saved)
    for text, ids in zip(texts, teacher.tokenize(texts)):
        expected = ids[1:-1]
        for w in words:
            expected = _replace_runs(expected, pieces[w], word_ids[w])
        assert model.tokenize(text)[0].tolist() == expected, text
        assert loaded.tokenize(text)[0].tolist() == expected, text
    for text, ids in zip(SENTENCES, teacher.tokenize(SENTENCES)):  # no added word: the teacher's own tokens
        assert model.tokenize(text)[0].tolist() == ids[1:-1]
        assert loaded.tokenize(text)[0].tolist() == ids[1:-1]


def test_a_prefixing_byte_level_step_first_in_a_sequence_is_switched_and_a_later_one_left_alone() -> None:
    """The fix moves ByteLevel's prefix to the text's start only where that is exact for texts without an added word:
    ByteLevel first (here before Digits, which splits further); after a step that splits (Digits first, each digit
    group then got its own space) the pre-tokenizer is left as it was."""
    from helpers.teachers import SENTENCES
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    from distill.vocabulary import build_output_tokenizer

    def trained(pre_tokenizer: pre_tokenizers.PreTokenizer) -> Tokenizer:
        tok = Tokenizer(BPE())
        tok.pre_tokenizer = pre_tokenizer
        trainer = BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(SENTENCES, trainer)
        return tok

    teacher = trained(
        pre_tokenizers.Sequence(
            [pre_tokenizers.ByteLevel(add_prefix_space=True), pre_tokenizers.Digits(individual_digits=True)]
        )
    )
    out, fed, ids, _ = build_output_tokenizer(teacher, ["zebra"])
    assert fed == ["zebra"]
    zebra = teacher.encode("zebra").ids
    for text in ("zebra.", "a zebra, 12 zebra!", "zebra"):
        expected = _replace_runs(teacher.encode(text).ids, zebra, ids[0])
        assert out.encode(text, add_special_tokens=False).ids == expected, text
    for text in ("the cat 123, sat.", " x\ny 4", "", ".", "<s>"):
        assert out.encode(text).ids == teacher.encode(text).ids, text

    later = trained(
        pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=False), pre_tokenizers.ByteLevel(add_prefix_space=True)]
        )
    )
    out, _, _, _ = build_output_tokenizer(later, ["zebra"])
    assert json.loads(out.to_str())["pre_tokenizer"] == json.loads(later.to_str())["pre_tokenizer"]


def test_a_unigram_teacher_listing_a_piece_twice_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A Unigram tokenizer.json that lists a piece twice loads without a word, and the tokenizers library reads the
    piece as its last entry alone: the static model would have been refused only once built, after the whole
    vocabulary pass. The teacher's tokenizer is refused as it is loaded, naming its file and the piece."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from distill.teacher import TeacherError, load_fast_tokenizer

    vocab = [("<unk>", 0.0), ("▁a", -1.0), ("▁b", -2.0), ("a", -3.0), ("b", -3.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    folder = tmp_path / "teacher"
    folder.mkdir()
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    assert load_fast_tokenizer(folder).get_vocab_size() == 5
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["model"]["vocab"][4][0] = "▁a"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(TeacherError, match=rf"^{re.escape(str(path))}: .*piece '▁a' twice, as ids 1 and 4"):
        load_fast_tokenizer(folder)
