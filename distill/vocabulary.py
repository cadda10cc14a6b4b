"""The output vocabulary: which teacher tokens get a row, the static model's tokenizer and the added whole words.

- ``kept_token_ids``: every id of the teacher's vocabulary (the set of ids, so a tokenizer with holes in its ids keeps
  its top ids) less its special tokens and ``[unusedN]``-style placeholders;
- ``build_output_tokenizer``: the teacher's tokenizer (padding and truncation off) plus whole words;
- ``read_vocabulary_file`` / ``check_words``: the words to add, from a file or a list.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer

from distill.frequencies import is_column_name, parses_as_number

DEFAULT_DROP_PATTERN = r"\[unused\d+\]|<unused\d+>|\[UNUSED_?\d+\]"


def read_vocabulary_file(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """Words from a file: one per line, or the first column of a TSV (a header row is skipped)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}.")
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"Vocabulary file {path} is a folder; pass a word list (one word a line, or a TSV).")
    if not path.is_file():
        raise ValueError(f"Vocabulary file {path} does not exist.")
    words: list[str] = []
    # A first row whose second column is a name (not a number at all: "the<TAB>nan" is a word and its count) is a
    # header (word<TAB>frequency<TAB>zipf) only when the next row's second column is a number: in a file of
    # word<TAB>tag rows the first row is a word like the others.
    first_row: list[str] | None = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is no part of a word
            except UnicodeDecodeError as exc:
                raise ValueError(f"Vocabulary file {path} is not UTF-8 text (line {lineno}: {exc.reason}); "
                                 "save it as UTF-8.") from None
            cols = line.rstrip("\r\n").split("\t")
            if lineno == 1 and len(cols) >= 2 and is_column_name(cols[1]):
                first_row = cols  # a header or a word: the next row decides
                continue
            if first_row is not None:
                if not line.strip():
                    continue  # blank lines decide nothing
                if not (len(cols) >= 2 and parses_as_number(cols[1])) and first_row[0].strip():
                    words.append(first_row[0].strip())
                first_row = None
            if cols[0].strip():
                words.append(cols[0].strip())
            if limit is not None and len(words) >= limit:
                del words[limit:]
                break
    return words


def check_words(vocabulary: Sequence[str] | str | os.PathLike) -> list[str]:
    """The words to add, from a list or a file (``read_vocabulary_file``), blank ones left out; a ``TypeError`` or
    ``ValueError`` naming the item on bad input."""
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = read_vocabulary_file(vocabulary)
    if isinstance(vocabulary, (bytes, bytearray)):
        raise TypeError("vocabulary must be a list of words or a file path, not bytes.")
    words = list(vocabulary)
    for i, w in enumerate(words):
        if not isinstance(w, str):
            raise TypeError(f"vocabulary item {i} is {type(w).__name__}, not str.")
    vocabulary = [w for w in words if w.strip()]
    if not vocabulary:
        raise ValueError("The vocabulary is empty: pass None to use the teacher's tokens only, or some words.")
    return vocabulary


def special_token_ids(tokenizer: Tokenizer) -> set[int]:
    """Ids of the tokenizer's special added tokens."""
    return {tid for tid, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}


def dropped_token_ids(tokenizer: Tokenizer, pattern: str | None = DEFAULT_DROP_PATTERN) -> set[int]:
    """Special tokens and ``[unusedN]``-style placeholders: they get a zero row, no forward pass."""
    drop = set(special_token_ids(tokenizer))
    if pattern:
        regex = re.compile(pattern)
        drop.update(tid for tok, tid in tokenizer.get_vocab(with_added_tokens=True).items() if regex.fullmatch(tok))
    return drop


def kept_token_ids(tokenizer: Tokenizer, pattern: str | None = DEFAULT_DROP_PATTERN) -> list[int]:
    """The teacher token ids that get a row from the vocabulary pass, in id order: the set of the vocabulary's ids
    (with added tokens) less ``dropped_token_ids``."""
    return sorted(set(tokenizer.get_vocab(with_added_tokens=True).values()) - dropped_token_ids(tokenizer, pattern))


def _byte_level_no_prefix(tok_json: dict) -> bool:
    def walk(pt: object) -> bool:
        if not isinstance(pt, dict):
            return False
        if pt.get("type") == "ByteLevel":
            return not pt.get("add_prefix_space", False)
        return any(walk(p) for p in pt.get("pretokenizers", []) or [])

    return walk(tok_json.get("pre_tokenizer"))


