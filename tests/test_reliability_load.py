"""A model folder is untrusted input, and settings have strict types (issue 20, items 7, 8 and 11): every bad file
gives an error naming it and the problem, never a hang, a crash or a silent wrong answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from static_model import StaticModel


@pytest.fixture
def saved(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _edit_tensors(folder, **tensors):
    current = load_file(str(folder / "model.safetensors"))
    current.update(tensors)
    save_file({k: v for k, v in current.items() if v is not None}, str(folder / "model.safetensors"))


# --------------------------------------------------------------------------- strict types


def test_normalize_must_be_a_bool(tiny_table, wordpiece_tokenizer, tiny_model):
    for value in ("no", "false", 0, 1.0):
        with pytest.raises(TypeError, match="normalize must be True or False"):
            StaticModel(tiny_table, wordpiece_tokenizer, normalize=value)
        with pytest.raises(TypeError, match="normalize must be True or False"):
            tiny_model.encode("cat", normalize=value)
    with pytest.raises(TypeError, match=r"config\['normalize'\] must be True or False"):
        StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": "false"})
    with pytest.raises(TypeError, match="normalize must be True or False"):
        tiny_model.normalize = "no"
    assert StaticModel(tiny_table, wordpiece_tokenizer, normalize=np.bool_(False)).normalize is False


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("normalize", "false", "normalize must be True or False"),
        ("normalize", 1, "normalize must be True or False"),
        ("max_length", "512", "max_length must be a positive integer"),
        ("max_length", 12.5, "max_length must be a positive integer"),
        ("max_length", 0, "max_length must be a positive integer"),
        ("max_length", 2**63, "max_length must be at most 2147483647"),
        ("contrast", "high", "contrast must be a number"),
        ("contrast", -1, "contrast must be between 0 and 50"),
        ("contrast", 1e300, "contrast must be between 0 and 50"),
        ("dim", "8", "dim must be an integer"),
        ("dtype", 5, "dtype must be a string"),
    ],
)
def test_config_values_of_the_wrong_type_or_range_name_the_file(saved, key, value, problem):
    _edit_json(saved / "config.json", **{key: value})
    with pytest.raises(ValueError, match=rf"config.json: {problem}"):
        StaticModel.from_pretrained(saved)


def test_a_dtype_that_is_not_one_names_the_argument(tiny_model, saved, tiny_table, wordpiece_tokenizer):
    for bad in (3, "x", [1]):  # 3 was numpy's "Cannot interpret '3' as a data type"
        with pytest.raises(ValueError, match="dtype must be one of float32, float16, int8"):
            tiny_model.quantize(bad)
        with pytest.raises(ValueError, match="dtype must be one of float32, float16, int8"):
            StaticModel.from_pretrained(saved, dtype=bad)
    with pytest.raises(ValueError, match="config says dim='8' but the embeddings have 8"):  # was "dim=8 ... have 8"
        StaticModel(tiny_table, wordpiece_tokenizer, config={"dim": "8"})


def test_a_0d_array_is_one_text(tiny_model):
    vector = tiny_model.encode(np.array("the cat sat"))
    assert vector.shape == (tiny_model.dim,)
    np.testing.assert_array_equal(vector, tiny_model.encode("the cat sat"))
    with pytest.raises(TypeError, match="0-d array of int64, not a str"):
        tiny_model.encode(np.array(5))


def test_a_tokenizer_with_fewer_ids_than_rows_is_an_error(tiny_table, saved):
    from helpers.tokenizers import make_wordpiece_tokenizer

    tokenizer = make_wordpiece_tokenizer(["the", "a", "cat", "dog", "sat", "mat"], pad_to=None)  # another model's
    with pytest.raises(ValueError, match=r"the tokenizer has 11 token ids \(0 to 10\) but the embeddings have 49 rows"):
        StaticModel(tiny_table, tokenizer)
    (saved / "tokenizer.json").write_text(tokenizer.to_str())
    with pytest.raises(ValueError,
                       match=r"tokenizer.json has 11 token ids \(0 to 10\) but the embeddings have 49 rows"):
        StaticModel.from_pretrained(saved)


def test_a_sentence_transformers_table_may_have_rows_no_token_reaches(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    padded = np.vstack([tiny_model.embedding_matrix(), np.ones((15, tiny_model.dim), dtype=np.float32)])
    module = StaticEmbedding(tiny_model.tokenizer, embedding_weights=padded)
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "st"))
    ours = StaticModel.from_pretrained(tmp_path / "st")
    assert ours.vocab_size == tiny_model.vocab_size
    np.testing.assert_allclose(ours.encode(["cat dog"], normalize=False),
                               tiny_model.encode(["cat dog"], normalize=False), atol=1e-6)


# --------------------------------------------------------------------------- hostile tokenizers


@pytest.mark.parametrize("bad_id", [100_000_000, 2**31 - 2, 2**31, 2**32 - 1, -1, 1.5, "7", True])
def test_token_ids_are_checked_before_the_tokenizer_is_built(saved, bad_id):
    spec = json.loads((saved / "tokenizer.json").read_text())
    spec["model"]["vocab"]["hello"] = bad_id  # the count of ids stays below the rows; the largest id does not
    (saved / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"tokenizer.json (has token ids up to|holds the token id)"):
        StaticModel.from_pretrained(saved)


def test_added_and_post_processor_ids_are_checked(saved):
    spec = json.loads((saved / "tokenizer.json").read_text())
    spec["post_processor"]["special_tokens"]["[CLS]"]["ids"] = [4_000_000_000]
    (saved / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="tokenizer.json holds the token id 4000000000"):
        StaticModel.from_pretrained(saved)


def test_a_tokenizer_that_parses_but_cannot_encode_names_the_file(saved):
    spec = json.loads((saved / "tokenizer.json").read_text())
    spec["model"]["unk_token"] = "<unk>"  # not in the vocabulary: every unknown word is an error in the tokenizer
    (saved / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"tokenizer.json is corrupt.*Missing \[UNK\] token") as error:
        StaticModel.from_pretrained(saved)  # was a bare Exception from inside the tokenizer, naming no file
    assert str(saved / "tokenizer.json") in str(error.value)


# --------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors", "modules.json"])
def test_a_symlink_to_a_device_is_refused(saved, name):
    (saved / name).unlink()
    (saved / name).symlink_to("/dev/zero")
    if name == "modules.json":
        _edit_json(saved / "config.json", normalize=None)  # modules.json is read only without config's normalize
    with pytest.raises(ValueError, match=rf"{name} is a symbolic link to /dev/zero, outside the model folder"):
        StaticModel.from_pretrained(saved)


def test_a_symlink_outside_the_folder_is_refused_inside_it_is_followed(saved, tmp_path):
    (saved / "config.json").rename(tmp_path / "elsewhere.json")
    (saved / "config.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ValueError,
                       match="config.json is a symbolic link to .*elsewhere.json, outside the model folder"):
        StaticModel.from_pretrained(saved)
    (saved / "config.json").unlink()
    (tmp_path / "elsewhere.json").rename(saved / "real-config.json")
    (saved / "config.json").symlink_to("real-config.json")
    assert StaticModel.from_pretrained(saved).normalize


def test_a_linked_subfolder_outside_the_folder_is_refused(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding

    module = StaticEmbedding(tiny_model.tokenizer, embedding_weights=tiny_model.embedding_matrix())
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "st"), create_model_card=False)
    nested = tmp_path / "st" / "0_StaticEmbedding"
    if not nested.is_dir():  # this sentence-transformers writes the module's files at the top: nest them
        nested.mkdir()
        for name in ("model.safetensors", "tokenizer.json"):
            (tmp_path / "st" / name).rename(nested / name)
    nested.rename(tmp_path / "outside")
    nested.symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="model.safetensors lies, through a linked folder, in .*outside"):
        StaticModel.from_pretrained(tmp_path / "st")


def test_a_hugging_face_cache_snapshot_loads(saved, tmp_path):
    """The Hub cache links snapshots/REV/FILE to ../../blobs/HASH: outside the snapshot, inside the repository."""
    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for i, path in enumerate(p for p in saved.iterdir() if p.is_file()):
        path.rename(repo / "blobs" / f"hash{i}")
        (snapshot / path.name).symlink_to(f"../../blobs/hash{i}")
    assert StaticModel.from_pretrained(snapshot).vocab_size == 49


FIFO_SCRIPT = textwrap.dedent(
    """
    import json, os, shutil, sys
    from static_model import StaticModel
    folder, results = sys.argv[1], {}
    for name in ("config.json", "modules.json", "tokenizer.json", "model.safetensors"):
        work = folder + "-" + name
        shutil.copytree(folder, work)
        os.unlink(os.path.join(work, name))
        os.mkfifo(os.path.join(work, name))
        if name == "modules.json":
            config = json.load(open(os.path.join(work, "config.json")))
            config.pop("normalize")
            json.dump(config, open(os.path.join(work, "config.json"), "w"))
        try:
            StaticModel.from_pretrained(work)
            results[name] = "loaded"
        except Exception as exc:
            results[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(results))
    """
)


def test_a_fifo_never_hangs_the_load(saved):
    proc = subprocess.run([sys.executable, "-c", FIFO_SCRIPT, str(saved)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for name, result in results.items():
        assert result.startswith("ValueError: ") and f"{name} is not a regular file (it is a FIFO)" in result, result


def test_size_caps_come_before_reading(saved):
    os.truncate(saved / "config.json", 17 * 2**20)  # sparse: costs nothing on disk
    with pytest.raises(ValueError, match=r"config.json is 17,825,792 bytes, more than the 16,777,216"):
        StaticModel.from_pretrained(saved)


def test_deeply_nested_json_names_the_file(saved):
    (saved / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="config.json is nested too deeply"):
        StaticModel.from_pretrained(saved)
    (saved / "config.json").write_text('{"normalize": true}')
    (saved / "tokenizer.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(ValueError, match="tokenizer.json is nested too deeply"):
        StaticModel.from_pretrained(saved)


def _one_tensor_header(dtype: str, shape: list[int], offsets: list[int]) -> bytes:
    """A safetensors JSON header (no length prefix) naming one ``embeddings`` tensor."""
    return json.dumps({"embeddings": {"dtype": dtype, "shape": shape, "data_offsets": offsets}}).encode()


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"\xff" * 8, "its header claims"),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00[]", "the header is not a JSON object"),
        (_one_tensor_header("BF16", [1, 1], [0, 2]), "unsupported dtype"),
        (_one_tensor_header("F32", [1, -1], [0, 4]), "invalid shape"),
        (_one_tensor_header("F32", [2**40, 2**40], [0, 4]), "does not fill"),
        (_one_tensor_header("F32", [1, 1], [0, 4000]), "outside the"),
    ],
)
def test_safetensors_headers_are_checked_before_reading(saved, header, problem):
    data = header if len(header) == 8 or header.startswith(b"\x02") else len(header).to_bytes(8, "little") + header
    (saved / "model.safetensors").write_bytes(data + b"\0" * 8)
    with pytest.raises(ValueError, match=rf"model.safetensors is corrupt or not a safetensors file: .*{problem}"):
        StaticModel.from_pretrained(saved)


# --------------------------------------------------------------------------- hostile values


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        (np.arange(49, dtype=np.float32), "'mapping' must be a non-empty 1-D integer array; got float32"),
        (np.zeros((7, 7), dtype=np.int64), "'mapping' must be a non-empty 1-D integer array; got int64 of shape"),
        (np.full(49, 10, dtype=np.int64), "'mapping' holds row 10, outside the table's 10 rows"),
        (np.full(49, -1, dtype=np.int32), "'mapping' holds row -1"),
        (np.zeros(5_000_000, dtype=np.int32), "'mapping' has 5000000 entries but .*tokenizer.json has 49 token ids"),
    ],
)
def test_a_mapping_is_checked_before_it_is_expanded(saved, tiny_table, mapping, problem):
    _edit_tensors(saved, embeddings=tiny_table[:10], mapping=mapping)
    config = json.loads((saved / "config.json").read_text())
    config.pop("vocab_size")
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"model.safetensors: {problem}"):
        StaticModel.from_pretrained(saved)


@pytest.mark.parametrize(("scale", "weight"), [(1e19, None), (1.0, 1e19), (1e4, 1e3), (1e7, None)])
def test_huge_values_cannot_overflow_the_pooling(saved, tiny_table, scale, weight):
    weights = None if weight is None else np.full(len(tiny_table), weight, dtype=np.float32)
    _edit_tensors(saved, embeddings=(tiny_table * scale).astype(np.float32), weights=weights)
    with pytest.raises(ValueError,
                       match=r"model.safetensors: a table value times its weight reaches .* at most 1e\+06"):
        StaticModel.from_pretrained(saved)


def test_values_up_to_the_bound_load_and_pool_finitely(saved, tiny_table):
    rows = tiny_table / np.abs(tiny_table).max() * 1e3
    _edit_tensors(saved, embeddings=rows.astype(np.float32), weights=np.full(len(rows), 999.0, dtype=np.float32))
    model = StaticModel.from_pretrained(saved)
    text = " ".join(["cat dog the mat"] * 200)
    for contrast in (0.0, 50.0):
        assert np.isfinite(model.encode([text], contrast=contrast, normalize=False)).all()


# --------------------------------------------------------------------------- values float32 / float16 cannot hold


def test_float16_out_of_range_says_so_with_the_largest_value(tiny_table, wordpiece_tokenizer, tmp_path):
    """Was 'embeddings hold NaN or infinite values' (the cast to float16 made them infinite)."""
    big = StaticModel(tiny_table / np.abs(tiny_table).max() * 70000.0, wordpiece_tokenizer,
                      weights=np.full(len(tiny_table), 1e-2))
    problem = r"dtype='float16'.*out of float16's range \(±65504\); the largest magnitude found is 70000\..*'int8'"
    with pytest.raises(ValueError, match=problem):
        big.quantize("float16")
    with pytest.raises(ValueError, match=problem):
        big.save_pretrained(tmp_path / "m", dtype="float16")
    assert not (tmp_path / "m").exists()
    rows = tiny_table / np.abs(tiny_table).max() * 1e4
    folded = StaticModel(rows, wordpiece_tokenizer, weights=np.full(len(rows), 90.0)).quantize("int8")  # up to 9e5
    with pytest.raises(ValueError, match=r"times its weights .* out of float16.s range.*Keep the model int8"):
        folded.quantize("float16")  # int8 rows times their scale, folded in
    assert big.quantize("int8").dtype == "int8"  # the advice works


def test_float16_never_turns_a_row_into_zeros(tiny_table, wordpiece_tokenizer):
    tiny_rows = StaticModel(tiny_table * 1e-9, wordpiece_tokenizer, weights=np.full(len(tiny_table), 1e4))
    with pytest.raises(ValueError, match=r"dtype='float16': row 0 is nonzero .* would become a zero row"):
        tiny_rows.quantize("float16")


def test_float64_beyond_float32_says_so(tiny_table, wordpiece_tokenizer, saved):
    """Was 'NaN or infinite values' (the cast to float32 made them infinite)."""
    huge = tiny_table.astype(np.float64) * 1e39
    with pytest.raises(ValueError, match=r"^embeddings hold values out of float32's range.*largest magnitude is "
                                         r"[0-9.]+e\+39"):
        StaticModel(huge, wordpiece_tokenizer, weights=np.full(len(huge), 1e-34))
    with pytest.raises(ValueError, match=r"^weights holds values out of float32's range.*1e\+40 \(weights\[0\]\)"):
        StaticModel(tiny_table * 1e-35, wordpiece_tokenizer, weights=np.full(len(tiny_table), 1e40))
    _edit_tensors(saved, embeddings=huge, weights=np.full(len(huge), 1e-34, dtype=np.float32))
    with pytest.raises(ValueError, match=r"model.safetensors: embeddings hold values out of float32's range"):
        StaticModel.from_pretrained(saved)


@pytest.mark.parametrize("weight", [1e-300, 1e-40])
def test_float64_weights_that_float32_rounds_away_are_refused(tiny_table, wordpiece_tokenizer, saved, weight):
    """Were accepted, became 0 in float32, and every text got a zero vector."""
    weights = np.full(len(tiny_table), weight, dtype=np.float64)
    with pytest.raises(ValueError, match=rf"^weights holds values too small for float32.*weights\[0\] = {weight:.3g}"):
        StaticModel(tiny_table, wordpiece_tokenizer, weights=weights)
    with pytest.raises(ValueError, match=r"weights holds values too small"):  # the float64 table too
        StaticModel(tiny_table.astype(np.float64) * 1e20, wordpiece_tokenizer, weights=weights * 1e-20)
    _edit_tensors(saved, weights=weights)
    with pytest.raises(ValueError, match=r"model.safetensors: weights holds values too small for float32"):
        StaticModel.from_pretrained(saved)


def test_rows_too_small_to_pool_are_refused_and_small_ones_pool(tiny_table, wordpiece_tokenizer):
    """A row of 1e-25 (float32 weights, or a float64 table of 1e-300) gave zero vectors once normalized."""
    with pytest.raises(ValueError, match=r"^weights\[\d+\] = 1e-25 shrinks row \d+ to a nonzero but tiny .*1e-15"):
        StaticModel(tiny_table, wordpiece_tokenizer, weights=np.full(len(tiny_table), 1e-25, dtype=np.float32))
    with pytest.raises(ValueError, match=r"^embeddings hold values too small.*row 0 .*1e-300.*would become 0"):
        StaticModel(np.full(tiny_table.shape, 1e-300), wordpiece_tokenizer)
    with pytest.raises(ValueError, match=r"^row 0 of embeddings is nonzero but tiny"):
        StaticModel(np.full(tiny_table.shape, 1e-20, dtype=np.float32), wordpiece_tokenizer)
    small = StaticModel(tiny_table, wordpiece_tokenizer, weights=np.full(len(tiny_table), 1e-14), normalize=True)
    zeros = StaticModel(tiny_table, wordpiece_tokenizer, weights=np.zeros(len(tiny_table)))  # zero rows: allowed
    for contrast in (0.0, 1.0):
        np.testing.assert_allclose(np.linalg.norm(small.encode(["the cat", "dog"], contrast=contrast), axis=1), 1.0,
                                   rtol=1e-5)
    assert not zeros.encode("the cat").any()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_infinity_are_still_called_so(tiny_table, wordpiece_tokenizer, value):
    table = tiny_table.astype(np.float64)
    table[3, 2] = value
    with pytest.raises(ValueError, match="^embeddings hold NaN or infinite values"):
        StaticModel(table, wordpiece_tokenizer)
    with pytest.raises(ValueError, match="^weights holds NaN or infinite values"):
        StaticModel(tiny_table, wordpiece_tokenizer, weights=np.full(len(tiny_table), value))


# --------------------------------------------------------------------------- a tokenizer given in memory


@pytest.mark.parametrize("bert_style", [True, False])
def test_a_tokenizer_argument_that_cannot_encode_names_the_argument(tiny_table, bert_style):
    """Was the tokenizers library's bare Exception, on the first encode (or, BERT-style, inside the constructor)."""
    from helpers.tokenizers import SPECIAL, WORDS
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="<unk>"))  # its unknown token is not in its vocabulary
    if bert_style:
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    with pytest.raises(ValueError, match=r"^tokenizer cannot encode text: .*Missing \[UNK\] token.*unk_token"):
        StaticModel(tiny_table, tokenizer).encode("the qzxqv")
