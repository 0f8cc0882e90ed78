"""Fitting the composites that stack log-odds with a logistic regression on a classifier's
validation reviews: a teacher (:mod:`sentiment.kinds.stack`: several members) and a wide-and-
deep model (:mod:`sentiment.kinds.wide`: an LSTM and an n-gram model). Both read the first
model's own split (:func:`own_splits`) and fit through :func:`fit_stack`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import Config
from ..jsonio import write_json
from ..kinds.checkpoint import read_config
from ..kinds.folder import DEEP_FILES, write_model_file
from ..kinds.ngram import KINDS, LinearModel
from ..kinds.registry import load_folder
from ..kinds.stack import Teacher, member_fingerprint, member_logits, split_of
from ..kinds.wide import WIDE_FILE, WIDE_FOLDER
from .prepare import classifier_splits

logger = logging.getLogger(__name__)


def own_splits(model_dir: str | Path, data: str | None = None) -> tuple[Config, dict]:
    """``(config, splits)``: a saved binary classifier's config and its own train / valid /
    test reviews. ``data``: where its source is when not where its config says (a local copy
    of a hub dataset)."""
    config = read_config(model_dir)
    if config.task != "sentiment" or len(config.model.head.labels) != 2:
        raise ValueError(f"{model_dir}: stacking joins binary classifiers; this is a "
                         f"{config.task!r} model with labels {config.model.head.labels}")
    source = config.data if data is None else replace(config.data, source=data)
    return config, classifier_splits(source, config.split_seed)


def fit_stack(features: np.ndarray, labels: np.ndarray) -> tuple[list[float], float, float]:
    """``(coef, intercept, cross_validated)``: a logistic regression (C=1) on the members'
    log-odds ``(N, M)``, and its 10-fold cross-validated accuracy on the same rows (its weights
    are fitted there, so its plain accuracy would flatter it)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    folds = cross_val_score(LogisticRegression(C=1.0, max_iter=1000), features, labels, cv=10)
    stack = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
    return stack.coef_.ravel().tolist(), float(stack.intercept_[0]), round(float(folds.mean()), 6)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(float(((logits > 0) == labels).mean()), 6)


def build_teacher(members: Sequence[str | Path], linear: Sequence[str], output: str | Path,
                  data: str | None = None) -> Teacher:
    """Fit ``linear`` n-gram members (``nb_lr``, ``tfidf_lr``) on the training reviews of the
    first member's split, score every member on its validation reviews, fit the stacking
    regression there and save the teacher in ``output``. ``data``: where that split's source
    is when not where the member's config says (a local copy of a hub dataset)."""
    if not members:
        raise ValueError("a teacher needs at least one saved classifier among its members")
    unknown = [kind for kind in linear if kind not in KINDS]
    if unknown:
        raise ValueError(f"unknown linear member(s) {unknown}; choose from {list(KINDS)}")
    output = Path(output)
    config, splits = own_splits(members[0], data)
    paths = [str(Path(m).resolve()) for m in members]
    for kind in linear:
        folder = output / f"linear-{kind}"
        LinearModel.fit(kind, splits["train"]["text"], splits["train"]["label"],
                        config.model.head.labels).save(folder)
        paths.append(str(folder.resolve()))
        logger.info("fitted %s on %d training reviews", kind, len(splits["train"]))
    valid = splits["valid"]
    labels = np.asarray(valid["label"])
    models = [load_folder(p) for p in paths]
    features = np.stack([member_logits(model, valid["text"]) for model in models], 1)
    coef, intercept, folds = fit_stack(features, labels)  # (N, M) features
    validation = {"n": len(labels),
                  "members": {Path(p).name: accuracy(features[:, i], labels)
                              for i, p in enumerate(paths)},
                  "stack_cross_validated": folds}
    teacher = Teacher(paths, coef, intercept, split_of(config.data, config.split_seed),
                      validation, list(config.model.head.labels),
                      [member_fingerprint(p) for p in paths])
    logger.info("teacher on %d validation reviews: members %s, stacked (10-fold) %.4f",
                len(labels), validation["members"], folds)
    teacher.save(output)
    teacher.models = models  # scored already: a teacher built here scores as one loaded
    return teacher


