"""From a classifier's logits to probabilities, labels and scores: one set of rules for
prediction, serving, file scoring and the evaluation report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..jsonio import read_json

if TYPE_CHECKING:
    import torch


def probabilities(logits: torch.Tensor, classes: int) -> torch.Tensor:
    """A binary model's P(second label) from its one logit; else the softmax over classes."""
    import torch

    return torch.sigmoid(logits) if classes == 2 else torch.softmax(logits, dim=-1)


def class_probs(scores: np.ndarray) -> np.ndarray:
    """``(N, C)`` probabilities from :func:`score_ids`' output (``(N,)`` for two classes)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([1.0 - scores, scores], axis=1) if scores.ndim == 1 else scores


def log_odds(positive, eps: float = 1e-7) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities, clipped to ``[eps, 1 - eps]`` so that a certain
    score stays finite."""
    positive = np.clip(np.asarray(positive, dtype=np.float64), eps, 1 - eps)
    return np.log(positive / (1 - positive))


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """The predicted class per row of ``(N, C)`` probabilities (ties at 0.5 go to the second of
    two classes, as a binary threshold would)."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= 0.5).astype(int)
    return probs.argmax(axis=1)


def to_results(scores: np.ndarray, labels: list[str], all_scores: bool = False) -> list[dict]:
    """``{"label", "score"}`` per text (``"scores"``: every label's probability, too)."""
    probs = class_probs(scores)
    results = []
    for row, label_id in zip(probs, predicted_classes(probs), strict=True):
        result = {"label": labels[label_id], "score": float(row[label_id])}
        if all_scores:
            result["scores"] = {name: float(p) for name, p in zip(labels, row, strict=True)}
        results.append(result)
    return results


def sigmoid(logits) -> np.ndarray:
    """P(positive) from log-odds, in float64 (NumPy)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


ANSWERS_FILE = "answers.json"
UNREADABLE_BELOW = 0.6  # chosen on the sentence dev half (BENCHMARKS.md, "Sentences")


@dataclass(frozen=True)
class Answers:
    """How a model's probabilities become answers: the neutral band (None: none) and the least
    share of known words below which a text is flagged unreadable."""

    neutral: tuple[float, float] | None = None
    unreadable_below: float = UNREADABLE_BELOW

    def __post_init__(self) -> None:
        if self.neutral is not None:
            low, high = self.neutral
            if not 0 <= low <= 0.5 <= high <= 1:
                raise ValueError(f"a neutral band is (low, high) with 0 <= low <= 0.5 <= high "
                                 f"<= 1, not {self.neutral}")
        if not 0 <= self.unreadable_below <= 1:
            raise ValueError(f"unreadable_below is a share in [0, 1], not "
                             f"{self.unreadable_below}")

    @classmethod
    def of(cls, folder: str | Path) -> Answers:
        """The answers ``folder/answers.json`` describes, else the defaults."""
        path = Path(folder) / ANSWERS_FILE
        if not path.is_file():
            return cls()
        spec = read_json(path)
        try:
            band = spec.get("neutral")
            if isinstance(band, (int, float)) and not isinstance(band, bool):
                band = (0.5 - band, 0.5 + band)  # a half-width
            return cls(tuple(float(x) for x in band) if band else None,
                       float(spec.get("unreadable_below", UNREADABLE_BELOW)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error} (neutral is a half-width or a [low, high] "
                             "band)") from None
