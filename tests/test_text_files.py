"""``distill.text_files.scan_utf8``: the first invalid byte's line, whatever the block boundaries."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from distill.text_files import first_bad_utf8_line, scan_utf8

_LINES = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"),
                          max_size=12), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(lines=_LINES, bad_at=st.integers(min_value=0, max_value=7), block_size=st.integers(min_value=1, max_value=9))
def test_the_first_invalid_byte_is_found_on_its_line(tmp_path_factory, lines, bad_at, block_size):
    bad_at = min(bad_at, len(lines) - 1)
    raw = [line.encode("utf-8") for line in lines]
    raw[bad_at] += b"\xff"  # never valid in UTF-8
    path = tmp_path_factory.mktemp("scan") / "t.txt"
    path.write_bytes(b"\n".join(raw))
    scan = scan_utf8(path, block_size=block_size)
    assert (scan.bad_line, scan.bad_byte) == (bad_at + 1, b"\xff")
    assert first_bad_utf8_line(path) == bad_at + 1


@settings(max_examples=40, deadline=None)
@given(lines=_LINES, block_size=st.integers(min_value=1, max_value=9))
def test_valid_text_has_no_bad_line(tmp_path_factory, lines, block_size):
    path = tmp_path_factory.mktemp("scan") / "t.txt"
    path.write_bytes("\n".join(lines).encode("utf-8"))
    scan = scan_utf8(path, block_size=block_size)
    assert scan.bad_line is None and scan.has_text == any(line.strip() for line in lines)
    assert first_bad_utf8_line(path) == "?"


def test_a_truncated_character_at_the_end_is_invalid(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("ok\ncafé".encode()[:-1])
    assert scan_utf8(path, block_size=2).bad_line == 2


def test_json_object_names_where_and_raises_the_callers_error():
    import pytest

    from distill.text_files import json_object

    class FormatError(ValueError):
        pass

    assert json_object('{"text": "a"}', "f.jsonl line 1") == {"text": "a"}
    with pytest.raises(FormatError, match=r"^f.jsonl line 2: not JSON \(.*column 2\)$"):
        json_object("{oops", "f.jsonl line 2", FormatError)
    with pytest.raises(ValueError, match=r"^f.jsonl line 3: a JSON object expected, got list$"):
        json_object('["a"]', "f.jsonl line 3")
