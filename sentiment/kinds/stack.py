"""A teacher for distillation: saved classifiers of different kinds (LSTMs, linear n-gram
models) stacked by a logistic regression on their log-odds, fitted on the validation split only.

A teacher is a folder: ``stack.json`` (the members, the stacking weights, the data split it was
fitted on and its validation figures) and a folder per linear member it fitted itself. Members
are scored on the classifier's own split, so the teacher and a student trained from it share
their training, validation and test reviews.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from ..config import ENSEMBLE_FILE, ONNX_FILE, ReviewData
from ..kinds.checkpoint import read_config
from ..kinds.decisions import log_odds
from ..kinds.ngram import KINDS, LINEAR_FILE, LinearModel, is_linear

logger = logging.getLogger(__name__)
STACK_FILE = "stack.json"
# the split a teacher was fitted on: a student must use the same one
SPLIT_FIELDS = ("source", "text_column", "label_column", "test_fraction", "train_split",
                "test_split", "train_limit", "valid_fraction")
# the files whose bytes make a member what it is: a model's weights and settings (a training
# run's folder also holds reports and logs, which may be written again without changing it)
FINGERPRINT_FILES = ("config.json", "vocab.json", "model.safetensors", ENSEMBLE_FILE,
                     ONNX_FILE, LINEAR_FILE, "ngrams.json", "linear.safetensors", STACK_FILE)


def member_fingerprint(path: str | Path) -> str:
    """SHA-256 over a member folder's :data:`FINGERPRINT_FILES`: the stacking weights hold only
    for the members they were fitted on, so a teacher refuses to load once a member changed."""
    folder = Path(path)
    digest = hashlib.sha256()
    files = [folder / name for name in FINGERPRINT_FILES if (folder / name).is_file()]
    if not files:
        raise FileNotFoundError(f"{folder}: none of a model's files "
                                f"({', '.join(FINGERPRINT_FILES)})")
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


def member_logits(path: str | Path, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The log-odds of the positive label a saved classifier (LSTM, ensemble or linear) gives
    each text, ``(N,)``."""
    if is_linear(path):
        return LinearModel.load(path).logits(texts)
    from ..inference.predict import load_model

    model = load_model(path)
    if model.num_classes != 2:
        raise ValueError(f"{path}: a teacher's members are binary classifiers")
    # as predict scores them (a wide-and-deep member: its joined score)
    return log_odds(model.with_wide(model.probabilities(model.encode(texts), batch_size,
                                                        16_384), texts))


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

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The teacher's log-odds of the positive label for each text, ``(N,)``."""
        features = np.stack([member_logits(m, texts, batch_size) for m in self.members], 1)
        return features @ np.asarray(self.coef) + self.intercept

    def save(self, directory: str | Path) -> Path:
        """``stack.json``; members inside ``directory`` are recorded relative to it, so the
        folder can move."""
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        members = [str(Path(m).resolve().relative_to(directory))
                   if Path(m).resolve().is_relative_to(directory) else str(Path(m).resolve())
                   for m in self.members]
        (directory / STACK_FILE).write_text(
            json.dumps({**asdict(self), "members": members}, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Teacher:
        path = Path(directory) / STACK_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no teacher at {directory} (no {STACK_FILE}); build one "
                                    "with sentiment teacher --members ... --output DIR")
        values = json.loads(path.read_text(encoding="utf-8"))
        values["members"] = [str(Path(directory) / m) for m in values["members"]]
        teacher = cls(**values)
        teacher.check_members()  # once, here: not on every scoring call of a served teacher
        return teacher


def is_teacher(directory: str | Path) -> bool:
    return (Path(directory) / STACK_FILE).is_file()


class TextScoringModel:
    """A linear n-gram model or a teacher, loaded like any model: ``score`` has the signature
    of :meth:`sentiment.inference.predict.SentimentModel.score`, so ``predict``, file scoring and
    ``sentiment serve`` take it. It runs on the CPU, without torch's model code."""

    num_classes = 2

    def __init__(self, path: str | Path):
        self.path = str(path)
        if is_teacher(path):
            teacher = Teacher.load(path)
            self._logits, self.labels = teacher.logits, list(teacher.labels)
        else:
            linear = LinearModel.load(path)
            self._logits, self.labels = linear.logits, list(linear.labels)
        self.device = torch.device("cpu")

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """P(second label) per text, ``(N,)`` (the batch arguments do not apply)."""
        from ..inference.predict import MAX_CHARS
        from ..text.clean import clean_text

        logits = self._logits([clean_text(text[:MAX_CHARS]) for text in texts])
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, max_tokens: int | None = None) -> list[dict]:
        """``{"label", "score"}`` (and ``"scores"``) per text, in input order."""
        from ..kinds.decisions import to_results

        return to_results(self.text_probabilities(texts), self.labels, all_scores)

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        raise ValueError(f"{self.path} is a linear or stacked model: explanations need a model "
                         "with a word embedding")

    def __repr__(self) -> str:
        return f"TextScoringModel(path={self.path!r})"


def build_teacher(members: Sequence[str | Path], linear: Sequence[str], output: str | Path,
                  data: str | None = None) -> Teacher:
    """Fit ``linear`` n-gram members (``nb_lr``, ``tfidf_lr``) on the training reviews of the
    first member's split, score every member on its validation reviews, fit the stacking
    regression there and save the teacher in ``output``. ``data``: where that split's source
    is when not where the member's config says (a local copy of a hub dataset)."""
    from ..train.prepare import classifier_splits

    if not members:
        raise ValueError("a teacher needs at least one saved classifier among its members")
    unknown = [kind for kind in linear if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown linear member(s) {unknown}; choose from {list(KINDS)}")
    output = Path(output)
    config = read_config(members[0])
    if config.task != "sentiment":
        raise ValueError(f"{members[0]} is a {config.task!r} model, not a classifier")
    data_config = config.data if data is None else type(config.data)(
        **{**asdict(config.data), "source": data})
    splits = classifier_splits(data_config, config.split_seed)
    paths = [str(Path(m).resolve()) for m in members]
    for kind in linear:
        folder = output / f"linear-{kind}"
        LinearModel.fit(kind, splits["train"]["text"], splits["train"]["label"],
                        config.model.head.labels).save(folder)
        paths.append(str(folder.resolve()))
        logger.info("fitted %s on %d training reviews", kind, len(splits["train"]))
    valid = splits["valid"]
    labels = np.asarray(valid["label"])
    features = np.stack([member_logits(p, valid["text"]) for p in paths], 1)  # (N, M)
    stack = LogisticRegression(C=1.0, max_iter=1000)
    # the stack's own figure: 10-fold cross-validation on validation (its weights are fitted
    # there, so its plain validation accuracy would flatter it)
    folds = cross_val_score(LogisticRegression(C=1.0, max_iter=1000), features, labels, cv=10)
    stack.fit(features, labels)
    validation = {
        "n": len(labels),
        "members": {Path(p).name: float(((features[:, i] > 0) == labels).mean())
                    for i, p in enumerate(paths)},
        "stack_cross_validated": float(folds.mean()),
    }
    teacher = Teacher(paths, stack.coef_.ravel().tolist(), float(stack.intercept_[0]),
                      split_of(config.data, config.split_seed), validation,
                      list(config.model.head.labels), [member_fingerprint(p) for p in paths])
    logger.info("teacher on %d validation reviews: members %s, stacked (10-fold) %.4f",
                len(labels), validation["members"], validation["stack_cross_validated"])
    teacher.save(output)
    return teacher
