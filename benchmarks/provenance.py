"""Where and with what a benchmark ran: the command, the date, the machine and the library versions.

The one machine/version probe of ``benchmarks``: every report's header (``benchmarks.report``) and every speed
worker's environment come from here.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The checkout ``benchmarks`` runs from (its subprocesses get it on ``PYTHONPATH``; its git commit is recorded)."""

# Distributions whose versions a report records (those installed; importlib.metadata, nothing is imported).
PACKAGES = ("numpy", "scipy", "scikit-learn", "torch", "transformers", "tokenizers", "sentence-transformers",
            "model2vec", "numba", "static-embeddings")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info() -> dict:
    """CPU, cores, memory, platform and the load average now (a shared machine's noise)."""
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_name(), "cores": usable_cores(), "memory_gib": mem, "platform": platform.platform(),
            "load_average_at_start": load}


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Python's and each installed package's version, and the checkout's git commit when there is one."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=SOURCE_ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if commit:
        out["git_commit"] = commit
    return out


def command_line(argv: list[str]) -> str:
    """``argv`` as a command one can paste back (``python -m benchmarks`` unquoted, the arguments quoted)."""
    head = argv[:3] if argv[:2] == ["python", "-m"] else argv[:1]
    return " ".join([*head, *map(shlex.quote, argv[len(head):])])


def utc_now() -> str:
    """The date and minute, UTC, as reports write it."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}"


def provenance(argv: list[str] | None = None) -> dict:
    """The run's command (``argv``, e.g. ``["python", "-m", "benchmarks", "quality", ...]``; default this process's
    ``sys.argv``), date, machine and versions: the ``meta`` of every JSON report and the header of every Markdown
    one."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith("__main__.py"):
        argv = ["python", "-m", "benchmarks", *argv[1:]]
    return {"command": command_line(argv), "date": utc_now(), "machine": machine_info(), "versions": versions()}


def provenance_markdown(meta: dict) -> str:
    """The header lines of a Markdown report (``- Command: ...``, date, machine, versions)."""
    m, v = meta.get("machine", {}), meta.get("versions", {})
    vs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    load = m.get("load_average_at_start")
    return (f"- Command: `{meta.get('command', '')}`\n- Date: {meta.get('date', '')}\n"
            f"- Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gib', '?')} GiB"
            f"{'; load average at start ' + str(load) if load else ''}\n"
            f"- Versions: {vs}\n")


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``SOURCE_ROOT`` first on ``PYTHONPATH`` (a worker imports this checkout's
    packages, installed or not) and ``extra`` set."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SOURCE_ROOT) + (os.pathsep + old if old else "")
    env.update(extra)
    return env
