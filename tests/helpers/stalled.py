"""A command line run in a subprocess that featurizes in chunks of 64 passages and stalls (prints ``stalled``, then
sleeps) while it encodes the third chunk: where a test interrupts or kills it."""

from __future__ import annotations

import textwrap


def stalled_featurize_script(entry: str, *, one_torch_thread: bool = False) -> str:
    """The ``python -c`` script: ``entry`` is ``"distill"`` (``python -m distill``) or ``"refine"``
    (``python -m distill.refine``), run with ``sys.argv[1:]``; ``one_torch_thread``: torch on one thread, as the
    tests' own runs, so the targets are bit for bit the same."""
    main = {"distill": "from distill.__main__ import main", "refine": "main = cli.main"}[entry]
    threads = "import torch\ntorch.set_num_threads(1)\n" if one_torch_thread else ""
    return textwrap.dedent(
        """
        import sys, time
        from dataclasses import replace
        from distill.refine import cli
        from distill.refine import featurize as rf
        from distill.refine.config import FeaturizeConfig
        """
    ) + threads + main + "\n" + textwrap.dedent(
        """
        real_encode, real_config, calls = rf.encode_chunk, cli.config_from_args, []

        def encode(t, chunk, **kw):
            calls.append(len(chunk))
            if len(calls) == 3:
                print("stalled", flush=True)
                time.sleep(600)
            return real_encode(t, chunk, **kw)

        rf.encode_chunk = encode
        cli.config_from_args = lambda *a, **kw: replace(real_config(*a, **kw),
                                                        featurize=FeaturizeConfig(chunk_size=64))
        sys.exit(main(sys.argv[1:]))
        """
    )
