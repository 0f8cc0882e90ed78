"""A teacher for distillation: saved classifiers of different kinds (LSTMs, linear n-gram
models) stacked by a logistic regression on their log-odds, fitted on the validation split only.

A teacher is a folder: ``stack.json`` (the members, the stacking weights, the data split it was
fitted on and its validation figures) and a folder per linear member it fitted itself. Members
are scored on the classifier's own split, so the teacher and a student trained from it share
their training, validation and test reviews.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import SPLIT_FIELDS, ReviewData
from ..jsonio import read_json, write_json
from .folder import CONTENT_FILES, write_model_file
from .logit import LogitModel

logger = logging.getLogger(__name__)
STACK_FILE = "stack.json"
def member_fingerprint(path: str | Path) -> str:
    """SHA-256 over a member folder's model files (:data:`~sentiment.kinds.folder.CONTENT_FILES`:
    its weights and settings, not the reports and logs a run folder also holds): the stacking
    weights hold only for the members they were fitted on, so a teacher refuses to load once a
    member changed."""
    folder = Path(path)
    digest = hashlib.sha256()
    files = [folder / name for name in CONTENT_FILES if (folder / name).is_file()]
    if not files:
        raise FileNotFoundError(f"{folder}: none of a model's files "
                                f"({', '.join(CONTENT_FILES)})")
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def split_of(data: ReviewData, seed: int) -> dict:
    """The fields of ``data`` (and the seed) that define the classifier's split."""
    return {**{name: getattr(data, name) for name in SPLIT_FIELDS}, "seed": seed}


def check_split(teacher: Teacher, data: ReviewData, seed: int) -> None:
    """A student must split its data as its teacher did (the source may be another copy):
    else the teacher's members and stacking have seen the student's validation reviews."""
    theirs, ours = teacher.split, split_of(data, seed)
    differ = [name for name in ours if name != "source" and theirs.get(name) != ours[name]]
    if differ:
        raise ValueError("the student's data split differs from its teacher's in "
                         + ", ".join(f"{n} ({ours[n]!r} vs the teacher's {theirs.get(n)!r})"
                                     for n in differ))


def member_logits(model, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The log-odds of the positive label a loaded binary classifier (LSTM, wide and deep,
    ensemble, export or n-gram model) gives each text, ``(N,)``: as predict scores it."""
    if len(model.labels) != 2:
        raise ValueError(f"{model.path}: a teacher's members are binary classifiers")
    return model.text_logits(texts, batch_size)


@dataclass
class Teacher:
    """Members (folders) and the stacking regression over their log-odds."""

    members: list[str]
    coef: list[float]
    intercept: float
    split: dict
    validation: dict
    labels: list[str] = field(default_factory=lambda: ["negative", "positive"])
    # member_fingerprint of each member when the stack was fitted (empty: an older teacher)
    fingerprints: list[str] = field(default_factory=list)

    def check_members(self) -> None:
        """Raise if a member's files changed since the stack was fitted (a folder overwritten
        by another model, say): its weights would be applied to a model they were not fitted
        on. A teacher saved before fingerprints were recorded is only warned about."""
        if not self.fingerprints:
            logger.warning("this teacher recorded no fingerprints of its members: nothing "
                           "checks that %s are the models its stack was fitted on", self.members)
            return
        changed = [m for m, f in zip(self.members, self.fingerprints, strict=True)
                   if member_fingerprint(m) != f]
        if changed:
            raise ValueError(f"teacher member(s) {changed} changed since the teacher was "
                             "fitted: its stacking weights no longer apply; build the teacher "
                             "again (sentiment teacher --members ... --output DIR)")

    def load_members(self, load_member) -> Teacher:
        """Load the members once, with ``load_member`` (the registry's loader); returns self."""
        self.models = [load_member(member) for member in self.members]
        return self

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The teacher's log-odds of the positive label for each text, ``(N,)``."""
        models = getattr(self, "models", None)
        if models is None:
            raise ValueError("the teacher's members are not loaded: Teacher.load(folder, "
                             "load_member) or load_members(load_member) first")
        features = np.stack([member_logits(m, texts, batch_size) for m in models], 1)
        return features @ np.asarray(self.coef) + self.intercept

    def save(self, directory: str | Path) -> Path:
        """``stack.json``; members inside ``directory`` are recorded relative to it, so the
        folder can move."""
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        members = [str(Path(m).resolve().relative_to(directory))
                   if Path(m).resolve().is_relative_to(directory) else str(Path(m).resolve())
                   for m in self.members]
        write_json(directory / STACK_FILE, {**asdict(self), "members": members})
        write_model_file(directory, "stack")
        return directory

    @classmethod
    def load(cls, directory: str | Path, load_member=None) -> Teacher:
        path = Path(directory) / STACK_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no teacher at {directory} (no {STACK_FILE}); build one "
                                    "with sentiment teacher --members ... --output DIR")
        values = read_json(path)
        values["members"] = [str(Path(directory) / m) for m in values["members"]]
        teacher = cls(**values)
        teacher.check_members()  # once, here: not on every scoring call of a served teacher
        if load_member is not None:  # once, here, not per batch or per thread
            teacher.load_members(load_member)
        return teacher


class StackModel(LogitModel):
    """A saved teacher, loaded like any classifier (kind ``stack``): its members' log-odds
    stacked, on the CPU."""

    kind = "stack"

    def __init__(self, path: str | Path, members=None):
        if members is None:
            raise ValueError("a stacked teacher loads its members: load it with "
                             "sentiment.kinds.registry.load_model")
        self.teacher = Teacher.load(path, members)
        super().__init__(path, self.teacher.labels, self.teacher.logits)
        # the words any of its members knows
        self.words = frozenset().union(*(model.words for model in self.teacher.models))


MODEL = StackModel
