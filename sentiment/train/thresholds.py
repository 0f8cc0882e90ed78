"""Building a cascade (:mod:`sentiment.kinds.cascade`): its thresholds chosen on the last
model's validation reviews (every combination's accuracy and the share of texts each stage
scores, and the cheapest within a tolerance of the last model's accuracy), and its folder
written (``sentiment cascade``)."""

from __future__ import annotations

import itertools
import os
import time
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


def route(stage_probs: Sequence[np.ndarray], thresholds: Sequence[float]
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, stage)``, as a cascade of these thresholds routes texts, from every
    stage's P(second label) of every text (:meth:`sentiment.kinds.cascade.CascadeModel.routed`
    on scores already known)."""
    probs = np.asarray(stage_probs[-1], dtype=np.float64).copy()
    stage = np.full(len(probs), len(stage_probs) - 1)
    undecided = np.ones(len(probs), dtype=bool)
    for k, threshold in enumerate(thresholds):
        p = np.asarray(stage_probs[k], dtype=np.float64)
        keep = undecided & (np.maximum(p, 1.0 - p) >= threshold)
        probs[keep], stage[keep] = p[keep], k
        undecided &= ~keep
    return probs, stage


def sweep(stage_probs: Sequence[np.ndarray], labels: np.ndarray,
          thresholds: Sequence[float]) -> dict:
    """Per combination of ``thresholds`` for the stages but the last (keyed ``"t1,t2"``), the
    cascade's accuracy on ``labels`` and the share of texts each stage scores (``reaching``:
    1.0 for the first)."""
    rows = {}
    for combo in itertools.product(thresholds, repeat=len(stage_probs) - 1):
        probs, stage = route(stage_probs, combo)
        reaching = [float((stage >= k).mean()) for k in range(len(stage_probs))]
        rows[",".join(map(str, combo))] = {
            "thresholds": list(combo),
            "accuracy": float(((probs >= 0.5).astype(int) == labels).mean()),
            "reaching": reaching}
    return rows


def choose(rows: dict, full_accuracy: float, tolerance: float,
           costs: Sequence[float]) -> list[float] | None:
    """The thresholds of the cheapest row (the least expected cost per text, each stage's
    ``costs`` times the share it scores; ties to the more accurate, then the first) whose
    accuracy is at least ``full_accuracy - tolerance``; None where none is."""
    good = [row for row in rows.values() if row["accuracy"] >= full_accuracy - tolerance]
    if not good:
        return None
    cost = [float(np.dot(row["reaching"], costs)) for row in good]
    best = min(range(len(good)), key=lambda i: (round(cost[i], 12), -good[i]["accuracy"], i))
    return good[best]["thresholds"]


def _timed_probabilities(model, texts: list[str]) -> tuple[np.ndarray, float]:
    """``model``'s P(second label) of ``texts`` and the seconds per text it took (warmed)."""
    model.text_probabilities(texts[:8])
    start = time.perf_counter()
    probs = model.text_probabilities(texts)
    return probs, (time.perf_counter() - start) / max(len(texts), 1)


def validation_sweep(stages: Sequence[str | Path], data: str | None = None,
                     thresholds: Sequence[float] = THRESHOLDS, tolerance: float = 0.001,
                     costs: Sequence[float] | None = None) -> dict:
    """Score the last model's validation reviews (its own split; ``data``: where its source
    is, when not where its config says) with every stage and :func:`sweep` them: the
    accuracies, each stage's seconds per review (timed here, each alone), every combination's
    row, and the thresholds :func:`choose` picks, by ``costs`` (default: those seconds)."""
    if len(stages) < 2:
        raise ValueError(f"a cascade has two stages or more, not {len(stages)}")
    if not all(0.5 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"thresholds are probabilities in [0.5, 1], not {list(thresholds)}")
    if costs is not None and len(costs) != len(stages):
        raise ValueError(f"one cost per stage: {len(stages)} stages, {len(costs)} costs")
    models = [load_model(stage) for stage in stages]
    full = models[-1]
    source = full.config.data if data is None else replace(full.config.data, source=data)
    valid = classifier_splits(source, full.config.split_seed)["valid"]
    texts, labels = list(valid["text"]), np.asarray(valid["label"])
    scored = [_timed_probabilities(model, texts) for model in models]
    probs = [p for p, _ in scored]
    accuracy = [float(((p >= 0.5).astype(int) == labels).mean()) for p in probs]
    seconds = [s for _, s in scored]
    rows = sweep(probs, labels, thresholds)
    costs = list(seconds if costs is None else costs)
    return {"split": "valid", "reviews": len(texts), "stages": [str(s) for s in stages],
            "accuracy": accuracy, "seconds_per_review": seconds, "costs": costs,
            "thresholds": rows, "tolerance": tolerance,
            "chosen": choose(rows, accuracy[-1], tolerance, costs)}


def save_cascade(stages: Sequence[str | Path], thresholds: Sequence[float],
                 output: str | Path) -> Path:
    """Write ``output/cascade.json``: ``stages[0]`` first, each next one for the texts the one
    before scores below its threshold (``thresholds``: one per stage but the last, in
    [0.5, 1]). The members are checked to load and to share labels."""
    if len(stages) < 2 or len(thresholds) != len(stages) - 1:
        raise ValueError(f"a cascade of {len(stages)} stages takes {len(stages) - 1} "
                         f"threshold(s), not {len(thresholds)} (and two stages or more)")
    if not all(0.5 <= float(t) <= 1.0 for t in thresholds):
        raise ValueError(f"a threshold is a probability in [0.5, 1], not {list(thresholds)}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    spec = {"stages": [{"model": os.path.relpath(Path(stage).resolve(), output.resolve())}
                       for stage in stages]}
    for stage, threshold in zip(spec["stages"], thresholds):
        stage["threshold"] = float(threshold)
    members(output, spec, load_folder)  # refuses before the file is written
    write_json(output / CASCADE_FILE, spec)
    write_model_file(output, "cascade")
    return output
