"""scale/ audit: inputs given as a generator or the same file twice are recorded as given (a resume never mixes
another run's rows in), a UTF-8 byte-order mark is no part of a file's first text, a folder given as an input is
named as such, and EncodeBatches takes dictionary-encoded string columns in pyarrow batches."""

from __future__ import annotations

import hashlib
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
from scale.engine import vector_column
from scale.inputs import partition_name, read_partition
from static_model import StaticModel


def write_text(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def byte_level_bpe_model() -> StaticModel:
    """A RoBERTa-style byte-level BPE model: unlike a BERT normalizer, it keeps U+FEFF as byte tokens."""
    corpus = ["the cat sat on the mat", "hello world", "a dog runs fast", "café 日本 😀"] * 10
    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
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
    chunked = pa.Table.from_batches(
        [
            batch.slice(0, 2).combine_chunks().to_batches()[0],
            pa.record_batch({"n": [2, 3], "text": pa.array(rows[2:]).dictionary_encode()}),
        ]
    )
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


# ------------------------------------------------------------------ runs without a cluster: what a job is given


@pytest.fixture
def no_cluster(monkeypatch):
    """encode_files and featurize_on_ray with Ray's part replaced: nothing is encoded, and what the workers would be
    given (the output folder and partitions, or the teacher and chunk files) is recorded in the returned dict."""
    import scale.bulk_encode as bulk
    import scale.featurize as feat

    given: dict = {}

    def encode_run(ray, model, todo, out, column, batch_size, workers, progress):
        given.update(out=out, todo=todo)
        return 0

    def featurize_run(ray, teacher, fingerprint, todo, batch_size, workers, progress):
        given.update(teacher=teacher, todo=todo)

    for module, run in ((bulk, encode_run), (feat, featurize_run)):
        monkeypatch.setattr(module, "connect", lambda ray, address, workers: False)
        monkeypatch.setattr(module, "_run", run)
    return given


def copy_keeping_mtime(source: Path, content: bytes) -> None:
    """Replace ``source``'s content keeping its modification time, as ``cp -p`` over it or an edit within one tick of
    a coarse file-system clock does."""
    stat = source.stat()
    source.write_bytes(content)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)


# ------------------------------------------------------------------ a resume sees an edit that kept size and time


@pytest.mark.parametrize("name", ["in.txt", "in.jsonl", "in.parquet"])
def test_a_resume_sees_an_input_replaced_keeping_its_size_and_modification_time(no_cluster, tiny_model, tmp_path, name):
    """The manifest recorded each input's size and modification time only: an input replaced by ``cp -p`` (or
    edited within one clock tick) with as many bytes looked unchanged, and a resume kept the old rows' vectors."""
    source = tmp_path / name
    rows, edited = ["the cat sat", "a dog runs"], ["the dog sat", "a cat runs"]
    if name.endswith(".parquet"):
        pq.write_table(pa.table({"text": rows}), source)
        new = tmp_path / "new.parquet"
        pq.write_table(pa.table({"text": edited}), new)
        content = new.read_bytes()
    elif name.endswith(".jsonl"):
        source.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows), encoding="utf-8")
        content = "".join(json.dumps({"text": r}) + "\n" for r in edited).encode("utf-8")
    else:
        write_text(source, rows)
        content = "".join(r + "\n" for r in edited).encode("utf-8")
    out = tmp_path / "out"
    encode_files(tiny_model, [source], out, partition_rows=1, progress=False)
    assert (
        json.loads((out / MANIFEST).read_text(encoding="utf-8"))["inputs"][0]["sha256"]
        == hashlib.sha256(source.read_bytes()).hexdigest()
    )
    encode_files(tiny_model, [source], out, partition_rows=1, progress=False)  # unchanged: resumes
    assert len(content) == source.stat().st_size
    copy_keeping_mtime(source, content)
    with pytest.raises(
        FileExistsError,
        match=r"input .*in\.\w+ changed since the first run \(its content \(SHA-256\) "
        r"differs: edited in place\?\); pass overwrite=True",
    ):
        encode_files(tiny_model, [source], out, partition_rows=1, progress=False)
    encode_files(tiny_model, [source], out, partition_rows=1, overwrite=True, progress=False)  # starts over


