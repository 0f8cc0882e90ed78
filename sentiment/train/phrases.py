"""Template-made short sentences with their labels, for training (``--phrases N``).

IMDB labels whole reviews (~230 words), so a model trained on them alone never sees the rules a
person relies on in one sentence: a negated complaint is praise ("The show wasn't tedious at
all."), a negated compliment is a complaint, and in a contrast the clause after "but" decides.
Worse, the corpus holds those phrases mostly inside pans ("not bad" in 41% positive reviews,
"wasn't bad" in 21%: ``benchmarks/phrase_labels.py``), so it teaches the opposite. These
sentences state the rules outright, each labelled by its construction.

Every word list here is disjoint from :mod:`sentiment.report.checklist`'s (``tests/test_phrases.py``
checks it), so the behavioural suite stays a held-out measure of whether the rules were learnt
rather than the sentences: a model that passes it applies them to adjectives, subjects and
frames it was never shown in them.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from ..config import DEFAULT_LABELS

SUBJECTS = ["The show", "The cast", "The script", "The direction", "The soundtrack",
            "The dialogue", "The sequel", "This picture", "The documentary", "The series",
            "The performance", "The cinematography", "The comedy", "The drama", "This one",
            "The remake"]
POSITIVE = ["good", "moving", "delightful", "charming", "beautiful", "gripping", "funny",
            "touching", "impressive", "outstanding", "terrific", "marvelous", "lovely", "clever",
            "entertaining", "powerful", "memorable", "stunning", "hilarious", "inspiring",
            "perfect", "solid", "compelling", "fun"]
NEGATIVE = ["poor", "weak", "stupid", "pointless", "tedious", "mediocre", "lame", "annoying",
            "bland", "forgettable", "painful", "clumsy", "silly", "unwatchable", "atrocious",
            "pathetic", "awkward", "lousy", "messy", "slow", "horrendous", "ridiculous",
            "unbearable", "shallow"]
# verbs (with what follows them) of praise and of complaint, each put in VERB_FRAMES
PRAISE_VERBS = ["appreciated", "admired", "treasured", "cherished", "relished", "applauded",
                "recommend", "was thrilled by", "was moved by"]
COMPLAINT_VERBS = ["despised", "resented", "regretted watching", "abhorred", "deplored",
                   "could not stand", "can't stand", "was bored by", "was annoyed by",
                   "regret watching"]
VERB_FRAMES = ["I {v} {o}.", "I really {v} {o}.", "Honestly, I {v} {o}.", "We {v} {o}."]
NEGATED_PRAISE_VERBS = ["I didn't appreciate {}.", "I would not recommend {}.",
                        "I was not impressed by {}.", "I never warmed to {}."]
NEGATED_COMPLAINT_VERBS = ["I didn't regret watching {}.", "I was not bored by {}.",
                           "I never got tired of {}.", "I could not find fault with {}."]
OBJECTS = ["it", "all of it", "this one", "the show", "the whole thing", "this picture",
           "the series", "every scene", "the sequel"]
# a statement: its label is the adjective's
PLAIN = ["{S} is {a}.", "{S} was really {a}.", "I thought {s} was {a}.", "{S} felt {a}.",
         "{S} turned out {a}.", "Honestly, {s} was {a}."]
# a negated statement: its label is the adjective's opposite
NEGATED = ["{S} is not {a}.", "{S} wasn't {a}.", "{S} was not {a} in the least.",
           "{S} was never {a}.", "I didn't think {s} was {a}.", "{S} isn't {a} at all.",
           "I would not call {s} {a}.", "{S} was not {a}, not one bit."]
# a contrast: its label is the second adjective's
CONTRAST = ["{S} starts {a}, but it ends up {b}.", "At first it felt {a}, but later it got {b}.",
            "The beginning is {a} but the rest is {b}.",
            "It was {a} for an hour, but the finale was {b}.",
            "Although the start is {a}, the conclusion is {b}."]
WORD_LISTS = {"subjects": SUBJECTS, "positive": POSITIVE, "negative": NEGATIVE,
              "objects": OBJECTS}


def _fill(frame: str, subject: str, **words: str) -> str:
    return frame.format(S=subject, s=subject[0].lower() + subject[1:], **words)


def _kinds() -> dict[str, list[tuple[str, int]]]:
    """Every sentence of each kind with its label (1 positive, 0 negative)."""
    adjectives = [(a, 1) for a in POSITIVE] + [(a, 0) for a in NEGATIVE]
    plain = [(_fill(f, s, a=a), y) for f, s, (a, y) in product(PLAIN, SUBJECTS, adjectives)]
    plain += [(f.format(v=v, o=o), 1) for f, v, o in product(VERB_FRAMES, PRAISE_VERBS, OBJECTS)]
    plain += [(f.format(v=v, o=o), 0)
              for f, v, o in product(VERB_FRAMES, COMPLAINT_VERBS, OBJECTS)]
    negated = [(_fill(f, s, a=a), 1 - y)
               for f, s, (a, y) in product(NEGATED, SUBJECTS, adjectives)]
    negated += [(v.format(o), 0) for v, o in product(NEGATED_PRAISE_VERBS, OBJECTS)]
    negated += [(v.format(o), 1) for v, o in product(NEGATED_COMPLAINT_VERBS, OBJECTS)]
    contrast = [(_fill(f, s, a=a, b=b), 1) for f, s, a, b in
                product(CONTRAST, SUBJECTS, NEGATIVE, POSITIVE)]
    contrast += [(_fill(f, s, a=a, b=b), 0) for f, s, a, b in
                 product(CONTRAST, SUBJECTS, POSITIVE, NEGATIVE)]
    kinds = {"plain": plain, "negated": negated, "contrast": contrast}
    return {name: list(dict.fromkeys(items)) for name, items in kinds.items()}  # distinct


def check_labels(labels) -> None:
    """The template sentences are labelled 0 = negative, 1 = positive: a classifier with any
    other label set (other names, another order, more classes) would learn wrong labels."""
    if list(labels) != list(DEFAULT_LABELS):
        raise ValueError(f"template sentences (phrases) label texts {list(DEFAULT_LABELS)}; "
                         f"this classifier's labels are {list(labels)}: train without phrases")


def phrases(count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``count`` distinct template sentences and their labels (float32, 1 positive): a third
    plain statements, a third negated ones, a third contrasts, each kind half positive where
    its templates allow, drawn at random (``seed``). At most every sentence there is: asking
    for more is an error."""
    kinds = _kinds()
    available = sum(map(len, kinds.values()))
    if not 0 <= count <= available:
        raise ValueError(f"phrases must be between 0 and {available} (the distinct template "
                         f"sentences), got {count}")
    rng = np.random.default_rng(seed)
    chosen: list[tuple[str, int]] = []
    remaining = count
    for index, (_, sentences) in enumerate(sorted(kinds.items(), key=lambda kv: len(kv[1]))):
        share = min(len(sentences), remaining // (len(kinds) - index))  # the rest if one is short
        for label in (0, 1):
            pool = [item for item in sentences if item[1] == label]
            take = min(len(pool), share // 2 + (share % 2 if label else 0))
            chosen += [pool[i] for i in rng.choice(len(pool), take, replace=False)]
        remaining = count - len(chosen)
    if remaining:  # a kind with too few of one label: fill from any sentence not yet chosen
        taken = {text for text, _ in chosen}
        rest = [item for sentences in kinds.values() for item in sentences
                if item[0] not in taken]
        chosen += [rest[i] for i in rng.choice(len(rest), remaining, replace=False)]
    order = rng.permutation(len(chosen))
    return ([chosen[i][0] for i in order],
            np.array([chosen[i][1] for i in order], dtype=np.float32))
