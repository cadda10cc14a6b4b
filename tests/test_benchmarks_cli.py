"""The benchmarks package's shape: every module imports on its own (no cycle), every command is registered once
through the one registry, and each answers --help."""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import REPO

import benchmarks
from benchmarks.__main__ import COMMANDS, build_parser

MODULES = ["benchmarks", *sorted(m.name for m in pkgutil.walk_packages(benchmarks.__path__, "benchmarks."))]


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """A cycle or a module that needs another imported first fails here (each import is a fresh process)."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    failed = []
    for name in MODULES:
        proc = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            failed.append(f"{name}: {proc.stderr.strip().splitlines()[-1]}")
    assert not failed
    assert {"benchmarks.quality.suite", "benchmarks.speed.models", "benchmarks.studies.ablation",
            "benchmarks.report", "benchmarks.provenance"} <= set(MODULES)


def test_one_registry_and_every_command_in_it():
    """Every module with a ``run`` and an ``add_parser`` is a command listed in ``COMMANDS``, and nothing else
    is an entry point (no ``__main__`` block outside ``benchmarks/__main__.py``)."""
    import importlib

    commands = {m.__name__ for m in COMMANDS}
    found = set()
    for name in MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "add_parser") and hasattr(module, "run"):
            found.add(name)
        if name != "benchmarks.__main__":
            assert 'if __name__ == "__main__"' not in Path(module.__file__).read_text(), name
    assert found == commands and len(COMMANDS) == len(commands)
    class Recorder:  # stands in for argparse's subparsers: records each command's name
        names: list[str] = []

        def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
            self.names.append(name)
            return argparse.ArgumentParser(prog=name)

    recorder = Recorder()
    for command in COMMANDS:
        command.add_parser(recorder)
    build_parser()  # and argparse accepts them all (no name twice)
    assert recorder.names == ["quality", "speed", "ablation", "plot", "classify", "protocol", "fidelity",
                              "paired-bootstrap", "cluster-seeds", "token-lengths", "refine-variants", "refine-gap",
                              "refine-streaming", "size", "runtime-speed", "distill-speed", "scale-speed"]


@pytest.mark.parametrize("command", ["quality", "ablation", "protocol", "size", "runtime-speed", "distill-speed"])
def test_help_of_a_command_as_a_user_runs_it(command):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", command, "--help"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: python -m benchmarks {command}")


def test_the_wheel_ships_the_runtime_and_distill_but_not_benchmarks(tmp_path):
    """benchmarks/ is a tool of the checkout, deliberately left out of the wheel (see pyproject's packages.find)."""
    import os
    import shutil
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "static_model", "distill", "scale", "benchmarks"):
        f = REPO / name
        if f.is_dir():
            shutil.copytree(f, src / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
        else:
            shutil.copy(f, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheels"), str(src)], check=True, env=env, capture_output=True)
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist() if "/" in name}
    assert {"static_model", "distill", "scale"} <= tops and "benchmarks" not in tops


def test_a_missing_data_folder_is_one_error_line_and_the_usage_status(tmp_path, monkeypatch, capsys):
    """No data folder (``--data`` not a folder, or none given and no default): ``error: ...`` and exit 2, as for the
    CLI's other usage errors (an unknown -m spec), never a traceback or a bare ``sys.exit`` message."""
    from benchmarks.__main__ import main
    from benchmarks.quality import data

    monkeypatch.delenv("STATIC_EMBEDDINGS_DATA", raising=False)
    monkeypatch.setattr(data, "SOURCE_ROOT", tmp_path / "checkout")
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    a_file = tmp_path / "not-a-folder.txt"
    a_file.write_text("x")
    runs = {
        "none": (["quality", "-m", "st:x", "--cache", "none"], "error: no --data given and no default data folder"),
        "file": (["quality", "-m", "st:x", "--data", str(a_file)], f"error: --data {a_file}: not a folder"),
        "spec": (["quality", "-m", "nope:x", "--data", str(tmp_path)], "error: -m: "),
        # an empty --data was taken as "not given": the default data folder was used in its place, silently
        "empty": (["quality", "-m", "st:x", "--data", ""], "error: --data is empty"),
        "empty, a str option": (["runtime-speed", str(tmp_path), "--data", ""], "error: --data is empty"),
        # an empty --output was read as Path("") == "." and named as "--output ."
        "empty output": (["runtime-speed", str(tmp_path), "--output", ""], "error: --output is empty"),
        "empty output, scale-speed": (["scale-speed", str(tmp_path), "--output", " "], "error: --output is empty"),
        "empty output, distill-speed": (["distill-speed", "--output", ""], "error: --output is empty"),
    }
    for name, (argv, start) in runs.items():
        rc = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith(start), (name, err)
