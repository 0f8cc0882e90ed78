"""Models side by side on the hand-written sentence sets (``benchmarks/sentences``): the report's
sentence section (:mod:`sentiment.report.sentences`), opinion accuracy per frame, and the two
choices made on the dev half by rules written first (runs/prereg-2026-12-07-sentences-s14.txt):
the neutral band's half-width and the unreadable threshold.

    python -m benchmarks.sentences --models imdb runs/candidate --output runs/sentences-dev.json
    python -m benchmarks.sentences --models runs/candidate --half heldout  # a candidate, once

Band rule: the half-width w in 0.05..0.40 maximising the mean of (facts inside the band) and
(opinions outside it and right), ties to the narrower; a default band only where, at that w,
at least 80% of the opinions are outside and right. Threshold rule: t in 0.3..0.8 maximising
the mean of (foreign lines flagged) and (English lines not flagged), ties to the lower.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from sentiment import load_model
from sentiment.inference.answers import known_shares
from sentiment.report.sentences import read_sentences, sentence_section

WIDTHS = tuple(round(0.05 * k, 2) for k in range(1, 9))
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
LEAST_ANSWERED = 0.8  # a default band must leave this share of opinions outside and right


def choose_band(probs: np.ndarray, labels: list[str]) -> dict:
    """Every half-width's figures and the one the band rule chooses (None: no default band)."""
    is_fact = np.array([label == "neutral" for label in labels])
    right = np.array([(p >= 0.5) == (label == "positive") for p, label in zip(probs, labels,
                                                                               strict=True)])
    rows = []
    for width in WIDTHS:
        inside = np.abs(probs - 0.5) < width
        facts_in = float(inside[is_fact].mean())
        answered = float((~inside & right)[~is_fact].mean())
        rows.append({"half_width": width, "facts_inside": facts_in,
                     "opinions_outside_and_right": answered, "mean": (facts_in + answered) / 2})
    best = max(rows, key=lambda row: (round(row["mean"], 12), -row["half_width"]))
    chosen = best["half_width"] if best["opinions_outside_and_right"] >= LEAST_ANSWERED else None
    return {"rows": rows, "best": best["half_width"], "chosen": chosen}


def choose_threshold(shares: list[float], labels: list[str]) -> dict:
    """Every threshold's flag rates and the one the threshold rule chooses."""
    foreign = np.array([label == "foreign" for label in labels])
    shares = np.asarray(shares)
    rows = []
    for threshold in THRESHOLDS:
        flagged = shares < threshold
        caught, spared = float(flagged[foreign].mean()), float((~flagged)[~foreign].mean())
        rows.append({"below": threshold, "foreign_flagged": caught, "english_kept": spared,
                     "mean": (caught + spared) / 2})
    best = max(rows, key=lambda row: (round(row["mean"], 12), -row["below"]))
    return {"rows": rows, "chosen": best["below"]}


def by_frame(rows: list[dict], probs: np.ndarray) -> dict:
    """Opinion accuracy per frame tag."""
    right = defaultdict(list)
    for row, p in zip(rows, probs, strict=True):
        right[row["frame"]].append((p >= 0.5) == (row["label"] == "positive"))
    return {frame: float(np.mean(hits)) for frame, hits in sorted(right.items())}


def measure(path: str, half: str) -> dict:
    model = load_model(path)
    sets = read_sentences(half)
    english = sets["opinions"] + sets["facts"]
    probs = np.asarray(model.text_probabilities([row["text"] for row in english]), dtype=float)
    every = english + sets["foreign"]
    return {"section": sentence_section(model, half),
            "frames": by_frame(sets["opinions"], probs[: len(sets["opinions"])]),
            "band": choose_band(probs, [row["label"] for row in english]),
            "threshold": choose_threshold(known_shares([row["text"] for row in every],
                                                       model.words),
                                          [row["label"] for row in every])}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="folders or shipped names")
    parser.add_argument("--half", default="dev", choices=("dev", "heldout"),
                        help="heldout: only for a candidate about to ship, once, listed in "
                             "BENCHMARKS.md's reads (default: dev)")
    parser.add_argument("--output", default=None, help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    results = {path: measure(path, args.half) for path in args.models}
    for path, result in results.items():
        opinions, flags = result["section"]["opinions"], result["section"]["unreadable"]
        facts = result["band"]["rows"][1]  # w = 0.10
        print(f"{path} ({args.half}): opinions {opinions['accuracy']:.4f} (ECE "
              f"{opinions['ece']:.3f}); facts inside (0.4, 0.6) {facts['facts_inside']:.3f}; "
              f"band chosen {result['band']['chosen']} (best {result['band']['best']}); "
              f"foreign flagged {flags['foreign']:.3f}, English flagged {flags['english']:.3f}; "
              f"threshold chosen {result['threshold']['chosen']}")
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
