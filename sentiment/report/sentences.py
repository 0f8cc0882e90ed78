"""The report's sentence section (issue 44): how a classifier does on the hand-written sentence
sets of ``benchmarks/sentences/`` (its README): opinions labelled positive or negative, plain
facts (neutral), and lines in other languages or gibberish (foreign).

- **opinions**: accuracy on the two labels (no neutral band) and calibration (the report's own
  :func:`~sentiment.report.metrics.calibration`);
- **neutral**: how well a band of P(positive) around 0.5 picks out the facts among the English
  lines (opinions and facts): its precision and recall for facts, and the share of opinions
  outside it and right; for the model's own band (``answers.json``) where it has one, and for
  the half-widths of :data:`WIDTHS`, for information;
- **unreadable**: the share of foreign lines and of English lines flagged as the model flags a
  text (:func:`~sentiment.inference.answers.known_shares` under ``answers.unreadable_below``).

Each line belongs to the ``dev`` or the ``heldout`` half. Only the dev half is read unless the
held-out half is asked for (``sentiment evaluate --sentences heldout``): that is for the one
report of a candidate about to ship, and the read is listed with BENCHMARKS.md's test-split
reads. The model scores the texts through ``text_probabilities``, so any kind works. Where the
files are absent (an installed package without the repository), the section says so.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..config import DEFAULT_LABELS
from ..inference.answers import known_shares
from .metrics import calibration

SENTENCES = Path(__file__).resolve().parents[2] / "benchmarks" / "sentences"
FILES = ("opinions", "facts", "foreign")
HALVES = ("dev", "heldout")
WIDTHS = (0.1, 0.2, 0.3)  # the band (0.5 - w, 0.5 + w) of each, reported for information


def read_sentences(half: str = "dev", folder: str | Path = SENTENCES
                   ) -> dict[str, list[dict]] | None:
    """The lines of ``half`` of each file (``opinions``, ``facts``, ``foreign``), in file
    order; None where a file is missing. The other half's lines are dropped as they are read."""
    if half not in HALVES:
        raise ValueError(f"the sentence sets' half is one of {list(HALVES)}, not {half!r}")
    paths = {name: Path(folder) / f"{name}.jsonl" for name in FILES}
    if not all(path.is_file() for path in paths.values()):
        return None
    sets = {}
    for name, path in paths.items():
        with path.open(encoding="utf-8") as lines:
            rows = (json.loads(line) for line in lines if line.strip())
            sets[name] = [row for row in rows if row["split"] == half]
    return sets


def sentence_section(model, half: str = "dev", folder: str | Path = SENTENCES,
                     batch_size: int = 64, mixed_precision: bool = True) -> dict:
    """The section's figures for a loaded classifier ``model`` (the protocol of
    :mod:`sentiment.kinds.protocol`: ``labels``, ``answers``, ``words``,
    ``text_probabilities``): every English line scored in one call. A model whose labels are
    not negative/positive gets the unreadable rates only."""
    start = time.perf_counter()
    sets = read_sentences(half, folder)
    if sets is None:
        return {"half": half, "skipped": f"the sentence sets ({folder}) are not here, as in an "
                                         "installed package without the repository"}
    english = sets["opinions"] + sets["facts"]
    section = {"half": half, "folder": str(folder),
               "lines": {name: len(rows) for name, rows in sets.items()},
               "unreadable": unreadable_rates(model, [row["text"] for row in english],
                                              [row["text"] for row in sets["foreign"]])}
    if [label.lower() for label in model.labels] != list(DEFAULT_LABELS):
        section["note"] = (f"opinions and the neutral band need a negative/positive model; "
                           f"this one's labels are {list(model.labels)}")
    elif english:
        probs = np.asarray(model.text_probabilities([row["text"] for row in english],
                                                    batch_size, mixed_precision), dtype=float)
        labels = np.asarray([row["label"] == DEFAULT_LABELS[1] for row in sets["opinions"]],
                            dtype=int)
        is_fact = np.arange(len(english)) >= len(sets["opinions"])
        section["opinions"] = opinion_figures(labels, probs[~is_fact])
        section["neutral"] = neutral_figures(model.answers.neutral, probs, is_fact, labels)
    section["seconds"] = time.perf_counter() - start
    return section


def opinion_figures(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy (P(positive) >= 0.5 is positive) and expected calibration error."""
    if not len(labels):
        return {"n": 0, "accuracy": None, "ece": None}
    right = (probs >= 0.5).astype(int) == labels
    return {"n": len(labels), "accuracy": float(right.mean()),
            "ece": calibration(labels, probs)["ece"]}


def neutral_figures(band: tuple[float, float] | None, probs: np.ndarray, is_fact: np.ndarray,
                    labels: np.ndarray) -> dict:
    """The model's own band's figures (None: it has no band) and those of each half-width of
    :data:`WIDTHS`, on the English lines (``probs``: P(positive); ``is_fact``: which lines are
    facts; ``labels``: the opinions' labels, in order)."""
    right = np.zeros(len(probs), dtype=bool)
    right[~is_fact] = (probs[~is_fact] >= 0.5).astype(int) == labels
    return {"band": None if band is None else list(band),
            "model_band": None if band is None else band_figures(band, probs, is_fact, right),
            "by_half_width": [{"half_width": width,
                               **band_figures((0.5 - width, 0.5 + width), probs, is_fact, right)}
                              for width in WIDTHS]}


def band_figures(band: tuple[float, float], probs: np.ndarray, is_fact: np.ndarray,
                 right: np.ndarray) -> dict:
    """A band's precision and recall for facts (a line is answered neutral where P(positive)
    is strictly inside it, as ``predict`` answers) and the share of opinions outside it and
    right."""
    inside = (probs > band[0]) & (probs < band[1])
    facts_inside = int((inside & is_fact).sum())
    return {"band": [float(band[0]), float(band[1])],
            "precision": _share(facts_inside, int(inside.sum())),
            "recall": _share(facts_inside, int(is_fact.sum())),
            "opinions_outside_and_right": _share(int((~inside & ~is_fact & right).sum()),
                                                 int((~is_fact).sum()))}


def unreadable_rates(model, english: list[str], foreign: list[str]) -> dict:
    """The share of foreign and of English lines the model flags as unreadable (its share of
    known words under ``model.answers.unreadable_below``)."""
    below = model.answers.unreadable_below

    def flagged(texts: list[str]) -> float | None:
        return _share(sum(share < below for share in known_shares(texts, model.words)),
                      len(texts))

    return {"below": below, "foreign": flagged(foreign), "english": flagged(english),
            "n_foreign": len(foreign), "n_english": len(english)}


def _share(count: int, of: int) -> float | None:
    return count / of if of else None
