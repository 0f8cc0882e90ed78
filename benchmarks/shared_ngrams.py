"""One n-gram part for every shipped model: imdb-fast (and imdb-cascade's fast stage, its int8
export) given the default model's n-gram part in place of its own. Both were fitted by
``sentiment wide`` on the same 22,500 training reviews and kept the same 200,000 n-grams; their
weights differ by at most 1.5e-6 (liblinear's float rounding), so a cascade can compute one
n-gram score per text for all its stages (:mod:`sentiment.kinds.cascade`). This scores the 2,500
validation reviews with each folder before and after (float32) and reports the largest
probability difference and the labels changed; no test review is read.

    python -m benchmarks.shared_ngrams --pairs runs/imdb-fast-before sentiment/models/imdb-fast \
        runs/cascade-fast-before sentiment/models/imdb-cascade/fast \
        --output runs/wide-swap-valid-s15.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from benchmarks import emit
from sentiment import load_model
from sentiment.train.prepare import classifier_splits


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--pairs", nargs="+", required=True, help="BEFORE AFTER [BEFORE AFTER ...]")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("--pairs takes folders two by two: before, after")
    first = load_model(args.pairs[0])
    valid = classifier_splits(replace(first.config.data, source=args.data),
                              first.config.split_seed)["valid"]
    texts, labels = list(valid["text"]), np.asarray(valid["label"])
    result = {"split": "valid", "reviews": len(texts), "pairs": {}}
    for before, after in zip(args.pairs[::2], args.pairs[1::2]):
        a = load_model(before).text_probabilities(texts, mixed_precision=False)
        b = load_model(after).text_probabilities(texts, mixed_precision=False)
        result["pairs"][f"{before} -> {after}"] = {
            "max_abs_diff": float(np.abs(a - b).max()),
            "labels_changed": int(((a >= 0.5) != (b >= 0.5)).sum()),
            "accuracy_before": float(((a >= 0.5) == labels).mean()),
            "accuracy_after": float(((b >= 0.5) == labels).mean())}
    return emit(result, args.output)


if __name__ == "__main__":
    main()
