"""What one sentence says, learnt from the reviews themselves (``--sentences N``).

IMDB labels whole reviews; a model trained on them alone has never been told what a single
sentence says, and a template sentence states a rule rather than teaching the language. Here
the teacher reads each sentence in its review's context: a sentence's in-context log-odds is
the teacher's log-odds of its review less those of the same review without that sentence
(leave one out). A plot summary or a fact that the verdict does not rest on moves nothing
(about 0: neutral), a sentence the verdict rests on moves it in its own direction.

The difference is compressed where a review is decided without the sentence (removing one of
five complaints changes little), so it is scaled by the ratio of the teacher's own scale on
sentences alone to it (:func:`measured_scale`, from the same training sentences) and clipped.
The sentences come from the unlabelled reviews, which hold no validation or test text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
CLIP = 8.0  # a target's log-odds at most: P = 0.99966


def review_sentences(text: str) -> list[str]:
    """A review's sentences (ending at ``.``, ``!`` or ``?``), stripped, empty ones dropped."""
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


def occlusions(reviews: Sequence[str], count: int, seed: int = 0, per_review: int = 5,
               min_words: int = 3, max_words: int = 40, max_sentences: int = 30
               ) -> tuple[list[str], list[int], list[str]]:
    """``(sentences, review of each, review without each)``: ``count`` distinct sentences of
    ``min_words`` to ``max_words`` words, at most ``per_review`` from one review, from reviews
    of 2 to ``max_sentences`` sentences taken in a seeded order; fewer when the reviews hold
    fewer."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    sentences, owners, without = [], [], []
    for index in rng.permutation(len(reviews)):
        if len(sentences) >= count:
            break
        parts = review_sentences(reviews[index])
        if not 2 <= len(parts) <= max_sentences:
            continue
        chosen = [i for i in rng.permutation(len(parts))
                  if min_words <= len(parts[i].split()) <= max_words
                  and parts[i].lower() not in seen][:per_review]
        for i in chosen[: count - len(sentences)]:
            seen.add(parts[i].lower())
            sentences.append(parts[i])
            owners.append(int(index))
            without.append(" ".join(parts[:i] + parts[i + 1:]))
    if len(sentences) < count:
        logger.warning("only %d sentences found in %d reviews (asked for %d)", len(sentences),
                       len(reviews), count)
    return sentences, owners, without


def measured_scale(in_context: np.ndarray, alone: np.ndarray, least: float = 0.5) -> float:
    """How much larger the teacher's log-odds of a sentence alone are than its in-context
    log-odds, on the sentences where both agree in sign and the context gives at least
    ``least``: the ratio of their medians (1 where no sentence qualifies)."""
    agree = (np.sign(in_context) == np.sign(alone)) & (np.abs(in_context) >= least)
    if not agree.any():
        return 1.0
    return float(np.median(np.abs(alone[agree])) / np.median(np.abs(in_context[agree])))


def in_context_targets(review_logits: np.ndarray, without_logits: np.ndarray,
                       alone_logits: np.ndarray) -> tuple[np.ndarray, dict]:
    """``(target log-odds, summary)`` of each sentence: its review's log-odds less those of the
    review without it, times :func:`measured_scale`, clipped to ±:data:`CLIP`."""
    in_context = np.asarray(review_logits) - np.asarray(without_logits)
    scale = measured_scale(in_context, np.asarray(alone_logits))
    targets = np.clip(scale * in_context, -CLIP, CLIP)
    summary = {"sentences": len(targets), "scale": round(scale, 4),
               "near_neutral_share": round(float((np.abs(targets) < 0.5).mean()), 4)
               if len(targets) else None,
               "agree_with_alone": round(float((np.sign(in_context) == np.sign(alone_logits))
                                               .mean()), 4) if len(targets) else None}
    return targets, summary
