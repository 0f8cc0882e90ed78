"""Accuracy on short texts: one crop (one to three consecutive sentences, 3-60 words, as
``--crops`` makes them) of each validation review, labelled with its review's label, scored by
each model; and, with ``--vader`` (``pip install vaderSentiment``), the VADER lexicon's
compound score on the same crops, the reviews and the CheckList suite, as an outside
reference for what a negation-aware lexicon knows.

    python -m benchmarks.short_texts --models sentiment/models/imdb runs/student3 --vader

``--stack`` fits the short-text stack the accuracy issue proposes as a teacher: a logistic
regression on every model's log-odds (and VADER's, with ``--vader``) over the crops, judged by
10-fold cross-validation on the crops, then refitted on all of them and run on the whole
reviews and the CheckList suite -- whether such a teacher would know short texts and negation
before any student is trained on its labels.

The validation split of the first model's config (its seed and fraction), never the test
split. A crop's label is its review's, so the figure is a floor: some crops of a positive review
are neutral or negative by themselves.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

import numpy as np

from benchmarks import emit
from sentiment import load_model
from sentiment.kinds.decisions import log_odds
from sentiment.report.checklist import positive_probabilities, run_checklist
from sentiment.train.distill import short_crops
from sentiment.train.prepare import classifier_splits


def review_crops(texts: list[str], labels, count: int,
                 seed: int = 0) -> tuple[list[str], np.ndarray]:
    """One short crop of each of ``count`` reviews drawn at random (reviews with no crop of
    3-60 words are passed over), with its review's label."""
    rng = np.random.default_rng(seed)
    crops, crop_labels = [], []
    quiet = logging.getLogger("sentiment.train.distill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "only 0 crops in 1 text" is expected here
    try:
        for index in rng.permutation(len(texts)):
            if len(crops) == count:
                break
            found = short_crops([texts[index]], 1, seed=int(index) + seed)
            if found:
                crops.append(found[0])
                crop_labels.append(int(labels[index]))
    finally:
        quiet.setLevel(level)
    return crops, np.asarray(crop_labels)


def vader_positive(texts: list[str]) -> np.ndarray:
    """VADER's compound score mapped to [0, 1] (0.5: neutral)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([(analyzer.polarity_scores(text)["compound"] + 1) / 2 for text in texts])


CLIP = 1e-6  # probabilities clipped to [CLIP, 1 - CLIP] before their log-odds


def fit_stack(crop_features: np.ndarray, crop_labels: np.ndarray, names: list[str],
              folds: int = 10) -> tuple[dict, object]:
    """The stack's cross-validated crop accuracy and weights, and the stack refitted on every
    crop (``features``: one column of log-odds per member)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    cross = cross_val_score(LogisticRegression(max_iter=1000), crop_features, crop_labels,
                            cv=folds)
    stack = LogisticRegression(max_iter=1000).fit(crop_features, crop_labels)
    return ({"crops_cross_validated": float(cross.mean()),
             "weights": dict(zip(names, map(float, stack.coef_.ravel()), strict=True)),
             "intercept": float(stack.intercept_[0])}, stack)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--crops", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vader", action="store_true",
                        help="also the VADER lexicon (pip install vaderSentiment)")
    parser.add_argument("--stack", action="store_true",
                        help="fit a logistic regression on the members' log-odds over the crops "
                             "and report it like a member")
    parser.add_argument("--output", default=None, help="also write the result here (JSON)")
    args = parser.parse_args(argv)
    models = {path: load_model(path) for path in args.models}
    first = next(iter(models.values()))
    valid = classifier_splits(replace(first.config.data, source=args.data),
                              first.config.split_seed)["valid"]
    texts, labels = list(valid["text"]), np.asarray(valid["label"])
    crops, crop_labels = review_crops(texts, labels, args.crops, args.seed)
    result = {"crops": len(crops), "crop_words_mean": float(np.mean([len(c.split())
                                                                     for c in crops])),
              "crop_positive_share": float(crop_labels.mean()), "accuracy_on_crops": {},
              "accuracy_on_reviews": {}}
    scorers = {path: (lambda batch, model=model: positive_probabilities(model, list(batch)))
               for path, model in models.items()}
    if args.vader:
        scorers["vader"] = lambda batch: vader_positive(list(batch))
    scores = {}  # (member, which texts) -> P(positive)
    for path, scorer in scorers.items():
        for key, scored, truth in (("accuracy_on_crops", crops, crop_labels),
                                   ("accuracy_on_reviews", texts, labels)):
            scores[path, key] = positive = np.asarray(scorer(scored))
            result[key][path] = float(((positive >= 0.5) == truth).mean())
    if args.stack:
        names = list(scorers)
        stack_result, stack = fit_stack(
            np.stack([log_odds(scores[n, "accuracy_on_crops"], CLIP) for n in names], 1),
            crop_labels, names)
        reviews = stack.predict_proba(
            np.stack([log_odds(scores[n, "accuracy_on_reviews"], CLIP) for n in names], 1))[:, 1]
        stack_result["accuracy_on_reviews"] = float(((reviews >= 0.5) == labels).mean())
        stack_result["checklist"] = {name: test["pass_rate"] for name, test in run_checklist(
            lambda batch: stack.predict_proba(np.stack(
                [log_odds(scorers[n](batch), CLIP) for n in names], 1))[:, 1]).items()}
        result["stack"] = stack_result
    if args.vader:
        result["vader_checklist"] = {name: test["pass_rate"] for name, test in run_checklist(
            lambda batch: list(vader_positive(list(batch)))).items()}
    return emit(result, args.output)


if __name__ == "__main__":
    main()
