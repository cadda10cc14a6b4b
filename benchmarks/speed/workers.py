"""What the speed benchmarks share: each measurement runs in a fresh Python subprocess that prints one
``RESULT {json}`` line; resident memory is read from ``/proc/self/status``; the default sentence sample."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from benchmarks.provenance import subprocess_env

RESULT = "RESULT "


def read_status_kb(field: str = "VmRSS") -> int | None:
    """``field`` (VmRSS, VmHWM, ...) of this process's ``/proc/self/status`` in kB; None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def print_result(result: dict) -> None:
    """A worker's answer: one ``RESULT {json}`` line on stdout."""
    print(RESULT + json.dumps(result), flush=True)


def run_worker(args: list[str], *, env: dict[str, str] | None = None,
               timeout: float | None = None) -> tuple[dict | None, str]:
    """Run ``python ARGS`` with this checkout first on ``PYTHONPATH``: (its ``RESULT`` dict, its stderr), or
    (None, the last line of its error output) when it printed no result."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else subprocess_env(), check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):]), proc.stderr
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]  # the exception's message, not its traceback
    return None, " | ".join(tail) or f"exit code {proc.returncode}"


def sample_sentences(path: str | os.PathLike, n: int, seed: int = 42) -> list[str]:
    """A fixed-seed sample of ``n`` non-empty lines of ``path`` (reads all lines once)."""
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    lines = [line for line in lines if line]
    rng = random.Random(seed)
    if n < len(lines):
        lines = rng.sample(lines, n)
    return lines


def default_sentences_file() -> Path | None:
    """``<data>/corpus_general/sentences.txt`` of the default data folder, when it is there."""
    from benchmarks.quality.data import default_data_dir

    root = default_data_dir()
    if root is None:
        return None
    p = root / "corpus_general" / "sentences.txt"
    return p if p.is_file() else None
