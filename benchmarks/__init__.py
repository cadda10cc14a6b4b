"""Benchmarks for static models, their teachers and Model2Vec, grouped by job.

- ``benchmarks.quality``: the task suite (data, tasks, metrics, encoders, the embedding cache) and ``quality``.
- ``benchmarks.speed``: ``speed`` (the speed table), ``runtime-speed``, ``distill-speed``, ``scale-speed``.
- ``benchmarks.studies``: one question each (``ablation``, ``protocol``, ``paired-bootstrap``, ``cluster-seeds``,
  ``token-lengths``, ``refine-variants``, ``refine-gap``, ``classify``).
- ``benchmarks.report`` writes every report (Markdown + JSON); ``benchmarks.provenance`` records the command,
  machine, date and versions; ``benchmarks.plot`` draws quality against speed.

CLI: ``python -m benchmarks COMMAND --help`` (the commands are listed once, in ``benchmarks.__main__``). Library use::

    from benchmarks.quality import data, tasks
    datasets = data.load_available(data.select(root), root)
    results = tasks.evaluate_all(encoder, datasets)   # encoder: anything with encode(list[str]) -> (n, d)
"""
