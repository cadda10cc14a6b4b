"""Ctrl-C in every command line (``python -m distill``, ``distill.refine``, ``scale``, ``benchmarks``) while its
imports run and once it works: exit 130, one ``interrupted`` line, no traceback, nothing half-written
(``static_model.interrupts``).

The moments are observed, not timed: "while importing" is once the child process has mapped numba's library (only
``static_model`` imports numba, seconds before any ``main`` runs); "once it works" is its first output. Every command
is given real work of several seconds, so a signal that comes late still lands in its ``main``, which must answer it
the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.teachers import SENTENCES, make_wordpiece_teacher

from static_model.interrupts import is_command_line, started_module

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see a child's imports")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """A tiny teacher, its static model, a vocabulary of 10,000 new words (a pass of many seconds at batch size 1,
    so a loaded machine cannot finish it between the first output line and the signal), a corpus."""
    from distill import distill

    root = tmp_path_factory.mktemp("interrupt")
    teacher = make_wordpiece_teacher(root / "tiny-wp")
    model = root / "tiny-static"
    distill(str(teacher), pca_dims=8, show_progress_bar=False).save_pretrained(model)
    words = root / "words.txt"
    letters = ("abcdefghij", "klmnopqrst", "uvwxyzabcd", "efghijklmn")  # 10,000 words: a pass of many seconds
    words.write_text("\n".join(f"{a}{b}{c}{d}word" for a in letters[0] for b in letters[1] for c in letters[2]
                                for d in letters[3]))
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 200))
    return {"teacher": teacher, "model": model, "words": words, "corpus": corpus}


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd)


def wait_for_import_of(proc: subprocess.Popen, library: str) -> None:
    """Until the child has mapped a shared library whose path holds ``library`` (or has ended)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if library in Path(f"/proc/{proc.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.005)


def read_first_line(proc: subprocess.Popen) -> str:
    """The child's stderr up to its first whole line (``\\n``; a progress bar's ``\\r`` updates are not one), or
    all of it if it ends first."""
    assert proc.stderr is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(proc.stderr.fileno(), 1)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def interrupt(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGINT the child (it must still run) and collect its output."""
    try:
        assert proc.poll() is None, "the command ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def command(name: str, assets: dict[str, Path], out: Path) -> list[str]:
    """The command line ``name``, each with seconds of real work to do (``out``: what it would write)."""
    if name == "distill":
        return ["distill", str(assets["teacher"]), "-o", str(out), "--pca-dims", "8", "--vocabulary",
                str(assets["words"]), "--batch-size", "1"]
    if name == "distill.refine":
        return ["distill.refine", str(assets["model"]), "-o", str(out), "--teacher", str(assets["teacher"]),
                "--corpus", str(assets["corpus"]), "--epochs", "50", "--batch-size", "1",
                "--cache-dir", str(out.parent / "cache")]
    if name == "scale":
        return ["scale", "encode", str(assets["model"]), str(assets["corpus"]), "-o", str(out), "--workers", "1",
                "--partition-rows", "100"]
    return ["benchmarks", "speed", "-m", f"static:{assets['model']}", "--sentences", str(assets["corpus"]),
            "--repeats", "50", "--no-progress", "--out", str(out)]


@pytest.mark.parametrize("name", ["distill", "distill.refine", "scale", "benchmarks"])
def test_ctrl_c_while_the_command_imports(assets, tmp_path, name):
    # before: a KeyboardInterrupt traceback from inside numba's or numpy's import, and the process killed by SIGINT
    out = tmp_path / "out"
    proc = start(command(name, assets, out), tmp_path)
    wait_for_import_of(proc, "numba")
    stdout, stderr = interrupt(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("interrupted"), stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"]), list(tmp_path.iterdir())


def test_ctrl_c_once_the_distill_has_started_its_pass(assets, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = start(command("distill", assets, work / "model"), tmp_path)
    first = read_first_line(proc)  # transformers' "Loading weights" bar, ended: the teacher is loaded
    assert "Loading weights" in first, first
    stdout, stderr = interrupt(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.splitlines()[-1] == "interrupted", stderr
    assert "Saved" not in stdout and list(work.iterdir()) == []  # no model, no .model.tmp-* folder


def test_only_a_command_line_process_sets_the_start_up_handler():
    assert started_module(["python", "-X", "importtime", "-m", "distill.refine", "model"]) == "distill.refine"
    assert started_module(["python", "-Bmscale", "encode"]) == "scale"
    assert started_module(["python", "-c", "import distill", "-m", "distill"]) is None
    assert started_module(["python", "script.py", "-m", "distill"]) is None
    # this process is pytest: importing the packages changed nothing
    import benchmarks.quality.encoders  # noqa: F401
    import distill  # noqa: F401
    import scale  # noqa: F401

    assert not is_command_line() and signal.getsignal(signal.SIGINT) is signal.default_int_handler


SWALLOWED = """
import sys, time
from static_model.interrupts import redeliver_swallowed_interrupt
sys.unraisablehook = redeliver_swallowed_interrupt
class Finalizer:
    def __init__(self, error):
        self.error = error
    def __del__(self):
        raise self.error  # what a Ctrl-C landing in garbage collection looks like
Finalizer(ValueError("other"))  # any other exception: reported as ever, and the work goes on
try:
    Finalizer(KeyboardInterrupt())
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass
    print("went on")
except KeyboardInterrupt:
    print("interrupted the work")
"""


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_work(tmp_path):
    # before: "Exception ignored in ... KeyboardInterrupt" and the distill ran to the end with status 0
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert done.stdout.strip() == "interrupted the work", done
    assert "ValueError: other" in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
