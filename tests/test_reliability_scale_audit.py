"""scale/ audit: inputs given as a generator or the same file twice are recorded as given (a resume never mixes
another run's rows in), a UTF-8 byte-order mark is no part of a file's first text, a folder given as an input is
named as such, and EncodeBatches takes dictionary-encoded string columns in pyarrow batches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, pre_tokenizers, processors, trainers
from tokenizers.models import BPE

from scale import EncodeBatches, InputError, encode_files, plan_partitions, read_vectors
from scale.bulk_encode import MANIFEST
from scale.inputs import read_partition
from static_model import StaticModel


def write_text(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def byte_level_bpe_model() -> StaticModel:
    """A RoBERTa-style byte-level BPE model: unlike a BERT normalizer, it keeps U+FEFF as byte tokens."""
    corpus = ["the cat sat on the mat", "hello world", "a dog runs fast", "café 日本 😀"] * 10
    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    table = np.random.default_rng(1).normal(size=(tokenizer.get_vocab_size(), 8)).astype(np.float32)
    return StaticModel(table, tokenizer, normalize=True)


# ------------------------------------------------------------------ the manifest records the inputs as given

def test_inputs_given_as_a_generator_are_recorded_and_an_edit_is_refused_on_resume(cluster, tiny_model, tmp_path):
    """``Path.glob`` is a generator: planning used it up and the manifest listed no inputs, so a resume after the
    input was edited in place went on and mixed old and new rows."""
    source = write_text(tmp_path / "in.txt", ["the cat sat", "a dog runs", "hello world", "the mat"])
    out = tmp_path / "out"
    encode_files(tiny_model, tmp_path.glob("*.txt"), out, partition_rows=2, workers=1, progress=False)
    (out / "part-000001.parquet").unlink()  # as if the run had been interrupted
    source.write_text(source.read_text(encoding="utf-8").replace("cat", "dog"), encoding="utf-8")  # same size
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    with pytest.raises(FileExistsError, match="changed since the first run"):
        encode_files(tiny_model, tmp_path.glob("*.txt"), out, partition_rows=2, workers=1, progress=False)
    assert sorted(f.name for f in out.glob("part-*")) == ["part-000000.parquet"]  # nothing was mixed in
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert [entry["path"] for entry in manifest["inputs"]] == [str(source.resolve())]
    with pytest.raises(InputError, match="no input files given"):
        plan_partitions(p for p in [])


def test_a_file_given_twice_is_recorded_twice_so_another_order_is_not_resumed(cluster, tiny_model, tmp_path):
    """[a, a, b] and [a, b, b] (a and b of as many rows) once wrote the same manifest: resuming one with the other
    kept a's vectors under ids that are now b's rows."""
    a = write_text(tmp_path / "a.txt", ["the cat sat", "a dog runs"])
    b = write_text(tmp_path / "b.txt", ["money and tax", "the bank of the river"])
    out = tmp_path / "out"
    encode_files(tiny_model, [a, a, b], out, partition_rows=2, workers=1, progress=False)
    ids, vectors = read_vectors(out)
    np.testing.assert_array_equal(ids, np.arange(6))
    rows = ["the cat sat", "a dog runs"] * 2 + ["money and tax", "the bank of the river"]
    np.testing.assert_array_equal(vectors, tiny_model.encode(rows))
    (out / "part-000001.parquet").unlink()  # ids 2-3: a's rows in this run, b's in [a, b, b]
    with pytest.raises(FileExistsError, match="made from other inputs"):
        encode_files(tiny_model, [a, b, b], out, partition_rows=2, workers=1, progress=False)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert [Path(entry["path"]).name for entry in manifest["inputs"]] == ["a.txt", "a.txt", "b.txt"]
    report = encode_files(tiny_model, [a, a, b], out, partition_rows=2, workers=1, progress=False)  # same: resumes
    assert (report.skipped, report.encoded) == (2, 1)
    np.testing.assert_array_equal(read_vectors(out)[1], tiny_model.encode(rows))


# ------------------------------------------------------------------ a byte-order mark is no part of the text

def test_a_byte_order_mark_is_no_part_of_the_first_text(cluster, tmp_path):
    """A text file saved as 'UTF-8 with BOM' (Notepad): its first row was encoded with U+FEFF in front, which a
    byte-level BPE model turns into tokens, so that vector was not ``model.encode`` of the line."""
    model = byte_level_bpe_model()
    rows = ["the cat sat", "a dog runs", "hello world"]
    assert not np.array_equal(model.encode(["\ufeff" + rows[0]]), model.encode(rows[:1]))  # the mark matters here
    txt = tmp_path / "bom.txt"
    txt.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode("utf-8") + b"\r\n")
    jsonl = tmp_path / "bom.jsonl"  # a mark, then a blank line: the blank line is no row
    jsonl.write_bytes(b"\xef\xbb\xbf\n" + "".join(json.dumps({"text": r}) + "\n" for r in rows).encode("utf-8"))
    for source in (txt, jsonl):
        for size in (1, 2, 10):
            assert [t for p in plan_partitions([source], partition_rows=size) for t in read_partition(p)] == rows
    out = tmp_path / "out"
    encode_files(model, [txt, jsonl], out, partition_rows=2, workers=1, progress=False)
    ids, vectors = read_vectors(out)
    np.testing.assert_array_equal(ids, np.arange(6))
    np.testing.assert_array_equal(vectors, model.encode(rows + rows))


def test_a_folder_given_as_an_input_is_named_as_a_folder(tmp_path):
    """A Parquet dataset is often a folder; it was reported as 'no such file'."""
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"text": ["a cat"]}), tmp_path / "data" / "part-0.parquet")
    with pytest.raises(InputError, match=r"data is a folder, not a file: pass the files in it"):
        plan_partitions([tmp_path / "data"])
    with pytest.raises(InputError, match="no such file"):
        plan_partitions([tmp_path / "missing.txt"])


# ------------------------------------------------------------------ EncodeBatches: dictionary-encoded strings

def test_encode_batches_takes_a_dictionary_encoded_string_column(tiny_model, tmp_path):
    """A categorical text column written to Parquet reads back dictionary-encoded (Ray's read_parquet gives such
    pyarrow batches); EncodeBatches refused it as 'not strings' although numpy and pandas batches of it worked."""
    rows = ["the cat sat", "a dog runs", "the cat sat", "hello world"]
    pq.write_table(pa.table({"n": [0, 1, 2, 3], "text": pa.array(rows).dictionary_encode()}), tmp_path / "c.parquet")
    batch = pq.read_table(tmp_path / "c.parquet")
    assert pa.types.is_dictionary(batch.schema.field("text").type)
    chunked = pa.Table.from_batches([batch.slice(0, 2).combine_chunks().to_batches()[0],
                                     pa.record_batch({"n": [2, 3], "text": pa.array(rows[2:]).dictionary_encode()})])
    encode = EncodeBatches(tiny_model)
    for table in (batch, chunked):
        out = encode(table)
        assert out.column_names == ["n", "text", "embedding"] and out.column("text").type == table.column("text").type
        vectors = out.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(rows), tiny_model.dim)
        np.testing.assert_array_equal(vectors, tiny_model.encode(rows))
    with_null = pa.table({"n": [0, 1], "text": pa.array(["a cat", None]).dictionary_encode()})
    with pytest.raises(ValueError, match=r"1 of 2 rows .* row 1 of the batch, None .*'n': 1"):
        encode(with_null)
    with pytest.raises(ValueError, match="column 'text' holds dictionary<values=int64"):
        encode(pa.table({"text": pa.array([1, 2]).dictionary_encode()}))


# ------------------------------------------------------------------ the column is checked before any work

@pytest.mark.parametrize("column", [None, 3])
def test_a_column_that_is_no_string_is_refused_before_any_work(tiny_model, tmp_path, column):
    """Text inputs never read the column, so a run with ``column=None`` finished and wrote ``"column": null`` to
    its manifest, which the folder's own resume and read_vectors then refused as an invalid manifest."""
    source = write_text(tmp_path / "empty.txt", [])  # no rows: no cluster needed
    with pytest.raises(ValueError, match=f"column must be a str .*; got {column!r}"):
        encode_files(tiny_model, [source], tmp_path / "out", column=column, progress=False)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ the CLI: an OS error on a path is one line

def test_the_cli_reports_an_unusable_path_as_one_error_line(tiny_model, tmp_path, capsys):
    """An output the OS refuses (here a name too long for any file system; a folder without write permission or a
    read-only disk alike) was a raw PermissionError/OSError traceback with status 1, not one ``error:`` line."""
    from scale.__main__ import main

    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    source = write_text(tmp_path / "in.txt", ["the cat sat"])
    for inputs, output in (([source], tmp_path / ("x" * 300)), ([tmp_path / ("y" * 300 + ".txt")], tmp_path / "o")):
        status = main(["encode", str(folder), *map(str, inputs), "-o", str(output), "--quiet"])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert "File name too long" in err and "Traceback" not in err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.txt", "model"]