def test_a_manifest_of_format_2_is_not_resumed_but_reads_back(no_cluster, tiny_model, tmp_path):
    """A folder written by the version before (manifest format 2: sizes and modification times, no content hash)
    cannot tell a replaced input, so a resume is refused with a message naming the manifest; it still reads back."""
    source = write_text(tmp_path / "in.txt", ["the cat sat", "a dog runs"])
    out = tmp_path / "out"
    encode_files(tiny_model, [source], out, partition_rows=2, progress=False)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["format"] = 2
    for entry in manifest["inputs"]:
        del entry["sha256"]
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    vectors = tiny_model.encode(["the cat sat", "a dog runs"])
    pq.write_table(pa.table({"id": np.arange(2), "embedding": vector_column(vectors)}), out / "part-000000.parquet")
    np.testing.assert_array_equal(read_vectors(out)[1], vectors)
    with pytest.raises(
        FileExistsError,
        match=r"_manifest\.json is from an older version \(manifest format 2\) that "
        r"did not record its inputs' content hashes",
    ):
        encode_files(tiny_model, [source], out, partition_rows=2, progress=False)


# ------------------------------------------------------------------ a lone \r ends a line, as in refine's reader


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 1 << 24])
def test_a_lone_carriage_return_ends_a_text_line_as_in_refines_reader(monkeypatch, tmp_path, block):
    """A lone \\r (old Mac line ends) was part of a text, while refine's corpus reader (Python's universal newlines)
    ends a line there; \\r\\n stays one line end even where a read block splits it (small blocks here)."""
    import scale.inputs
    from distill.refine.corpus import read_corpus

    monkeypatch.setattr(scale.inputs, "_READ_BLOCK", block)
    lines = ["one", "two", "three", "", "four", "five\x0bsix\x0cseven\x1c\u2028\x85end", "eight", "", "nine"]
    data = "\ufeffone\rtwo\r\nthree\n\rfour\r\nfive\x0bsix\x0cseven\x1c\u2028\x85end\reight\r\r\nnine\r"
    source = tmp_path / "mixed.txt"
    source.write_bytes(data.encode("utf-8"))
    with open(source, encoding="utf-8-sig") as handle:  # how refine reads a text corpus
        assert [line.removesuffix("\n") for line in handle] == lines
    assert read_corpus(source) == [line for line in lines if line]
    for size in (1, 2, 4, 100):
        partitions = plan_partitions([source], partition_rows=size)
        assert [text for p in partitions for text in read_partition(p)] == lines
        assert partitions[-1].byte_end == source.stat().st_size
    rows = [{"text": line} for line in lines if line]
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_bytes(
        "\r".join(json.dumps(row) for row in rows[:3]).encode("utf-8")
        + b"\r\n\r"
        + "\r\n".join(json.dumps(row) for row in rows[3:]).encode("utf-8")
    )
    for size in (1, 3, 100):
        assert [t for p in plan_partitions([jsonl], partition_rows=size) for t in read_partition(p)] == [
            row["text"] for row in rows
        ]


def test_text_rows_equal_universal_newline_lines_for_random_line_ends(monkeypatch, tmp_path):
    """Random mixes of \n, \r\n and lone \r, read in blocks of a few bytes and planned in partitions of a few rows,
    give the lines Python's universal newlines give."""
    import random

    import scale.inputs

    rng = random.Random(5)
    source = tmp_path / "random.txt"
    for _ in range(300):
        source.write_bytes("".join(rng.choice("ab\r\n") for _ in range(rng.randrange(30))).encode("ascii"))
        with open(source, encoding="utf-8") as handle:
            lines = [line.removesuffix("\n") for line in handle]
        monkeypatch.setattr(scale.inputs, "_READ_BLOCK", rng.choice([1, 2, 3, 1 << 24]))
        partitions = plan_partitions([source], partition_rows=rng.choice([1, 2, 3, 50]))
        assert [text for p in partitions for text in read_partition(p)] == lines, source.read_bytes()


# ------------------------------------------------------------------ partition names sort in row order at any count


