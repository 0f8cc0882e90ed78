"""A confidence cascade: a fast model scores every text, and the texts it is unsure of go to a
slower, more accurate one. ``cascade.json`` in a folder names the two (paths relative to the
folder, so it can move with them) and the threshold::

    {"fast": "fast", "full": "../imdb-onnx", "threshold": 0.97}

A text keeps the fast model's label and score when that score (the probability of its label)
is at least ``threshold``; otherwise the full model's stand. Both models must be binary and
share their labels. ``sentiment cascade`` chooses the threshold on the full model's validation
reviews (:func:`validation_sweep`) and writes the folder."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..inference.predict import TextModel, load_model
from ..kinds.decisions import to_results

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
    _members(output, spec)  # refuses before the file is written
    (output / CASCADE_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return output


def _members(path: Path, spec: dict, device=None, threads: int | None = None):
    fast, full = (load_model(path / spec[name], device, threads=threads)
                  for name in ("fast", "full"))
    for member in (fast, full):
        if isinstance(member, CascadeModel) or len(member.labels) != 2:
            raise ValueError(f"a cascade's members are binary classifiers; {member.path} is not")
    if not isinstance(full, TextModel):  # its config names the data split evaluate reads
        raise ValueError(f"a cascade's full model is a classifier folder (an LSTM, its export or "
                         f"a wide-and-deep model); {full.path} is an n-gram or stacked model")
    if fast.labels != full.labels:
        raise ValueError(f"a cascade's members must share their labels: {fast.labels} against "
                         f"{full.labels}")
    return fast, full


THRESHOLDS = (0.9, 0.95, 0.97, 0.98, 0.99, 0.995)


def sweep(fast_probs: np.ndarray, full_probs: np.ndarray, labels: np.ndarray,
          thresholds: Sequence[float]) -> dict:
    """Per threshold (as a string), the cascade's accuracy on ``labels`` and the share of
    texts it sends to the full model, from each model's P(second label)."""
    sure = np.maximum(fast_probs, 1.0 - fast_probs)
    rows = {}
    for t in thresholds:
        sent = sure < t
        probs = np.where(sent, full_probs, fast_probs)
        rows[str(t)] = {"accuracy": float(((probs >= 0.5).astype(int) == labels).mean()),
                        "sent_to_full": float(sent.mean())}
    return rows


def choose(rows: dict, full_accuracy: float, tolerance: float) -> float | None:
    """The smallest threshold (the fewest texts sent to the full model) whose accuracy is at
    least ``full_accuracy - tolerance``; None where none is."""
    good = [float(t) for t, row in rows.items() if row["accuracy"] >= full_accuracy - tolerance]
    return min(good) if good else None


def validation_sweep(fast: str | Path, full: str | Path, data: str | None = None,
                     thresholds: Sequence[float] = THRESHOLDS, tolerance: float = 0.001) -> dict:
    """Score the full model's validation reviews (its own split; ``data``: where its source
    is, when not where its config says) with both models and :func:`sweep` them: the
    accuracies, every threshold's row, and the threshold :func:`choose` picks."""
    from dataclasses import replace

    from ..train.prepare import classifier_splits

    if not all(0.5 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"thresholds are probabilities in [0.5, 1], not {list(thresholds)}")
    fast_model, full_model = load_model(fast), load_model(full)
    source = full_model.config.data if data is None else replace(full_model.config.data,
                                                                   source=data)
    valid = classifier_splits(source, full_model.config.split_seed)["valid"]
    texts, labels = list(valid["text"]), np.asarray(valid["label"])
    fast_probs = fast_model.text_probabilities(texts)
    full_probs = full_model.text_probabilities(texts)
    accuracy = {name: float(((probs >= 0.5).astype(int) == labels).mean())
                for name, probs in (("fast", fast_probs), ("full", full_probs))}
    rows = sweep(fast_probs, full_probs, labels, thresholds)
    return {"split": "valid", "reviews": len(texts), "accuracy": accuracy, "thresholds": rows,
            "tolerance": tolerance, "chosen": choose(rows, accuracy["full"], tolerance)}


class CascadeModel(TextModel):
    """A loaded cascade (see the module): ``score`` as every model's. Its config and
    vocabulary are the full model's (what ``sentiment evaluate`` reads the data split from);
    each member reads the texts its own way."""

    reads_texts = True  # scored from the texts, not from ids in one vocabulary

    def __init__(self, path: str | Path, device=None, threads: int | None = None):
        path = Path(path)
        spec = json.loads((path / CASCADE_FILE).read_text(encoding="utf-8"))
        self.threshold = float(spec["threshold"])
        self.fast, self.full = _members(path, spec, device, threads)
        super().__init__(self.full.vocab, self.full.config, "")
        self.path, self.wide = str(path), None
        self.device = self.full.device
        self.quantize = "none"
        self.num_classes = 2

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

    def probabilities(self, ids, *args, **kwargs):
        raise ValueError(f"{self.path} is a cascade: it scores texts (each member encodes them "
                         "its own way), not ids")

    def explain(self, text: str, steps: int = 32, max_tokens: int | None = None) -> dict:
        raise ValueError(f"{self.path} is a cascade: explain one of its members instead "
                         f"({self.full.path})")

    def __repr__(self) -> str:
        return (f"CascadeModel(path={self.path!r}, fast={self.fast.path!r}, "
                f"full={self.full.path!r}, threshold={self.threshold})")
