"""Several models on the same labelled reviews, each against the first, paired: accuracy with
its 95% interval, the difference and McNemar's test
(``sentiment.report.metrics.paired_comparison``).

    python -m benchmarks.paired --data ../shared/data/imdb --split test \
        --models sentiment/models/imdb runs/shipped-2026-11-24 runs/teacher

A model is any folder ``predict`` takes (an LSTM, an ensemble, a linear model, a teacher). The
split is the data folder's file of that name (every row), so this reads the test split: list
the read in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sentiment import load_model
from sentiment.report.metrics import paired_comparison, wilson_interval


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--output", default=None, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    table = pq.read_table(Path(args.data) / f"{args.split}.parquet").to_pydict()
    labels = np.asarray(table["label"])
    predictions = {}
    for path in args.models:
        model = load_model(path)
        results = model.score(table["text"], 64, max_tokens=16_384)
        predictions[path] = np.asarray([model.labels.index(r["label"]) for r in results])
    first = args.models[0]
    rows = []
    for path, predicted in predictions.items():
        correct = int((predicted == labels).sum())
        row = {"model": path, "accuracy": correct / len(labels),
               "accuracy_ci95": list(wilson_interval(correct, len(labels)))}
        if path != first:
            row[f"{first}_vs_this"] = paired_comparison(labels, predictions[first], predicted)
        rows.append(row)
        print(json.dumps(row))
    result = {"data": args.data, "split": args.split, "n": len(labels), "models": rows}
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
