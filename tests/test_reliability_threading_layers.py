"""The parallel pooling kernel on each numba threading layer installed here (tbb, omp, workqueue).

numba picks tbb, then omp, then workqueue when ``NUMBA_THREADING_LAYER`` is unset, and Anaconda and Intel stacks
often have the ``tbb`` package: so users' processes may run ``_pool_parallel`` on any of the three. Each test runs in
a subprocess with the layer forced, because numba chooses it once per process. There, several threads encode at once
(one call at a time gets the thread pool, the others pool serially, each thread with its own
``numba.set_num_threads``), and children forked after the parent used the pool (from the main thread and from another
thread, while a thread of the parent is inside the parallel kernel) encode too: every vector must equal the
single-thread serial reference bit for bit, and a child that does not finish within its time counts as hung. A layer
that numba cannot load here is not in the list; ``tbb`` is part of the test extra, so an installed ``tbb`` that numba
cannot use is a failure, not a skip."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("tbb", "omp", "workqueue")

# numba loads its layer at the first parallel call; a forced layer that it cannot load raises there
_PROBE = """
import numba, numpy as np

@numba.njit(parallel=True)
def total(a):
    s = 0.0
    for i in numba.prange(a.shape[0]):
        s += a[i]
    return s

assert total(np.ones(1000)) == 1000.0
print(numba.threading_layer())
"""


def _env(layer: str) -> dict[str, str]:
    # 4 threads in numba's pool even on a runner with fewer cores: the pool really splits the work
    return {**os.environ, "NUMBA_THREADING_LAYER": layer, "NUMBA_NUM_THREADS": "4"}


def _loadable(layers: tuple[str, ...]) -> list[str]:
    """The layers numba loads here, each probed in its own process (all at once: this runs at collection)."""
    probes = {layer: subprocess.Popen([sys.executable, "-c", _PROBE], env=_env(layer), stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True) for layer in layers}
    found = []
    for layer, probe in probes.items():
        try:
            out, _ = probe.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            probe.kill()
            probe.communicate()
            continue
        if probe.returncode == 0 and out.strip() == layer:
            found.append(layer)
    return found


INSTALLED = _loadable(LAYERS)


def _tbb_installed() -> bool:
    try:
        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_layers_numba_can_load_include_workqueue_and_an_installed_tbb():
    """workqueue ships with numba; the ``tbb`` package (the test extra's) must give numba its tbb layer."""
    assert "workqueue" in INSTALLED
    if _tbb_installed():
        assert "tbb" in INSTALLED, "the tbb package is installed but numba cannot load its tbb threading layer"


_SCRIPT = """
import json, os, sys, threading, time
sys.path[:0] = [sys.argv[1], os.path.join(sys.argv[1], "tests")]
import numba
import numpy as np
from helpers.tokenizers import SPECIAL, WORDS, make_wordpiece_tokenizer, random_texts
from static_model import StaticModel, pooling

table = np.random.default_rng(0).normal(size=(len(SPECIAL) + len(WORDS), 8)).astype(np.float32)
# one batch of over 50,000 tokens (the parallel kernel), and small ones (always serial)
big = [" ".join([t] * 4) for t in random_texts(4000, 1)]
smalls = [random_texts(50, seed) for seed in range(2, 6)]
SETTINGS = [{"contrast": 0.0, "normalize": True}, {"contrast": 1.0, "normalize": False}]


def model():
    return StaticModel(table, make_wordpiece_tokenizer(), config={"normalize": True})


# the reference: one thread, the serial kernel only
threshold, pooling.PARALLEL_MIN_TOKENS = pooling.PARALLEL_MIN_TOKENS, 10**12
reference = model()
expected = {i: [reference.encode(b, **s) for b in [big] + smalls] for i, s in enumerate(SETTINGS)}
pooling.PARALLEL_MIN_TOKENS = threshold
assert sum(len(ids) for ids in reference.tokenize(big)) >= threshold

parallel_calls = []
parallel = pooling._pool_parallel


def counted(*args):
    parallel_calls.append(os.getpid())
    parallel(*args)


pooling._pool_parallel = counted
shared = model()
failures = []


def check(got, want, what):
    if not np.array_equal(got, want):
        failures.append(f"{what}: {int(np.sum(got != want))} values differ")


def encode_all(m, rounds, what, threads=None):
    for r in range(rounds):
        if threads:
            numba.set_num_threads(threads)  # per calling thread: each thread its own count
        for i, s in enumerate(SETTINGS):
            for k, batch in enumerate([big] + smalls):
                check(m.encode(batch, **s), expected[i][k], f"{what} round {r} settings {i} batch {k}")


encode_all(shared, 1, "first parallel call")
result = {"layer": numba.threading_layer(), "parallel_first": len(parallel_calls)}

# several threads on one model at once
threads = [threading.Thread(target=encode_all, args=(shared, 3, f"thread {t}", 1 + t % numba.config.NUMBA_NUM_THREADS))
           for t in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
result["parallel_threads"] = len(parallel_calls) - result["parallel_first"]
result["threads_failures"] = list(failures)


def child():
    try:
        encode_all(shared, 1, "child")
        m = model()  # a new model in the child: its caches and the kernels from scratch
        encode_all(m, 1, "child's new model")
        code = 3 if failures else 0
        if code:
            print(failures[:3], file=sys.stderr)
    except BaseException as exc:
        print(repr(exc), file=sys.stderr)
        code = 4
    sys.stderr.flush()
    os._exit(code)


def fork_and_wait():
    pid = os.fork()
    if pid == 0:
        child()
    for _ in range(1200):  # a hang guard, not a timing check: the child's work takes about a second
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


# forks while a thread of the parent keeps the parallel kernel busy: from the main thread, then from another one
stop = threading.Event()


def keep_busy():
    while not stop.is_set():
        encode_all(shared, 1, "busy")


busy = threading.Thread(target=keep_busy)
busy.start()
codes = [fork_and_wait() for _ in range(3)]
from_thread = []
for _ in range(3):
    forker = threading.Thread(target=lambda: from_thread.append(fork_and_wait()))
    forker.start()
    forker.join()
stop.set()
busy.join()
result["fork_codes"] = codes
result["thread_fork_codes"] = from_thread
before = len(parallel_calls)
failures.clear()
encode_all(shared, 2, "parent after the forks")
result["parallel_after_forks"] = len(parallel_calls) - before
result["failures"] = failures
print(json.dumps(result))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
@pytest.mark.parametrize("layer", INSTALLED)
def test_threads_and_forked_children_give_the_serial_vectors_on_each_layer(layer):
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT)], env=_env(layer), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["layer"] == layer
    assert result["parallel_first"] == 2  # the big batch, once per setting: the pool, on this layer
    assert result["threads_failures"] == []
    assert result["parallel_threads"] >= 1  # the threads' big batches used the pool (one call at a time)
    assert result["fork_codes"] == [0, 0, 0], proc.stderr[-4000:]
    assert result["thread_fork_codes"] == [0, 0, 0], proc.stderr[-4000:]
    assert result["parallel_after_forks"] >= 1  # the parent still uses its pool after the forks
    assert result["failures"] == []
