"""numba's kernel cache: a read-only install still imports and encodes; processes starting together on an empty cache
agree; damaged or unwritable cache files are a cache miss, not an error; a fork during a compilation does not hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# numba raises "no locator available" at decoration time when neither the package folder nor a user cache folder is
# writable (seen as a non-root user with HOME=/nonexistent and the package read-only); emptying its list of cache
# locators is that situation, whoever runs the test
_NO_CACHE_FOLDER = """
import json, sys, warnings
import numba.core.caching
numba.core.caching.CacheImpl._locator_classes = []
sys.path.insert(0, sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from static_model import StaticModel
model = StaticModel.from_pretrained(sys.argv[2])
texts = ["hello world", "the cat sat on the mat"] * 30_000  # the parallel kernel too (over 50,000 tokens)
vectors = model.encode(texts)
print(json.dumps({"vectors": vectors[:2].tolist(), "shape": list(vectors.shape),
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
"""


def test_imports_and_encodes_without_a_writable_cache_folder(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    proc = subprocess.run([sys.executable, "-c", _NO_CACHE_FOLDER, str(ROOT), str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["shape"] == [60_000, tiny_model.dim]
    np.testing.assert_allclose(out["vectors"], tiny_model.encode(["hello world", "the cat sat on the mat"]),
                               rtol=1e-5, atol=1e-6)
    assert len(out["warnings"]) == 1 and "NUMBA_CACHE_DIR" in out["warnings"][0]


# A thread holds numba's compiler lock (as during a kernel's first compilation) while the main thread forks; the child
# then compiles a kernel of its own and encodes. Without the fork handler the child inherits the lock held by a thread
# it does not have and waits forever; the parent gives it 120 s and reports "hung".
_FORK_DURING_COMPILE = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
from static_model import StaticModel
from numba.core.compiler_lock import global_compiler_lock
import numba

model = StaticModel.from_pretrained(sys.argv[2])
holding, done = threading.Event(), threading.Event()

def compile_in_progress():
    with global_compiler_lock:
        holding.set()
        done.wait(0.5)

thread = threading.Thread(target=compile_in_progress)
thread.start()
holding.wait()
pid = os.fork()
if pid == 0:
    ok = numba.njit(lambda x: x + 1)(1) == 2 and model.encode(["hello world"]).shape == (1, model.dim)
    os._exit(0 if ok else 3)
thread.join()
for _ in range(1200):
    finished, status = os.waitpid(pid, os.WNOHANG)
    if finished:
        print("exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    print("hung")
"""


def test_a_process_forked_during_a_compilation_compiles_and_encodes(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "m")
    proc = subprocess.run([sys.executable, "-c", _FORK_DURING_COMPILE, str(ROOT), str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exit 0", proc.stdout + proc.stderr


# One process: import, load, encode (both pooling modes, and enough tokens for the parallel kernel), then print a
# digest of the vectors and the RuntimeWarnings static_model raised. NUMBA_CACHE_DIR is set by the caller.
_ENCODE = """
import hashlib, json, sys, warnings
sys.path.insert(0, sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if len(sys.argv) > 3 and sys.argv[3] == "disk-full":
        import numba.core.caching
        def disk_full(self, *args, **kwargs):
            raise OSError(28, "No space left on device")
        numba.core.caching.IndexDataCacheFile._save_index = disk_full
        numba.core.caching.IndexDataCacheFile._save_data = disk_full
    from static_model import StaticModel
    model = StaticModel.from_pretrained(sys.argv[2])
    texts = ["hello world", "the cat sat on the mat", "a cat and a dog"] * 20_000
    plain, contrast = model.encode(texts), model.encode(texts[:50], contrast=1.0)
digest = hashlib.sha256(plain.tobytes() + contrast.tobytes()).hexdigest()
print(json.dumps({"digest": digest, "warnings": [str(w.message) for w in caught
                                                 if issubclass(w.category, RuntimeWarning)]}))
"""


def _expected_digest(model) -> str:
    import hashlib

    texts = ["hello world", "the cat sat on the mat", "a cat and a dog"] * 20_000
    return hashlib.sha256(model.encode(texts).tobytes() + model.encode(texts[:50], contrast=1.0).tobytes()).hexdigest()


def _start(folder: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.Popen([sys.executable, "-c", _ENCODE, str(ROOT), str(folder), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_processes_started_together_on_an_empty_cache_folder_agree_with_one_process(tiny_model, tmp_path):
    """Workers of a server starting at once in a fresh container all compile and write the same cache files: each
    gets the in-process vectors bit for bit and no warning, and so do the workers started after them on that cache."""
    tiny_model.save_pretrained(tmp_path / "m")
    expected = _expected_digest(tiny_model)
    for round_ in ("cold", "warm"):
        results = [_result(p) for p in [_start(tmp_path / "m", tmp_path / "cache") for _ in range(4)]]
        assert [r["digest"] for r in results] == [expected] * 4, round_
        assert all(r["warnings"] == [] for r in results), (round_, results)
    index_files = list((tmp_path / "cache").rglob("*.nbi"))
    assert len(index_files) >= 5 and not list((tmp_path / "cache").rglob("*.tmp.*"))


def test_cache_files_cut_short_or_garbled_are_compiled_again_and_rewritten(tiny_model, tmp_path):
    """A crash or a full disk can leave numba's cache files short, empty or garbled; numba itself then fails every
    first call with an UnpicklingError until the folder is deleted. Here the kernel is compiled again (the same
    vectors), one warning names the folder, and the next process finds a good cache again."""
    tiny_model.save_pretrained(tmp_path / "m")
    expected = _expected_digest(tiny_model)
    cache = tmp_path / "cache"
    assert _result(_start(tmp_path / "m", cache))["digest"] == expected
    files = sorted(cache.rglob("*.nb[ic]"))
    assert any(f.suffix == ".nbi" for f in files) and any(f.suffix == ".nbc" for f in files)
    for i, f in enumerate(files):  # every file spoilt, in one of three ways
        data = f.read_bytes()
        f.write_bytes([data[: len(data) // 2], b"", b"\x00not a pickle" * 7][i % 3])
    damaged = _result(_start(tmp_path / "m", cache))
    assert damaged["digest"] == expected
    assert len(damaged["warnings"]) == 1, damaged["warnings"]
    assert "could not read" in damaged["warnings"][0] and str(cache) in damaged["warnings"][0]
    healed = _result(_start(tmp_path / "m", cache))
    assert healed == {"digest": expected, "warnings": []}


def test_a_cache_that_cannot_be_written_is_compiled_in_the_process(tiny_model, tmp_path):
    """A full disk under NUMBA_CACHE_DIR fails numba's cache writes at a kernel's first call; encode still returns
    the same vectors, with one warning that the kernels are not cached."""
    tiny_model.save_pretrained(tmp_path / "m")
    result = _result(_start(tmp_path / "m", tmp_path / "cache", "disk-full"))
    assert result["digest"] == _expected_digest(tiny_model)
    assert len(result["warnings"]) == 1 and "could not write" in result["warnings"][0], result["warnings"]
    assert "No space left on device" in result["warnings"][0]
