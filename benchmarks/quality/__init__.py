"""The quality suite: evaluation data (``data``), task protocols (``tasks``) and their metrics (``metrics``), model
SPECs as encoders (``encoders``), the on-disk embedding cache (``cache``) and the ``quality`` command (``suite``)."""
