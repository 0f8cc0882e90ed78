"""A confidence cascade: a fast model scores every text, and the texts it is unsure of go to a
slower, more accurate one. ``cascade.json`` in a folder names the two (paths relative to the
folder, so it can move with them) and the threshold::

    {"fast": "fast", "full": "../imdb-onnx", "threshold": 0.97}

A text keeps the fast model's label and score when that score (the probability of its label)
is at least ``threshold``; otherwise the full model's stand. Both models must be binary and
share their labels. ``sentiment cascade`` chooses the threshold on the full model's validation
reviews (:func:`sentiment.train.thresholds.validation_sweep`) and writes the folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..jsonio import read_json, write_json
from .decisions import Answers, to_results
from .protocol import supports
from .registry import LoadOptions, load_folder, write_model_file

CASCADE_FILE = "cascade.json"


def is_cascade(path: str | Path) -> bool:
    return (Path(path) / CASCADE_FILE).is_file()


def save_cascade(fast: str | Path, full: str | Path, threshold: float,
                 output: str | Path) -> Path:
    """Write ``output/cascade.json``: ``fast`` first, ``full`` for the texts ``fast`` scores
    below ``threshold`` (in [0.5, 1]). The members are checked to load and to share labels."""
    if not 0.5 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability in [0.5, 1], not {threshold}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    spec = {"fast": os.path.relpath(Path(fast).resolve(), output.resolve()),
            "full": os.path.relpath(Path(full).resolve(), output.resolve()),
            "threshold": threshold}
    _members(output, spec, LoadOptions())  # refuses before the file is written
    write_json(output / CASCADE_FILE, spec)
    write_model_file(output, "cascade")
    return output


def _members(path: Path, spec: dict, options: LoadOptions):
    fast, full = (load_folder((path / spec[name]).resolve(), options)
                  for name in ("fast", "full"))
    for member in (fast, full):
        if member.kind == "cascade" or len(member.labels) != 2:
            raise ValueError(f"a cascade's members are binary classifiers; {member.path} is not")
    if not supports(full, "score_ids"):  # its config names the data split evaluate reads
        raise ValueError(f"a cascade's full model is a classifier folder (an LSTM, its export or "
                         f"a wide-and-deep model); {full.path} is an n-gram or stacked model")
    if fast.labels != full.labels:
        raise ValueError(f"a cascade's members must share their labels: {fast.labels} against "
                         f"{full.labels}")
    return fast, full


class CascadeModel:
    """A loaded cascade (see the module): ``score`` as every model's. Its config and
    vocabulary are the full model's (what ``sentiment evaluate`` reads the data split from);
    each member reads the texts its own way."""

    kind = "cascade"
    capabilities = frozenset({"evaluate"})  # on its full model's split
    refusals = {"explain": "explain one of its members instead",
                "quantize": "quantize its members instead",
                "score_ids": "each member encodes texts its own way"}
    num_classes = 2
    answers = Answers()  # its folder's answers.json, set when loaded (sentiment.kinds.registry)

    def __init__(self, path: str | Path, options: LoadOptions = LoadOptions()):
        path = Path(path)
        spec = read_json(path / CASCADE_FILE)
        self.threshold = float(spec["threshold"])
        self.fast, self.full = _members(path, spec, options)
        self.path, self.labels = str(path), list(self.full.labels)
        self.words = self.full.words
        self.config, self.vocab, self.device = self.full.config, self.full.vocab, self.full.device

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """P(second label) per text, ``(N,)``: the fast model's where it is sure enough,
        the full model's elsewhere. ``max_tokens`` (in ``budget``): both members' batch
        budget, else each its own default."""
        return self.escalated(texts, batch_size, mixed_precision, **budget)[0]

    def escalated(self, texts: Sequence[str], batch_size: int = 64,
                  mixed_precision: bool = True, **budget) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, sent)``: :meth:`text_probabilities` and which texts went to the
        full model."""
        probs = self.fast.text_probabilities(texts, batch_size, mixed_precision, **budget)
        sent = np.maximum(probs, 1.0 - probs) < self.threshold
        if sent.any():
            unsure = [texts[i] for i in np.flatnonzero(sent)]
            probs[sent] = self.full.text_probabilities(unsure, batch_size, mixed_precision,
                                                       **budget)
        return probs, sent

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        return to_results(self.text_probabilities(texts, batch_size, mixed_precision, **budget),
                          self.labels, all_scores)

    @classmethod
    def load(cls, folder: Path, kind: str, options: LoadOptions) -> CascadeModel:
        """The registry's loader of ``cascade`` folders: its members say where they run."""
        return cls(folder, options)

    def __repr__(self) -> str:
        return (f"CascadeModel(path={self.path!r}, fast={self.fast.path!r}, "
                f"full={self.full.path!r}, threshold={self.threshold})")


MODEL = CascadeModel
