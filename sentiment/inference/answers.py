"""From a classifier's scores to the answers people read: a ``neutral`` label for a text the
model is not sure either way about, and a flag on a text whose words the model mostly does not
know (another language, gibberish, nothing left after cleaning).

A model folder may say how its answers are made in ``answers.json``::

    {"neutral": [0.3, 0.7], "unreadable_below": 0.5, "chosen_on": "..."}

``neutral``: a binary model's probability of its second label strictly inside this band is
answered ``neutral`` (the score stays the probability of the label it leans to);
``unreadable_below``: a text with a smaller share of words the model knows is flagged
``"flag": "unreadable"`` with its ``"known"`` share. Without the file, no band (two labels, as
trained) and :data:`UNREADABLE_BELOW`. Callers may set both (``predict(..., neutral=...)``).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Container, Sequence

from ..kinds.decisions import Answers
from ..text.clean import cleaned

# a word is a run of letters (numbers and punctuation are not words), with an English
# contraction's ending kept on it ("didn't", "film's"): it is known when its stem is
# (:func:`stem`), as the tokenizer reads "did" + "n't". Other apostrophes split words
# ("c'est": "c", "est"), so that foreign text does not look known by its elisions.
CONTRACTION = r"(?:['’](?:t|s|re|ve|ll|d|m)(?![^\W\d_]))?"
WORD = re.compile(r"[^\W\d_]+" + CONTRACTION)
ASCII_WORD = re.compile(r"[a-z]+" + CONTRACTION.replace("’", ""))  # the same, 2x faster
NEUTRAL = "neutral"


def stem(word: str) -> str:
    """A word without its contraction's ending: "didn't" -> "did", "it's" -> "it"."""
    word = word.replace("’", "'")
    if word.endswith("n't"):
        return word[:-3] or word
    return word.split("'", 1)[0]


def known_shares(texts: Sequence[str], words: Container[str]) -> list[float]:
    """Each text's share of words (runs of letters, lower-cased, a contraction counted once by
    its stem) that ``words`` holds; 0 for a text with no word at all."""
    shares = []
    known = words.__contains__
    for text in cleaned(texts):
        text = text.lower()
        found = (ASCII_WORD if text.isascii() else WORD).findall(text)
        hits = sum(known(stem(word)) if "'" in word or "’" in word else known(word)
                   for word in found)
        shares.append(hits / len(found) if found else 0.0)
    return shares


def neutral_band(neutral, answers: Answers) -> tuple[float, float] | None:
    """The band a call uses: ``"default"`` the model's own, None or False none, a half-width
    ``w`` in [0, 0.5) the band ``(0.5 - w, 0.5 + w)``, or a ``(low, high)`` pair (checked)."""
    if isinstance(neutral, str) and neutral == "default":
        return answers.neutral
    if neutral is None or neutral is False:
        return None
    if isinstance(neutral, numbers.Real) and not isinstance(neutral, bool):
        if not 0 <= neutral < 0.5:
            raise ValueError(f"a neutral half-width is in [0, 0.5), not {neutral}")
        return Answers((0.5 - float(neutral), 0.5 + float(neutral))).neutral
    if (isinstance(neutral, Sequence) and not isinstance(neutral, str) and len(neutral) == 2
            and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in neutral)):
        return Answers((float(neutral[0]), float(neutral[1]))).neutral
    raise ValueError(f"neutral is 'default', None, a half-width or a (low, high) band, not "
                     f"{neutral!r}")


def answer(results: list[dict], texts: Sequence[str], model, neutral="default",
           reading: bool = False) -> list[dict]:
    """``results`` (``model.score``'s, in the order of ``texts``) as answers: ``neutral``
    inside the band (:func:`neutral_band`; binary models), ``"known"`` and ``"flag":
    "unreadable"`` where the text's share of known words is under the model's threshold
    (``reading``: every answer carries its ``"known"`` share)."""
    answers = model.answers
    band = neutral_band(neutral, answers)
    if band is not None and len(model.labels) != 2:
        if neutral != "default":
            raise ValueError(f"a neutral band needs a model of two labels, not "
                             f"{model.labels}")
        band = None
    shares = known_shares(texts, model.words)
    for result, share in zip(results, shares, strict=True):
        if band is not None:
            second = result["score"] if result["label"] == model.labels[1] else 1 - result["score"]
            if band[0] < second < band[1]:
                result["label"] = NEUTRAL
        if reading or share < answers.unreadable_below:
            result["known"] = round(share, 4)
        if share < answers.unreadable_below:
            result["flag"] = "unreadable"
    return results
