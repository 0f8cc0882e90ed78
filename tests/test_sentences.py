"""Sentences read in their review's context (sentiment.train.sentences): the occlusions, the
scale and the targets, against a teacher whose reading is known."""

from __future__ import annotations

import numpy as np

from sentiment.train.sentences import (
    CLIP,
    in_context_targets,
    measured_scale,
    occlusions,
    review_sentences,
)

WORDS = {"superb": 2.0, "wonderful": 1.5, "dull": -2.0, "awful": -1.5}


def lexicon_logits(texts):
    """A teacher that reads a text as the sum of its words' weights, saturating (tanh), as a
    decided review does."""
    raw = np.array([sum(WORDS.get(w.strip(".!?,").lower(), 0.0) for w in t.split())
                    for t in texts])
    return 6 * np.tanh(raw / 4)


def test_occlusions_leave_one_sentence_out_of_its_review():
    reviews = ["It opened in May. The cast was superb! I found it dull at times.",
               "Too short.", "One. Two words only here. And a third sentence of words."]
    sentences, owners, without = occlusions(reviews, 10, seed=1, per_review=5)
    assert len(sentences) == len(set(sentences)) == len(owners) == len(without)
    for sentence, owner, rest in zip(sentences, owners, without, strict=True):
        parts = review_sentences(reviews[owner])
        assert sentence in parts and 3 <= len(sentence.split()) <= 40
        assert rest == " ".join(p for p in parts if p != sentence)
    assert 1 not in owners  # one sentence: nothing to leave out of
    assert occlusions(reviews, 10, seed=1) == (sentences, owners, without)  # seeded
    assert len(occlusions(reviews, 2, seed=0)[0]) == 2


def test_a_fact_is_neutral_in_context_and_an_opinion_keeps_its_sign():
    review = "It opened in May. The cast was superb! The story was wonderful."
    sentences, owners, without = occlusions([review], 10, seed=0)
    targets, summary = in_context_targets(
        lexicon_logits([review] * len(sentences)), lexicon_logits(without),
        lexicon_logits(sentences))
    by_sentence = dict(zip(sentences, targets, strict=True))
    assert by_sentence["It opened in May."] == 0
    assert by_sentence["The cast was superb!"] > 0.5
    assert summary["sentences"] == 3 and summary["scale"] > 1  # the context compresses
    assert np.all(np.abs(targets) <= CLIP)


def test_the_scale_is_the_ratio_of_medians_where_both_readings_agree():
    in_context = np.array([1.0, -2.0, 0.1, 1.0])
    alone = np.array([3.0, -6.0, 5.0, -4.0])  # the third gives too little, the fourth disagrees
    assert measured_scale(in_context, alone) == 3.0
    assert measured_scale(np.zeros(3), np.ones(3)) == 1.0