def test_partition_names_sort_in_row_order_past_a_million_partitions(tmp_path):
    """``part-{index:06d}`` sorts part-1000000 before part-100001: a glob or a dataset reader took the rows of a
    plan of more than 1,000,000 partitions out of order. Plans under a million keep their names."""
    indices = [0, 1, 99_999, 100_000, 100_001, 999_999, 1_000_000, 1_000_001, 12_345_678]
    for count in (1_000_001, 12_345_679):
        names = [partition_name(i, count) for i in indices if i < count]
        assert sorted(names) == names and len({len(n) for n in names}) == 1
    assert partition_name(1_000_000, 1_000_001) == "part-1000000.parquet"
    assert partition_name(7, 1_000_001) == "part-0000007.parquet"
    assert [partition_name(i, 1_000_000) for i in (0, 999_999)] == ["part-000000.parquet", "part-999999.parquet"]
    assert partition_name(1_000_000) == "part-1000000.parquet"  # a format-2 folder's names, as read_vectors reads it
    source = write_text(tmp_path / "in.txt", ["a", "b", "c"])
    assert [p.name for p in plan_partitions([source], partition_rows=1)] == [
        "part-000000.parquet",
        "part-000001.parquet",
        "part-000002.parquet",
    ]


# ------------------------------------------------------------------ workers are given absolute paths


def test_relative_output_and_inputs_reach_the_workers_as_absolute_paths(no_cluster, tiny_model, tmp_path, monkeypatch):
    """A relative ``--output`` went to the workers as it was: on a remote cluster each wrote its partitions under its
    own working folder, not the driver's."""
    monkeypatch.chdir(tmp_path)
    write_text(tmp_path / "in.txt", ["the cat sat", "a dog runs", "hello"])
    report = encode_files(tiny_model, ["in.txt"], "vectors", partition_rows=2, progress=False)
    assert no_cluster["out"] == tmp_path / "vectors" and no_cluster["out"].is_absolute()
    assert report.output == tmp_path / "vectors"
    assert [p.path for p in no_cluster["todo"]] == [str((tmp_path / "in.txt").resolve())] * 2
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    encode_files(tiny_model, ["../in.txt"], "../vectors", partition_rows=2, progress=False)  # the same: resumes
    assert no_cluster["out"] == tmp_path / "vectors"


@pytest.mark.parametrize("uri", ["s3://bucket/vectors", "gs://bucket/x", "file:///tmp/x"])
def test_a_uri_output_or_input_is_refused_by_name(no_cluster, tiny_model, tmp_path, monkeypatch, uri):
    """``Path("s3://bucket/vectors")`` is the relative folder ``s3:/bucket/vectors``: the run wrote there, locally."""
    monkeypatch.chdir(tmp_path)
    source = write_text(tmp_path / "in.txt", ["the cat sat"])
    with pytest.raises(ValueError, match=f"output '{uri}' is a URI; scale reads and writes files by path"):
        encode_files(tiny_model, [source], uri, progress=False)
    with pytest.raises(ValueError, match=f"input '{uri}.txt' is a URI"):
        encode_files(tiny_model, [f"{uri}.txt"], tmp_path / "out", progress=False)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["in.txt"]


