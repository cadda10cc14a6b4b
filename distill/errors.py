"""``SettingError``: a distill setting out of range, naming the parameter so that the command line can name its
option (``--pca-dims`` for ``pca_dims``)."""

from __future__ import annotations


class SettingError(ValueError):
    """A ``ValueError`` about one setting; ``setting`` is the parameter's name."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
