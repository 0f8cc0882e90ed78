"""Building a cascade (:mod:`sentiment.kinds.cascade`): its threshold chosen on the full
model's validation reviews (every threshold's accuracy and share of texts sent on, and the
fewest sent within a tolerance of the full model's accuracy), and its folder written
(``sentiment cascade``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..jsonio import write_json
from ..kinds.cascade import CASCADE_FILE, members
from ..kinds.folder import write_model_file
from ..kinds.registry import load_folder, load_model
from .prepare import classifier_splits

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
    members(output, spec, load_folder)  # refuses before the file is written
    write_json(output / CASCADE_FILE, spec)
    write_model_file(output, "cascade")
    return output