def test_featurize_gives_the_workers_an_absolute_cache_and_teacher_folder(no_cluster, tmp_path, monkeypatch):
    """A relative ``--cache-dir`` (and refine's default ``.cache/refine/...``) and a relative teacher folder went to
    the workers as they were: remote workers wrote the chunks, or looked for the teacher, in their own folder."""
    from helpers.teachers import make_wordpiece_teacher

    from scale import featurize_on_ray

    make_wordpiece_teacher(tmp_path / "teacher")
    monkeypatch.chdir(tmp_path)
    report = featurize_on_ray("teacher", ["a cat", "a dog", "the mat"], cache_dir="cache", chunk_size=2, progress=False)
    assert report.cache_dir == tmp_path / "cache"
    assert no_cluster["teacher"] == str(tmp_path / "teacher")
    assert [Path(path).parent for path, _ in no_cluster["todo"]] == [tmp_path / "cache"] * 2
    featurize_on_ray(Path("teacher"), ["a cat"], progress=False)  # refine's default cache folder, relative
    assert all(Path(path).is_absolute() for path, _ in no_cluster["todo"])
    from scale.featurize import worker_teacher

    assert worker_teacher("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


# ------------------------------------------------------------------ a worker sees an input replaced, size and time kept


def replaced_inputs(tmp_path: Path, name: str) -> tuple[Path, bytes, list[str]]:
    """An input of six rows whose fifth row only is edited in the returned content of the same size (written in
    row groups of two for Parquet, uncompressed and without statistics, so the footer stays the same), and the
    edited rows."""
    rows = ["the cat sat", "a dog runs", "hello world", "the mat", "money", "river"]
    edited = rows[:4] + ["honey"] + rows[5:]
    source = tmp_path / name
    if name.endswith(".parquet"):
        options = {"row_group_size": 2, "compression": "none", "use_dictionary": False, "write_statistics": False}
        pq.write_table(pa.table({"text": rows}), source, **options)
        pq.write_table(pa.table({"text": edited}), tmp_path / "new.parquet", **options)
        content = (tmp_path / "new.parquet").read_bytes()
    elif name.endswith(".jsonl"):
        source.write_text("".join(json.dumps({"text": r}) + "\n\n" for r in rows), encoding="utf-8")
        content = "".join(json.dumps({"text": r}) + "\n\n" for r in edited).encode("utf-8")
    else:
        source.write_bytes("".join(r + "\r\n" for r in rows).encode("utf-8"))
        content = "".join(r + "\r\n" for r in edited).encode("utf-8")
    assert len(content) == source.stat().st_size and content != source.read_bytes()
    return source, content, edited


@pytest.mark.parametrize("name", ["in.txt", "in.jsonl", "in.parquet"])
def test_a_worker_refuses_an_input_replaced_keeping_its_size_and_modification_time(tiny_model, tmp_path, name):
    """A worker compared its file's size and modification time only: an input replaced by ``cp -p`` between planning
    and the worker's read (same size, same time) was read as planned, and the new rows' vectors were written under
    the planned ids. Now the bytes a worker reads are checked against their planned SHA-256: the partition holding
    the edited row is refused by name, one whose bytes are unchanged is still read."""
    from scale.bulk_encode import _Encoder

    source, content, edited = replaced_inputs(tmp_path, name)
    partitions = plan_partitions([source], partition_rows=3)
    assert [p.n_rows for p in partitions] == [3, 3]
    copy_keeping_mtime(source, content)
    assert read_partition(partitions[0]) == edited[:3]  # its bytes (and, for Parquet, the footer) are as planned
    with pytest.raises(InputError, match=rf"{source.resolve()} changed since the run was planned \(.* of partition "
                       r"part-000001\.parquet differ from the planned ones"):
        read_partition(partitions[1])
    out = tmp_path / "out"
    out.mkdir()
    worker = _Encoder(tiny_model, str(out), "text", 64)
    with pytest.raises(InputError, match="changed since the run was planned"):
        worker.encode(partitions[1])
    assert worker.encode(partitions[0]) == 3
    assert sorted(f.name for f in out.iterdir()) == ["part-000000.parquet"]  # nothing written for the changed one


def test_a_parquet_input_whose_footer_changed_is_refused_by_every_partition(tmp_path):
    """Parquet's check covers the footer (schema, row-group layout, statistics): an edit that changes it refuses every
    partition of the file, even one whose column chunks kept their bytes; bytes that are no Parquet any more (same
    size and time) are refused as a change, not as pyarrow's error."""
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["the cat sat", "a dog runs", "hello", "moon"]}), source, row_group_size=2)
    partitions = plan_partitions([source], partition_rows=2)
    table = pa.table({"text": ["the cat sat", "a dog runs", "hellp", "moon"]})  # statistics change with the edit
    pq.write_table(table, tmp_path / "new.parquet", row_group_size=2)
    copy_keeping_mtime(source, (tmp_path / "new.parquet").read_bytes())
    for partition in partitions:
        with pytest.raises(InputError, match=f"{source.resolve()} changed since the run was planned"):
            read_partition(partition)
    source.write_bytes(b"\0" * source.stat().st_size)  # no Parquet at all any more, same size and time
    os.utime(source, ns=(partitions[0].file_mtime_ns, partitions[0].file_mtime_ns))
    with pytest.raises(InputError, match=f"{source.resolve()} changed since the run was planned"):
        read_partition(partitions[0])


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 24])
def test_each_partition_carries_the_sha256_of_its_byte_range_and_the_manifest_does_not(
    no_cluster, tiny_model, monkeypatch, tmp_path, block
):
    """The per-partition digests are computed in planning's one pass whatever the read block (a block may end
    inside a ``\\r\\n``), tile the file as the partitions do, go to the workers, and leave the manifest (format 3)
    as it was."""
    import random

    import scale.inputs
    from scale.bulk_encode import MANIFEST_FORMAT

    monkeypatch.setattr(scale.inputs, "_READ_BLOCK", block)
    rng = random.Random(block)
    for _ in range(40):
        text = tmp_path / "in.txt"
        text.write_bytes("".join(rng.choice(["a", "bc", "\r", "\n", "\r\n"]) for _ in range(40)).encode("ascii"))
        jsonl = tmp_path / "in.jsonl"
        lines = [b'{"text": "x"}\n', b"\r\n", b"\n", b'{"text": "yz"}\r']
        jsonl.write_bytes(b"".join(rng.choice(lines) for _ in range(12)) + b'{"text": "end"}\n\n')
        for source in (text, jsonl):
            data = source.read_bytes()
            partitions = plan_partitions([source], partition_rows=rng.choice([1, 2, 5]))
            assert [p.range_sha256 for p in partitions] == [
                hashlib.sha256(data[p.byte_start : p.byte_end]).hexdigest() for p in partitions
            ]
            assert [p.byte_start for p in partitions] == [0] + [p.byte_end for p in partitions[:-1]]
    encode_files(tiny_model, [text, jsonl], tmp_path / "out", partition_rows=2, progress=False)
    assert all(p.range_sha256 for p in no_cluster["todo"])
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == MANIFEST_FORMAT == 3
    assert "range_sha256" not in json.dumps(manifest)