def _metaspace_prepends_first(node: object) -> bool:
    """Switch every ``Metaspace`` pre-tokenizer of ``node`` (a pre-tokenizer's JSON, ``Sequence`` included) that
    prepends its ``▁`` to every section of a text (``prepend_scheme: always``) to the text's first section only;
    return whether one changed. A text with no added token is one section: its tokens stay the same."""
    if not isinstance(node, dict):
        return False
    if node.get("type") == "Metaspace" and node.get("prepend_scheme") == "always":
        node["prepend_scheme"] = "first"
        return True
    changed = False
    for child in node.get("pretokenizers", []) or []:
        changed |= _metaspace_prepends_first(child)
    return changed


def _byte_level_prefixes_first(tok_json: dict) -> bool:
    """Switch the ``ByteLevel`` pre-tokenizer of ``tok_json`` that puts a space before every section of a text that
    does not start with one (``add_prefix_space: true``) to one that puts it before the text's first section only;
    return whether it changed. A text with no added token is one section: its tokens stay the same.

    An added word splits a text in sections: "zebra." read as "zebra" "Ġ" "." where the teacher reads "Ġze" "bra"
    "." (an extra token after the word whenever punctuation follows it). ByteLevel has no "first" scheme, but
    ``Metaspace`` has one: with " " as its replacement and ``split: false`` it changes nothing but that prefix. Done
    only where ByteLevel is the pre-tokenizer or the first step of a ``Sequence`` (no earlier step splits the text in
    sections that each got the space) and no later step is another ByteLevel that adds one."""
    root = tok_json.get("pre_tokenizer")
    if not isinstance(root, dict):
        return False
    sequence = root.get("type") == "Sequence"
    steps = root.get("pretokenizers") if sequence else [root]
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], dict):
        return False
    if steps[0].get("type") != "ByteLevel" or steps[0].get("add_prefix_space") is not True:
        return False
    if any(isinstance(s, dict) and s.get("type") == "ByteLevel" and s.get("add_prefix_space") for s in steps[1:]):
        return False
    first = {"type": "Metaspace", "replacement": " ", "prepend_scheme": "first", "split": False}
    byte_level = {**steps[0], "add_prefix_space": False}
    tok_json["pre_tokenizer"] = (
        {**root, "pretokenizers": [first, byte_level, *steps[1:]]}
        if sequence
        else {"type": "Sequence", "pretokenizers": [first, byte_level]}
    )
    return True


def _unknown_token_ids(tokenizer: Tokenizer, model_json: dict) -> set[int]:
    """The id(s) of the tokenizer model's unknown token (``unk_token`` or Unigram's ``unk_id``); empty without one."""
    ids: set[int] = set()
    unk = model_json.get("unk_token")
    unk_id = tokenizer.token_to_id(unk) if isinstance(unk, str) else None
    if unk_id is not None:
        ids.add(unk_id)
    if isinstance(model_json.get("unk_id"), int):
        ids.add(model_json["unk_id"])
    return ids


def _lowercase_first(tok_json: dict) -> None:
    """Make ``tok_json``'s normalizer lower-case the text first, as sentence-transformers' ``do_lower_case`` does
    (``str.lower`` before the tokenizer): a ``BertNormalizer`` gets ``lowercase`` (its accents kept as they were),
    any other normalizer gets a ``Lowercase`` step in front of it."""
    normalizer = tok_json.get("normalizer")
    if isinstance(normalizer, dict) and normalizer.get("type") == "BertNormalizer":
        if not normalizer.get("lowercase", True):
            if normalizer.get("strip_accents") is None:  # it followed lowercase (False): keep the accents
                normalizer["strip_accents"] = False
            normalizer["lowercase"] = True
        return
    lower = {"type": "Lowercase"}
    tok_json["normalizer"] = lower if not normalizer else {"type": "Sequence", "normalizers": [lower, normalizer]}


