"""Token frequencies for SIF: word-frequency lists, corpora, format errors, mapping onto word pieces."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers.teachers import wordpiece_tokenizer

from distill import frequencies as freq
from distill.frequencies import FrequencyFileError
from distill.vocabulary import build_output_tokenizer

SHARED = Path(os.environ.get("STATIC_EMBEDDINGS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture
def tok():
    return wordpiece_tokenizer(None)


def test_sniff_word_list_and_corpus(tmp_path):
    wl = tmp_path / "wf.tsv"
    wl.write_text("word\tfrequency\tzipf\nthe\t0.05\t7.7\ncat\t1e-5\t4.0\n")
    assert freq.sniff(wl) == ("wordlist", wl)
    no_header = tmp_path / "counts.txt"
    no_header.write_text("the\t120\ncat\t3\n")
    assert freq.sniff(no_header)[0] == "wordlist"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The cat sat on the mat.\nA dog.\n")
    assert freq.sniff(corpus) == ("corpus", corpus)


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("bad.tsv", "word\tfrequency\nthe\tmany\n", "word<TAB>frequency"),
        ("bad.tsv", "just some words\nmore words\n", "word<TAB>frequency"),
        ("neg.tsv", "the\t-3\ncat\t2\n", "word<TAB>frequency"),
        ("empty.txt", "\n\n", "empty"),
        ("header_only.tsv", "word\tfrequency\n", "word<TAB>frequency"),
    ],
)
def test_wrong_formats_are_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FrequencyFileError, match=match):
        freq.check_source(path)


def test_bad_row_further_down_names_the_line(tmp_path):
    path = tmp_path / "wf.tsv"
    path.write_text("word\tfrequency\nthe\t5\ncat\t4\ndog\tnan?\n")
    with pytest.raises(FrequencyFileError, match="line 4"):
        freq.check_source(path)


def test_binary_and_missing_files(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(FrequencyFileError, match="UTF-8"):
        freq.check_source(path)
    with pytest.raises(FrequencyFileError, match="does not exist"):
        freq.check_source(tmp_path / "nope.tsv")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FrequencyFileError, match="no .tsv"):
        freq.check_source(tmp_path / "empty_dir")


def test_folder_uses_its_largest_list(tmp_path):
    (tmp_path / "small.tsv").write_text("the\t1\n")
    (tmp_path / "large.tsv").write_text("the\t1\ncat\t2\ndog\t3\n")
    assert freq.sniff(tmp_path) == ("wordlist", tmp_path / "large.tsv")


def test_word_frequencies_go_to_every_piece(tmp_path, tok):
    path = tmp_path / "wf.tsv"
    path.write_text("word\tfrequency\nthe\t100\nplaying\t10\nplayed\t5\nsings\t1\n")
    counts = freq.token_counts(path, tok)
    v = tok.get_vocab()
    assert counts[v["the"]] == 100
    assert counts[v["play"]] == 15  # playing + played
    assert tok.encode("sings", add_special_tokens=False).tokens == ["s", "##ing", "##s"]
    assert counts[v["##ing"]] == 11  # playing (10) + sings (1)
    sings = len(tok.encode("sings", add_special_tokens=False).ids)
    assert counts.sum() == pytest.approx(100 + 10 * 2 + 5 * 2 + 1 * sings)


def test_added_words_count_as_whole_tokens(tok):
    out, _, ids, _ = build_output_tokenizer(tok, ["playing"])
    counts = freq.token_counts({"playing": 10.0, "play": 3.0}, out)
    v = out.get_vocab()
    assert counts[ids[0]] == 10 and counts[v["play"]] == 3 and counts[v["##ing"]] == 0


def test_corpus_counts_tokens(tmp_path, tok):
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat\n\nThe dog\n")
    counts = freq.token_counts(path, tok, chunk_lines=1)
    v = tok.get_vocab()
    assert counts[v["the"]] == 3 and counts[v["cat"]] == 1 and counts[v["dog"]] == 1
    assert counts.sum() == 8


def test_a_corpus_that_is_not_utf8_past_its_first_lines_is_an_error_naming_the_line(tmp_path, tok, capsys):
    """The format sniff reads its first block; the rest was once counted with replacement characters, silently."""
    from distill.__main__ import main

    path = tmp_path / "corpus.txt"
    path.write_bytes(b"the cat sat on the mat\n" * 2000 + "the caf\u00e9 dog\n".encode("latin-1"))
    with pytest.raises(FrequencyFileError, match=r"corpus.txt is not UTF-8 text \(line 2001"):
        freq.token_counts(path, tok)
    path.write_bytes(b"the cat sat on the mat\n" * 6 + "the caf\u00e9 dog\n".encode("latin-1"))
    with pytest.raises(FrequencyFileError, match=r"corpus.txt is not UTF-8 text \(line 7"):
        freq.token_counts(path, tok)  # within the sniffed block: the line is named there too
    path.write_bytes(b"the cat sat on the mat\n" * 2000 + "the caf\u00e9 dog\n".encode("latin-1"))
    assert main([str(tmp_path / "no-such-teacher"), "-o", str(tmp_path / "out"), "--token-frequencies",
                 str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --token-frequencies") and "line 2001" in err and "no-such-teacher" not in err


def test_probabilities_smooth_unseen_tokens():
    counts = np.array([0.0, 8.0, 2.0, 0.0, 5.0])
    kept = np.array([False, True, True, True, False])
    p = freq.probabilities(counts, kept)
    assert p[0] == 0 and p[4] == 0
    assert p.sum() == pytest.approx(1.0)
    assert p[3] == pytest.approx(p[2] / 2)  # unseen: half the smallest observed
    assert p[1] / p[2] == pytest.approx(4.0)
    with pytest.raises(FrequencyFileError):
        freq.probabilities(np.zeros(5), kept)


def test_sif_probabilities_zipf_counts_alone_and_pooled():
    kept = np.array([1, 2, 3, 5])
    zipf = freq.sif_probabilities(None, kept, weight=None)
    np.testing.assert_allclose(zipf, (1 / np.arange(2, 6)) / (1 / np.arange(2, 6)).sum())
    counts = np.array([50.0, 8.0, 2.0, 0.0, 7.0, 5.0])  # id 0 and 4 are not kept: their counts are not read
    alone = freq.sif_probabilities(counts, kept, weight=1.0)
    np.testing.assert_allclose(alone, freq.probabilities(counts, np.isin(np.arange(6), kept))[kept])
    pooled = freq.sif_probabilities(counts, kept, weight=0.25)
    expected = zipf ** 0.75 * alone ** 0.25
    np.testing.assert_allclose(pooled, expected / expected.sum())
    assert pooled.sum() == pytest.approx(1.0) and np.all(pooled > 0)
    # the pooled estimate lies between its two sources, token by token, in log space
    lo, hi = np.minimum(zipf, alone), np.maximum(zipf, alone)
    scale = expected.sum()
    assert np.all(pooled * scale >= lo * (1 - 1e-12)) and np.all(pooled * scale <= hi * (1 + 1e-12))
    # counts shorter than the ids (an added word past the counted range) are zero-padded
    short = freq.sif_probabilities(counts[:4], np.array([1, 2, 3, 7]), weight=1.0)
    assert short[3] == pytest.approx(short[2]) and short.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("weight,error", [(0, ValueError), (-0.5, ValueError), (1.01, ValueError),
                                          (float("nan"), ValueError), (True, TypeError), ("0.5", TypeError)])
def test_frequency_weight_out_of_range_is_an_error(weight, error):
    with pytest.raises(error, match="frequency_weight must be"):
        freq.sif_probabilities(np.ones(4), np.arange(4), weight=weight)


@pytest.mark.skipif(not (SHARED / "vocab" / "wordfreq_small_en.tsv").is_file(), reason="shared data not present")
def test_real_wordfreq_list_on_the_minilm_tokenizer(minilm_folder):
    folder = minilm_folder
    from distill.teacher import load_fast_tokenizer

    tokenizer = load_fast_tokenizer(folder)
    path = SHARED / "vocab" / "wordfreq_small_en.tsv"
    assert freq.sniff(path)[0] == "wordlist"
    counts = freq.token_counts(path, tokenizer)
    v = tokenizer.get_vocab()
    top = np.argsort(-counts)[:5]
    assert v["the"] in top
    # WordPiece ids are not frequency-ordered: the frequency rank of a token is unrelated to its id
    assert counts[v["the"]] > counts[v["!"]] and v["the"] > v["!"]


@pytest.mark.parametrize("count", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-3", ""])
@pytest.mark.parametrize("name", ["wf.tsv", "wf.txt"])
def test_a_bad_count_on_the_first_line_is_an_error_naming_the_line_not_a_header(tmp_path, count, name):
    """'the<TAB>nan' on line 1 was taken as a header and dropped without a word: a header is a line whose count
    column is a name (not a number at all, like 'count'); a count that is a number but not a finite, non-negative one,
    or that is missing, is a bad row on line 1 as on any other."""
    path = tmp_path / name
    path.write_text(f"the\t{count}\ncat\t3\ndog\t1\n")
    with pytest.raises(FrequencyFileError, match=f"{path}.*line 1.*word<TAB>frequency"):
        freq.check_source(path)
    with pytest.raises(FrequencyFileError, match=f"{path}, line 1: .*word<TAB>frequency"):
        freq.read_word_frequencies(path)
    path.write_text(f"\nthe\t{count}\ncat\t3\n")  # the first line that is not blank
    with pytest.raises(FrequencyFileError, match=f"{path}.*line 2"):
        freq.check_source(path)


@pytest.mark.parametrize("header", ["word\tcount", "word\tfrequency\tzipf", "token\tfreq (per 1M)"])
def test_a_first_line_whose_count_column_is_a_name_is_a_header(tmp_path, header):
    path = tmp_path / "wf.tsv"
    path.write_text(f"{header}\ncat\t3\ndog\t1\n")
    freq.check_source(path)
    words, counts = freq.read_word_frequencies(path)
    assert words == ["cat", "dog"] and counts.tolist() == [3.0, 1.0]


def test_a_vocabulary_file_keeps_a_first_word_whose_count_is_not_finite(tmp_path):
    """A --vocabulary word list (first column, the second one unread) dropped 'the' of 'the<TAB>nan' above numeric
    rows as a header; a header's second column is a name, not a number."""
    from distill.vocabulary import read_vocabulary_file

    path = tmp_path / "words.tsv"
    for count in ("nan", "inf", "1e999", ""):
        path.write_text(f"the\t{count}\ncat\t3\n")
        assert read_vocabulary_file(path) == ["the", "cat"], count
    path.write_text("word\tfrequency\nthe\tnan\ncat\t3\n")  # a header above a row with a count that is a number
    assert read_vocabulary_file(path) == ["the", "cat"]
    path.write_text("word\tfrequency\nthe\t3\n")
    assert read_vocabulary_file(path) == ["the"]