def test_a_run_whose_input_is_replaced_after_planning_fails_naming_the_file_and_partition(
    cluster, tiny_model, tmp_path, monkeypatch
):
    """End to end on Ray: the input is replaced (same size and time) right after the driver planned it; the worker
    refuses the partition whose bytes changed, and the run fails with the one-line WorkerError naming it."""
    import scale.bulk_encode as bulk
    from scale import WorkerError

    source, content, _ = replaced_inputs(tmp_path, "in.txt")

    def plan_then_replace(*args, **kwargs):
        partitions = plan_partitions(*args, **kwargs)
        copy_keeping_mtime(source, content)
        return partitions

    monkeypatch.setattr(bulk, "plan_partitions", plan_then_replace)
    out = tmp_path / "out"
    with pytest.raises(WorkerError, match=rf"^encoding {source.resolve()} rows 3-5 into part-000001\.parquet failed: "
                       rf"InputError: {source.resolve()} changed since the run was planned \(bytes 38-61 of "):
        encode_files(tiny_model, [source], out, partition_rows=3, workers=1, progress=False)
    assert not (out / "part-000001.parquet").exists()


def test_a_resume_goes_on_after_an_input_was_only_touched(no_cluster, tiny_model, tmp_path):
    """The content hash decides: an input copied without ``-p`` or synced (a new modification time, the same bytes)
    holds the same rows, so a resume goes on (it was refused as 'changed' by its time alone); an edit is still
    refused."""
    source = write_text(tmp_path / "in.txt", ["the cat sat", "a dog runs"])
    out = tmp_path / "out"
    encode_files(tiny_model, [source], out, partition_rows=1, progress=False)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    report = encode_files(tiny_model, [source], out, partition_rows=1, progress=False)  # resumed, not refused
    assert report.partitions == 2
    source.write_text("the dog sat\na cat runs\n", encoding="utf-8")  # same size, other rows
    with pytest.raises(FileExistsError, match=r"changed since the first run \(its content \(SHA-256\) differs"):
        encode_files(tiny_model, [source], out, partition_rows=1, progress=False)


def test_a_resume_refused_for_a_setting_only_the_first_run_recorded_names_it(no_cluster, tiny_model, tmp_path):
    """A manifest key the new run does not plan (written by a later version, or by hand) made the refusal read
    "made from other ;": the key is named whichever side holds it."""
    source = write_text(tmp_path / "in.txt", ["the cat sat", "a dog runs"])
    out = tmp_path / "out"
    encode_files(tiny_model, [source], out, partition_rows=2, progress=False)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["parquet_partitions"] = "row-groups"
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"was made from other parquet_partitions; pass overwrite=True"):
        encode_files(tiny_model, [source], out, partition_rows=2, progress=False)
