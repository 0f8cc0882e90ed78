"""How IMDB's labels treat a phrase: for each phrase, the training reviews that contain it
(lower-cased, as written) and the share of them labelled positive.

    python -m benchmarks.phrase_labels --phrases "not bad" "not terrible" "not boring"

Why: the CheckList suite's "negated negative is positive" test ("The movie was not terrible at
all.") fails for every model trained here. If the reviews that say "not terrible" are mostly
negative, the models learned the data's use of the phrase (faint praise in a bad review), and
no setting of training on IMDB alone will teach the compositional reading; that needs knowledge
from outside the labels (a lexicon, other text).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

from sentiment.report.metrics import wilson_interval

DEFAULT_PHRASES = ("not bad", "not terrible", "not awful", "not boring", "wasn't bad",
                   "not that bad", "not the worst", "not a bad", "not disappointed",
                   "never boring")


def phrase_label_shares(texts: list[str], labels: list[int], phrases) -> dict:
    """``{phrase: {"reviews": n, "positive_share": p, "positive_share_ci95": [lo, hi]}}``."""
    lowered = [text.lower() for text in texts]
    result = {}
    for phrase in phrases:
        hits = [label for text, label in zip(lowered, labels, strict=True) if phrase in text]
        positive = sum(hits)
        result[phrase] = {
            "reviews": len(hits),
            "positive_share": positive / len(hits) if hits else None,
            "positive_share_ci95": list(wilson_interval(positive, len(hits))) if hits else None,
        }
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--split", default="train", help="never the test split's labels for "
                        "choosing anything; the training file is the default")
    parser.add_argument("--phrases", nargs="+", default=list(DEFAULT_PHRASES))
    args = parser.parse_args(argv)
    table = pq.read_table(Path(args.data) / f"{args.split}.parquet", columns=["text", "label"])
    result = phrase_label_shares(table["text"].to_pylist(), table["label"].to_pylist(),
                                 args.phrases)
    for phrase, row in result.items():
        share = "—" if row["reviews"] == 0 else (
            f"{row['positive_share']:.2f} ({row['positive_share_ci95'][0]:.2f}–"
            f"{row['positive_share_ci95'][1]:.2f})")
        print(f"{phrase!r:24} {row['reviews']:6d} reviews, positive share {share}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
