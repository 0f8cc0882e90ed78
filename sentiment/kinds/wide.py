"""Wide and deep: a classifier whose log-odds are joined by an NB-weighted n-gram model's in one
model folder (the issue's item 3; Cheng et al. 2016's wide & deep, with the n-gram score as the
wide part). The BiLSTM and the linear n-gram model err on different reviews, so the pair is
more accurate than either (BENCHMARKS.md, "Wide and deep").

A wide-and-deep folder is a model folder (PyTorch, or its ONNX export) with two more things:
``wide/``, a linear n-gram model (:mod:`sentiment.kinds.ngram`, fitted on the model's own training
reviews), and ``wide.json``, the head that joins them::

    P(positive) = sigmoid(deep_weight * deep log-odds + wide_weight * wide log-odds + bias)

Its three numbers are a logistic regression fitted on the model's validation reviews (the
stacking of :mod:`sentiment.kinds.stack` with two members), so the validation figure that
``wide.json`` records is the 10-fold cross-validated one. ``predict``, file scoring, ``serve``,
``evaluate`` and ``export --format onnx`` take such a folder like any other: the n-gram score
is a sparse dot product of the text's 1-3-grams, computed on the cleaned text beside the
model's forward pass.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..kinds.decisions import log_odds
from ..text.clean import clean_text

if TYPE_CHECKING:  # scikit-learn is imported only when a wide model is loaded or built
    from ..kinds.ngram import LinearModel

logger = logging.getLogger(__name__)
WIDE_FILE = "wide.json"
WIDE_FOLDER = "wide"
# what a wide-and-deep folder copies of the model it is built on
DEEP_FILES = ("config.json", "vocab.json", "model.safetensors")


@dataclass
class Wide:
    """The wide part of a wide-and-deep model and the head that joins it to the deep one."""

    linear: LinearModel
    deep_weight: float
    wide_weight: float
    bias: float

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The n-gram model's log-odds of each text, cleaned and cut as the deep model's
        tokens are (:meth:`sentiment.inference.predict.TextModel.tokens`), ``(N,)``."""
        from ..inference.predict import MAX_CHARS

        return self.linear.logits([clean_text(text[:MAX_CHARS]) for text in texts])

    def join(self, deep_logits, wide_logits):
        """The joined log-odds from the deep model's and the wide one's (NumPy arrays or torch
        tensors: explanations take gradients through it)."""
        return self.deep_weight * deep_logits + self.wide_weight * wide_logits + self.bias

    def probabilities(self, deep_probs: np.ndarray, wide_logits: np.ndarray) -> np.ndarray:
        """P(positive) from the deep model's P(positive) and the wide model's log-odds."""
        joined = self.join(log_odds(deep_probs), np.asarray(wide_logits, dtype=np.float64))
        return 1.0 / (1.0 + np.exp(-joined))

    @classmethod
    def load(cls, folder: str | Path) -> Wide | None:
        """The wide part of the model in ``folder``; None when it is not wide and deep."""
        folder = Path(folder)
        if not (folder / WIDE_FILE).is_file():
            return None
        from ..kinds.ngram import LinearModel

        head = json.loads((folder / WIDE_FILE).read_text(encoding="utf-8"))
        return cls(LinearModel.load(folder / WIDE_FOLDER), float(head["deep_weight"]),
                   float(head["wide_weight"]), float(head["bias"]))


def copy_wide(source: str | Path, output: str | Path) -> bool:
    """Copy ``source``'s wide part (``wide.json``, ``wide/``) into ``output`` (an export of it);
    whether there was one."""
    source, output = Path(source), Path(output)
    if not (source / WIDE_FILE).is_file():
        return False
    shutil.copy2(source / WIDE_FILE, output / WIDE_FILE)
    shutil.copytree(source / WIDE_FOLDER, output / WIDE_FOLDER, dirs_exist_ok=True)
    return True


def build_wide(model_dir: str | Path, output: str | Path, data: str | None = None,
               kind: str = "nb_lr", ngrams: int | None = 200_000) -> dict:
    """Make ``output`` a wide-and-deep copy of the classifier in ``model_dir``: its files, an
    n-gram model of ``kind`` fitted on the classifier's own training reviews (kept to the
    ``ngrams`` n-grams of largest weight; None keeps all), and the head joining the two,
    fitted on its validation reviews. ``data``: where the classifier's data is when not where
    its config says (a local copy of a hub dataset). Returns what ``wide.json`` records."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from ..kinds.checkpoint import read_config
    from ..kinds.ngram import LinearModel
    from ..kinds.stack import member_logits
    from ..train.prepare import classifier_splits

    model_dir, output = Path(model_dir), Path(output)
    if (model_dir / WIDE_FILE).is_file():
        raise ValueError(f"{model_dir} is already wide and deep; build on its deep model")
    missing = [name for name in DEEP_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} is not a saved classifier: {missing} missing "
                                "(an ensemble, ONNX export or linear model cannot be the deep "
                                "part)")
    config = read_config(model_dir)
    if config.task != "sentiment" or len(config.model.head.labels) != 2:
        raise ValueError(f"{model_dir}: wide and deep joins binary classifiers")
    data_config = config.data if data is None else type(config.data)(
        **{**asdict(config.data), "source": data})
    splits = classifier_splits(data_config, config.split_seed)
    linear = LinearModel.fit(kind, splits["train"]["text"], splits["train"]["label"],
                             config.model.head.labels)
    total = len(linear.ngrams)
    if ngrams is not None:
        linear = linear.pruned(ngrams)
    logger.info("%s fitted on %d training reviews; %d of its %d n-grams kept", kind,
                len(splits["train"]), len(linear.ngrams), total)
    valid = splits["valid"]
    labels = np.asarray(valid["label"])
    deep_logits = member_logits(model_dir, valid["text"])  # as a teacher scores its members
    wide_logits = linear.logits(valid["text"])  # the split's texts are cleaned already
    features = np.stack([deep_logits, wide_logits], 1)
    folds = cross_val_score(LogisticRegression(C=1.0, max_iter=1000), features, labels, cv=10)
    head = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
    (deep_weight, wide_weight), bias = head.coef_.ravel().tolist(), float(head.intercept_[0])
    record = {
        "deep_weight": deep_weight, "wide_weight": wide_weight, "bias": bias,
        "wide": {"kind": kind, "ngrams": len(linear.ngrams), "of": total,
                 "fitted_on": f"the {len(splits['train'])} training reviews of the model's split"},
        "head_fitted_on": f"the {len(labels)} validation reviews of the model's split "
                          "(a logistic regression, C=1)",
        "validation": {"n": len(labels),
                       "deep": float(((deep_logits > 0) == labels).mean()),
                       "wide": float(((wide_logits > 0) == labels).mean()),
                       "joined_cross_validated": float(folds.mean())},
        "deep_model": str(model_dir),
    }
    output.mkdir(parents=True, exist_ok=True)
    if output.resolve() != model_dir.resolve():  # else the model becomes wide where it is
        for name in DEEP_FILES:
            shutil.copy2(model_dir / name, output / name)
    linear.save(output / WIDE_FOLDER)
    (output / WIDE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    logger.info("wide and deep on %d validation reviews: deep %.4f, wide %.4f, joined %.4f "
                "(10-fold)", len(labels), record["validation"]["deep"],
                record["validation"]["wide"], record["validation"]["joined_cross_validated"])
    return record
