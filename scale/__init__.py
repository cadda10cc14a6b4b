"""Past one machine: bulk encoding with a static model on a Ray cluster (a local one by default).

``scale.encode_files`` reads texts from text, JSONL or Parquet files, encodes them on every worker and streams
``(id, embedding)`` rows to Parquet partitions, resumable per partition; ``scale.featurize_on_ray`` runs
refinement's teacher pass in a pool of teacher workers and fills refine's featurize cache. Needs the ``scale`` extra
(``pip install "static-embeddings[scale]"``); ``static_model`` itself never imports Ray.
"""

from static_model.interrupts import exit_on_interrupt_while_starting

exit_on_interrupt_while_starting()  # first: a Ctrl-C in the seconds of imports below is one line and status 130

from scale.bulk_encode import EncodeReport, OutputError, encode_files, read_vectors
from scale.engine import FolderInUseError, WorkerError
from scale.featurize import FeaturizeReport, featurize_on_ray
from scale.inputs import InputError, Partition, plan_partitions
from scale.ray_data import EncodeBatches

__all__ = [
    "EncodeBatches", "EncodeReport", "FeaturizeReport", "FolderInUseError", "InputError", "OutputError", "Partition",
    "WorkerError",
    "encode_files", "featurize_on_ray", "plan_partitions", "read_vectors",
]