def build_wide(model_dir: str | Path, output: str | Path, data: str | None = None,
               kind: str = "nb_lr", ngrams: int | None = 200_000,
               ngram_model: str | Path | None = None) -> dict:
    """Make ``output`` a wide-and-deep copy of the classifier in ``model_dir``: its files, an
    n-gram model of ``kind`` fitted on the classifier's own training reviews (kept to the
    ``ngrams`` n-grams of largest weight; None keeps all), and the head joining the two,
    fitted on its validation reviews. ``data``: where the classifier's data is when not where
    its config says (a local copy of a hub dataset). ``ngram_model``: an n-gram model folder
    already fitted on the same training reviews (another wide model's ``wide/``), joined as it
    is instead of fitting one, so that the two can share it (:func:`share_ngrams`). Returns
    what ``wide.json`` records."""
    model_dir, output = Path(model_dir), Path(output)
    if (model_dir / WIDE_FILE).is_file():
        raise ValueError(f"{model_dir} is already wide and deep; build on its deep model")
    missing = [name for name in DEEP_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} is not a saved classifier: {missing} missing "
                                "(an ensemble, ONNX export or linear model cannot be the deep "
                                "part)")
    config, splits = own_splits(model_dir, data)
    if ngram_model is not None:
        linear = LinearModel.load(ngram_model)
        if linear.labels != list(config.model.head.labels):
            raise ValueError(f"{ngram_model} has labels {linear.labels}, not the model's "
                             f"{config.model.head.labels}")
        total, kind = len(linear.ngrams), linear.kind
        logger.info("%s from %s: %d n-grams", kind, ngram_model, len(linear.ngrams))
    else:
        linear = LinearModel.fit(kind, splits["train"]["text"], splits["train"]["label"],
                                 config.model.head.labels)
        total = len(linear.ngrams)
        if ngrams is not None:
            linear = linear.pruned(ngrams)
        logger.info("%s fitted on %d training reviews; %d of its %d n-grams kept", kind,
                    len(splits["train"]), len(linear.ngrams), total)
    labels = np.asarray(splits["valid"]["label"])
    deep = member_logits(load_folder(model_dir), splits["valid"]["text"])  # as a teacher's
    wide = linear.logits(splits["valid"]["text"])  # the split's texts are cleaned already
    (deep_weight, wide_weight), bias, folds = fit_stack(np.stack([deep, wide], 1), labels)
    record = {
        "deep_weight": deep_weight, "wide_weight": wide_weight, "bias": bias,
        "wide": {"kind": kind, "ngrams": len(linear.ngrams), "of": total,
                 "fitted_on": f"the {len(splits['train'])} training reviews of the model's split"
                 + (f" (the n-gram model of {ngram_model})" if ngram_model else "")},
        "head_fitted_on": f"the {len(labels)} validation reviews of the model's split "
                          "(a logistic regression, C=1)",
        "validation": {"n": len(labels), "deep": accuracy(deep, labels),
                       "wide": accuracy(wide, labels), "joined_cross_validated": folds},
        "deep_model": str(model_dir),
    }
    _write_wide(model_dir, output, linear, record, ngram_model)
    logger.info("wide and deep on %d validation reviews: deep %.4f, wide %.4f, joined %.4f "
                "(10-fold)", len(labels), record["validation"]["deep"],
                record["validation"]["wide"], folds)
    return record


def _write_wide(model_dir: Path, output: Path, linear: LinearModel, record: dict,
                ngram_model: str | Path | None = None) -> None:
    output.mkdir(parents=True, exist_ok=True)
    if output.resolve() != model_dir.resolve():  # else the model becomes wide where it is
        for name in DEEP_FILES:
            shutil.copy2(model_dir / name, output / name)
    if ngram_model is not None:  # its files as they are: byte for byte, so they can be shared
        shutil.copytree(ngram_model, output / WIDE_FOLDER, dirs_exist_ok=True)
    else:
        linear.save(output / WIDE_FOLDER)
    write_json(output / WIDE_FILE, record)
    write_model_file(output, "wide")
