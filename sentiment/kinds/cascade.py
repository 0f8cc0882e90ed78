"""A confidence cascade: a fast model scores every text, and the texts it is unsure of go to a
slower, more accurate one. ``cascade.json`` in a folder names the two (paths relative to the
folder, so it can move with them) and the threshold::

    {"fast": "fast", "full": "../imdb-onnx", "threshold": 0.97}

A text keeps the fast model's label and score when that score (the probability of its label)
is at least ``threshold``; otherwise the full model's stand. Both models must be binary and
share their labels. ``sentiment cascade`` chooses the threshold on the full model's validation
reviews (:func:`sentiment.train.thresholds.validation_sweep`) and writes the folder
(:func:`sentiment.train.thresholds.save_cascade`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..jsonio import read_json
from .decisions import Answers, to_results
from .folder import LoadOptions
from .protocol import Refusing, supports

CASCADE_FILE = "cascade.json"


def members(path: Path, spec: dict, load_member, options: LoadOptions = LoadOptions()):
    """``(fast, full)``: the members ``spec`` names (relative to ``path``), loaded with
    ``load_member`` (the registry's loader) and checked to make a cascade."""
    fast, full = (load_member((path / spec[name]).resolve(), options)
                  for name in ("fast", "full"))
    for member in (fast, full):
        if member.kind == "cascade" or len(member.labels) != 2:
            raise ValueError(f"a cascade's members are binary classifiers; {member.path} is not")
    if not supports(full, "evaluate"):  # its config names the data split evaluate reads
        raise ValueError(f"a cascade's full model is a classifier folder (an LSTM, its export or "
                         f"a wide-and-deep model); {full.path} is an n-gram or stacked model")
    if fast.labels != full.labels:
        raise ValueError(f"a cascade's members must share their labels: {fast.labels} against "
                         f"{full.labels}")
    return fast, full


class CascadeModel(Refusing):
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

    def __init__(self, path: str | Path, load_member, options: LoadOptions = LoadOptions()):
        path = Path(path)
        spec = read_json(path / CASCADE_FILE)
        self.threshold = float(spec["threshold"])
        self.fast, self.full = members(path, spec, load_member, options)
        self.path, self.labels = str(path), list(self.full.labels)
        self.words = frozenset(self.fast.words) | frozenset(self.full.words)  # fast answers most
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
    def load(cls, folder: Path, kind: str, options: LoadOptions, members=None
             ) -> CascadeModel:
        """The registry's loader of ``cascade`` folders (``members``: the registry's own
        loader, for the two members); the members say where they run."""
        return cls(folder, members, options)

    def __repr__(self) -> str:
        return (f"CascadeModel(path={self.path!r}, fast={self.fast.path!r}, "
                f"full={self.full.path!r}, threshold={self.threshold})")


MODEL = CascadeModel
