"""Helpers the tests share, imported as a package (``from helpers.teachers import make_wordpiece_teacher``; pytest's
``pythonpath`` puts ``tests/`` first on ``sys.path``, in every import mode). Fixtures live in ``conftest.py``."""
