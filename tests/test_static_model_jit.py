"""A read-only install: numba finds no folder to cache its kernels, and static_model still imports and encodes."""

from __future__ import annotations

import json
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
