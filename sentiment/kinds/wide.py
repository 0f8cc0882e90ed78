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
``evaluate`` and ``export --format onnx`` take such a folder like any other (kind ``wide``;
:func:`sentiment.train.stacking.build_wide` makes one): the n-gram score
is a sparse dot product of the text's 1-3-grams, computed on the cleaned text beside the
model's forward pass.

Two wide-and-deep models built on the same training reviews hold the same n-gram model (it is
fitted the same way, seeded), so a folder may point at another's instead of holding a copy:
``"ngram_folder": "../reviews/wide"`` in ``wide.json`` (relative to the folder, with the files'
``ngram_sha256``, checked when loaded; a routed model's members share one this way:
:func:`share_ngrams` writes it). An export copies the n-gram model in, whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..jsonio import read_json, write_json
from ..text.clean import cleaned
from .decisions import log_odds, sigmoid

if TYPE_CHECKING:
    from .ngram import LinearModel

WIDE_FILE = "wide.json"
WIDE_FOLDER = "wide"
# what a wide-and-deep folder copies of the model it is built on


@dataclass
class Wide:
    """The wide part of a wide-and-deep model and the head that joins it to the deep one."""

    linear: LinearModel
    deep_weight: float
    wide_weight: float
    bias: float

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The n-gram model's log-odds of each text, cleaned and cut as the deep model's
        tokens are (:meth:`sentiment.kinds.base.TextModel.tokens`), ``(N,)``."""
        return self.linear.logits(cleaned(texts))

    def join(self, deep_logits, wide_logits):
        """The joined log-odds from the deep model's and the wide one's (NumPy arrays or torch
        tensors: explanations take gradients through it)."""
        return self.deep_weight * deep_logits + self.wide_weight * wide_logits + self.bias

    def probabilities(self, deep_probs: np.ndarray, wide_logits: np.ndarray) -> np.ndarray:
        """P(positive) from the deep model's P(positive) and the wide model's log-odds."""
        return sigmoid(self.join(log_odds(deep_probs), np.asarray(wide_logits,
                                                                   dtype=np.float64)))

    @classmethod
    def load(cls, folder: str | Path) -> Wide | None:
        """The wide part of the model in ``folder``; None when it is not wide and deep."""
        folder = Path(folder)
        if not (folder / WIDE_FILE).is_file():
            return None
        from .ngram import LinearModel

        head = read_json(folder / WIDE_FILE)
        return cls(LinearModel.load(ngram_folder(folder, head)), float(head["deep_weight"]),
                   float(head["wide_weight"]), float(head["bias"]))


NGRAM_FILES = ("linear.json", "ngrams.json", "linear.safetensors")  # what an n-gram model is


def ngram_digest(folder: Path) -> str:
    """The SHA-256 of an n-gram model's files (:data:`NGRAM_FILES`, in order)."""
    digest = hashlib.sha256()
    for name in NGRAM_FILES:
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()


def ngram_folder(folder: Path, head: dict) -> Path:
    """Where the wide part of the model in ``folder`` (its ``wide.json`` being ``head``) is:
    its own ``wide/``, or the folder ``ngram_folder`` names, relative to it, checked to be the
    n-gram model the head was fitted with (``ngram_sha256``)."""
    if "ngram_folder" not in head:
        return folder / WIDE_FOLDER
    shared = (folder / head["ngram_folder"]).resolve()
    if ngram_digest(shared) != head.get("ngram_sha256"):
        raise ValueError(f"{folder / WIDE_FILE} names {shared} as its n-gram model, but that "
                         "is not the n-gram model its head was fitted with (ngram_sha256)")
    return shared


def share_ngrams(folder: str | Path, owner: str | Path) -> Path:
    """Make the wide-and-deep model in ``folder`` read the n-gram model of the one in ``owner``
    instead of its own copy: the two must be byte for byte the same (as two wide models built
    on the same training reviews are); its ``wide/`` is removed and ``wide.json`` names
    ``owner``'s, relative to ``folder``, with its digest."""
    folder, owner = Path(folder), Path(owner)
    head = read_json(folder / WIDE_FILE)
    theirs = ngram_folder(owner, read_json(owner / WIDE_FILE)).resolve()
    if ngram_digest(ngram_folder(folder, head)) != ngram_digest(theirs):
        raise ValueError(f"{folder} and {owner} hold different n-gram models: each keeps its own")
    if "ngram_folder" not in head:
        shutil.rmtree(folder / WIDE_FOLDER)
    head.update(ngram_folder=os.path.relpath(theirs, folder.resolve()),
                ngram_sha256=ngram_digest(theirs))
    write_json(folder / WIDE_FILE, head)
    return folder


def copy_wide(source: str | Path, output: str | Path) -> bool:
    """Copy ``source``'s wide part (``wide.json``, ``wide/``) into ``output`` (an export of it);
    whether there was one."""
    source, output = Path(source), Path(output)
    if not (source / WIDE_FILE).is_file():
        return False
    head = read_json(source / WIDE_FILE)
    shutil.copytree(ngram_folder(source, head), output / WIDE_FOLDER, dirs_exist_ok=True)
    head.pop("ngram_folder", None)  # the copy holds its own
    head.pop("ngram_sha256", None)
    write_json(output / WIDE_FILE, head)
    return True
