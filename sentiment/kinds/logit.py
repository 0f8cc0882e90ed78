"""The kinds that score a cleaned text by one log-odds, on the CPU, with neither torch nor
spaCy: a linear n-gram model (:mod:`sentiment.kinds.ngram`) and a stacked teacher
(:mod:`sentiment.kinds.stack`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..text.clean import cleaned
from .decisions import Answers, sigmoid, to_results
from .protocol import Refusing


class LogitModel(Refusing):
    """The base of the kinds that score cleaned texts by one log-odds each, on the CPU without
    torch: a linear n-gram model (:mod:`sentiment.kinds.ngram`) and a stacked teacher
    (:mod:`sentiment.kinds.stack`). The batch arguments of :meth:`score` do not apply."""

    kind = "ngram"
    capabilities: frozenset[str] = frozenset()
    refusals = {"explain": "explanations need a model with a word embedding (an LSTM)",
                "score_ids": "it reads texts with its own token pattern"}
    num_classes = 2
    device = "cpu"
    answers = Answers()  # its folder's answers.json, set when loaded (sentiment.kinds.registry)

    def __init__(self, path: str | Path, labels: Sequence[str],
                 logits: Callable[[list[str]], np.ndarray]):
        self.path, self.labels, self.logits = str(path), list(labels), logits

    def text_probabilities(self, texts: Sequence[str], batch_size: int = 64,
                           mixed_precision: bool = True, **budget) -> np.ndarray:
        """P(second label) per text, ``(N,)``."""
        return sigmoid(self.text_logits(texts))

    @classmethod
    def load(cls, folder: Path, kind: str, options, members=None) -> LogitModel:
        """The registry's loader: the folder (and a teacher's members, loaded by ``members``,
        the registry's loader), on the CPU; nothing to quantize."""
        return cls(folder, members)

    def text_logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The log-odds of the second label per text, ``(N,)``."""
        return np.asarray(self.logits(cleaned(texts)), dtype=np.float64)

    def score(self, texts: Sequence[str], batch_size: int = 64, mixed_precision: bool = True,
              all_scores: bool = False, **budget) -> list[dict]:
        return to_results(self.text_probabilities(texts), self.labels, all_scores)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r})"
