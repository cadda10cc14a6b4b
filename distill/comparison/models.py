"""The two models ``compare`` measures: a static model and a teacher given as objects, or loaded here by folder or
name (the teacher by default the one the static model's config names, at the revision it records)."""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np


class BatchEncoder(Protocol):
    """What ``compare`` times: ``encode(texts, batch_size=...)``, one row a text (a ``StaticModel``, a
    ``Teacher``, or any object with that method)."""

    def encode(self, texts: list[str], /, *, batch_size: int) -> np.ndarray:
        """One row a text."""
        ...


def _same_device(a: str, b: str) -> bool:
    """Whether two torch device names name one device (``cuda`` is ``cuda:0``); unparsable names compare as text."""
    import torch

    try:
        da, db = torch.device(a), torch.device(b)
    except (RuntimeError, TypeError, ValueError):
        return a == b
    return da.type == db.type and (da.index or 0) == (db.index or 0)


def _check_teacher_device(teacher: object, device: str) -> None:
    """A ``ValueError`` naming ``device`` when a teacher object is not on it: ``device`` only places a teacher loaded
    here by name or folder, and a ``Teacher`` built on another device once ran there without a word."""
    on = getattr(teacher, "device", None)
    if on is None:
        raise ValueError(f"device={device!r} places a teacher loaded by name or folder, and the teacher given "
                         f"({type(teacher).__name__}) has no device to check; pass the teacher's name or folder, "
                         "or leave device out.")
    if not _same_device(str(on), str(device)):
        raise ValueError(f"device={device!r}, and the teacher given is on {on}: a teacher object is compared where "
                         f"it is; build it with Teacher(..., device={device!r}), pass its name or folder, or leave "
                         "device out.")


def load_models(
    static_model: BatchEncoder | str | os.PathLike, teacher: BatchEncoder | str | os.PathLike | None, device: str | None
) -> tuple[BatchEncoder, BatchEncoder]:
    """``(static model, teacher)`` as encoders, each loaded here when given by folder or name; no teacher is the one
    the static model's config names, at the revision it records; a teacher object is checked to be on ``device``."""
    if device is not None and teacher is not None and not isinstance(teacher, (str, os.PathLike)):
        _check_teacher_device(teacher, device)
    if isinstance(static_model, (str, os.PathLike)):
        from static_model import StaticModel

        static_model = StaticModel.from_pretrained(static_model)
    revision = None  # the teacher's commit the model's config records, for the teacher it names
    if teacher is None:
        config = getattr(static_model, "config", None) or {}
        teacher = config.get("teacher")
        if not teacher:
            raise ValueError("No teacher given and the static model's config names none; pass the teacher.")
        from distill.resolve import config_teacher_revision

        revision = config_teacher_revision(config)
        if isinstance(teacher, str):
            from distill.resolve import TeacherNotFoundError, resolve_teacher

            at = "" if revision is None else f" at revision {revision}"
            try:
                resolve_teacher(teacher, revision=revision)
            except TeacherNotFoundError as exc:
                raise TeacherNotFoundError(
                    f"The static model's config names the teacher {teacher!r}{at} (its public name), which is not "
                    f"found here; pass the teacher folder or name. ({exc})") from None
    if isinstance(teacher, (str, os.PathLike)):
        from distill.teacher import Teacher

        teacher = Teacher(teacher, device=device, revision=revision)
    return static_model, teacher
