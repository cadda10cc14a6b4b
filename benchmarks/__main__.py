"""``python -m benchmarks COMMAND ...``: every benchmark, one subcommand each (see ``--help`` of each).

Adding a command: a module with ``add_parser(subparsers) -> ArgumentParser`` (registers its name and options) and
``run(args) -> int``, listed once in ``COMMANDS``. ``run`` finds the command line as run in ``args.command_line``
(for the report's header).
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from static_model.interrupts import exit_on_interrupt_while_starting

exit_on_interrupt_while_starting()  # first: a Ctrl-C in the seconds of imports below is one line and status 130

from benchmarks import plot
from benchmarks.quality import suite
from benchmarks.speed import bulk, distill_time, models, runtime
from benchmarks.studies import (
    ablation,
    classify,
    cluster_seeds,
    fidelity,
    paired_bootstrap,
    protocol,
    refine_gap,
    refine_streaming,
    refine_variants,
    size,
    token_lengths,
)

COMMANDS: tuple[ModuleType, ...] = (
    suite, models, ablation, plot, classify,  # quality, speed, ablation, plot, classify
    protocol, fidelity, paired_bootstrap, cluster_seeds, token_lengths, refine_variants, refine_gap, refine_streaming,
    size,
    runtime, distill_time, bulk,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m benchmarks`` parser, one subcommand per module of ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="Benchmark suite for static embeddings.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(run=command.run)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Checks that need no model or data loaded: every -m SPEC, --device, --data, --out/--output (usage errors name
    them)."""
    from benchmarks.quality.data import resolve_data_dir
    from benchmarks.quality.encoders import SpecError, check_spec
    from distill.cli_checks import UsageError, check_device_option

    specs = getattr(args, "model", None)
    if isinstance(specs, list):  # classify's --model is one folder, checked by its own command
        for spec in specs:
            try:
                check_spec(spec)
            except SpecError as exc:
                raise UsageError(f"-m: {exc}") from None
    check_device_option(getattr(args, "device", None))
    data = getattr(args, "data", None)
    if data is not None:
        resolve_data_dir(data)  # a DataDirError (a UsageError) naming --data when it is not a folder
    check_out_options(args)


def check_out_options(args: argparse.Namespace) -> None:
    """``--out``/``--output``: a writable report name (``OUT.md``, ``OUT.json``), or with ``out_is_file`` (``plot``'s
    PNG) one writable file; checked before the run, a usage error naming the option."""
    from benchmarks.report import check_out, check_target

    for option in ("out", "output"):
        value = getattr(args, option, None)
        if value is None:
            continue
        if getattr(args, "out_is_file", False):
            check_target(value, f"--{option}")
        else:
            check_out(value, f"--{option}")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks ...``: usage errors (a bad ``-m`` spec, no data folder), malformed data files and an
    encoder's NaN or infinite output exit 2 with one ``error:`` line, Ctrl-C exits 130."""
    from benchmarks.quality.cache import EncoderOutputError
    from benchmarks.quality.data import DataDirError, DataFormatError
    from benchmarks.quality.encoders import SpecError
    from distill.cli_checks import run_cli

    arguments = list(sys.argv[1:] if argv is None else argv)

    def run() -> int:
        args = build_parser().parse_args(arguments)
        check_args(args)
        args.command_line = ["python", "-m", "benchmarks", *arguments]
        return int(args.run(args) or 0)

    return run_cli(run, expected=(SpecError, DataFormatError, DataDirError, EncoderOutputError))


if __name__ == "__main__":
    from distill.cli_checks import exit_process

    exit_process(main())