def build_output_tokenizer(
    teacher_tokenizer: Tokenizer, words: Sequence[str] | None, max_pieces: int | None = None, *,
    lowercase: bool = False,
) -> tuple[Tokenizer, list[str], list[int], dict[str, int]]:
    """The static model's tokenizer: the teacher's (padding and truncation off) plus ``words``; with ``lowercase``
    (a teacher whose ``sentence_bert_config.json`` says ``do_lower_case``) its normalizer lower-cases every text
    first, so the static model reads the tokens the teacher reads.

    WordPiece: each new word is appended to the vocabulary with a new id (greedy longest match then
    emits it whole). BPE / Unigram / other models: each word becomes an added token
    (``single_word=True, normalized=True, lstrip=True``). Words the pre-tokenizer would split
    (spaces, punctuation) or that already are one token (or a token's string: byte-level BPE's ``Ġthe``) are
    skipped (counted as ``already_single_token``), and so are words of more than ``max_pieces``
    pieces (they do not fit the teacher's window with its special tokens; counted as ``too_long``, a key present
    only when some word was). A word the teacher reads as its one unknown token (an emoji a BERT vocabulary lacks)
    is added when the new tokenizer then emits it; a WordPiece word longer than the model's
    ``max_input_chars_per_word`` stays unknown whatever the vocabulary, so it is left out and counted as
    ``too_many_characters`` (present only when some word was).
    Returns ``(tokenizer, added words as fed to the teacher, their ids, stats)``.
    """
    tok_json = json.loads(teacher_tokenizer.to_str())
    tok_json["padding"] = None
    tok_json["truncation"] = None
    if lowercase:
        _lowercase_first(tok_json)
    model_type = tok_json.get("model", {}).get("type")
    probe = Tokenizer.from_str(json.dumps(tok_json))
    stats = {"requested": 0, "added": 0, "already_single_token": 0, "split_by_pretokenizer": 0, "duplicate": 0}
    if not words:
        return probe, [], [], stats
    prefix_space = _byte_level_no_prefix(tok_json)
    unknown_ids = _unknown_token_ids(probe, tok_json.get("model", {}))
    max_chars = tok_json["model"].get("max_input_chars_per_word") if model_type == "WordPiece" else None
    seen: set[str] = set()
    new_words: list[str] = []
    for raw in words:
        stats["requested"] += 1
        w = raw.strip()
        if probe.normalizer is not None:
            w = probe.normalizer.normalize_str(w).strip()
        if not w:
            stats["split_by_pretokenizer"] += 1
            continue
        if w in seen:
            stats["duplicate"] += 1
            continue
        seen.add(w)
        text = (" " + w) if prefix_space else w
        if probe.pre_tokenizer is not None and len(probe.pre_tokenizer.pre_tokenize_str(text)) != 1:
            stats["split_by_pretokenizer"] += 1
            continue
        piece_ids = probe.encode(text, add_special_tokens=False).ids
        n_pieces = len(piece_ids)
        if n_pieces == 1 and piece_ids[0] in unknown_ids and probe.id_to_token(piece_ids[0]) != w:
            if max_chars is not None and len(w) > max_chars:  # WordPiece reads any longer word as unknown
                stats["too_many_characters"] = stats.get("too_many_characters", 0) + 1
                continue
        elif n_pieces <= 1:
            stats["already_single_token"] += 1
            continue
        if max_pieces is not None and n_pieces > max_pieces:
            stats["too_long"] = stats.get("too_long", 0) + 1
            continue
        if probe.token_to_id(w) is not None:
            # already a token's string, though the text w is not that token (a byte-level BPE 'Ġthe' is the text
            # ' the'): an added token of that content would take the token's id, and its row the vector of w
            stats["already_single_token"] += 1
            continue
        new_words.append(w)
    if model_type == "WordPiece":
        vocab = tok_json["model"]["vocab"]
        next_id = max([*vocab.values(), *(t["id"] for t in tok_json.get("added_tokens", []))]) + 1
        for w in new_words:
            vocab[w] = next_id
            next_id += 1
        out = Tokenizer.from_str(json.dumps(tok_json))
    else:
        out = probe
        # An added word splits a text in sections, and SentencePiece's Metaspace with prepend_scheme "always" puts a
        # "▁" before each: "rivers." read as "rivers" "▁" "." where the teacher reads "▁ri" "ver" "s" "." (an extra
        # token after the word whenever punctuation follows it). "first" prepends it to the text's start only. A
        # byte-level BPE's ByteLevel with add_prefix_space does the same with its "Ġ" (_byte_level_prefixes_first).
        if new_words and (
            _metaspace_prepends_first(tok_json.get("pre_tokenizer")) or _byte_level_prefixes_first(tok_json)
        ):
            out = Tokenizer.from_str(json.dumps(tok_json))
        out.add_tokens([AddedToken(w, single_word=True, normalized=True, lstrip=True) for w in new_words])
    ids: list[int] = []
    for w in new_words:
        i = out.token_to_id(w)
        if i is None:
            raise RuntimeError(f"Internal error: the added vocabulary word {w!r} has no id.")
        ids.append(i)
    stats["added"] = len(new_words)
    fed = [(" " + w) if prefix_space else w for w in new_words]
    return out, fed, ids, stats


def output_vocab_size(tokenizer: Tokenizer) -> int:
    """Rows of the embedding table: max id + 1 (ids may have holes; a hole gets a zero row)."""
    return max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
