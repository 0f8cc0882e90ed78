"""How much of a long review a model must read: validation accuracy and forward time when each
review is cut to its first or last N tokens (``sentiment export --max-length N --keep end``).

    python -m benchmarks.truncation --model runs/imdb-onnx-int8 --lengths 256 320 384 512

The model's own validation reviews (its config's split) are encoded once, whole; each setting
scores them cut, in turns with the whole reviews (``--rounds``), so each speed ratio is a
same-run one. A wide-and-deep model's n-gram part reads the whole text in every setting (as
its scorer does), so only the deep part's input changes. Validation only: the setting is
chosen here, and the test split is read once for the export that ships (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from benchmarks import emit
from sentiment import load_model
from sentiment.data.lengths import cut
from sentiment.runtime.precision import cpu_model
from sentiment.train.prepare import classifier_splits


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sentiment/models/imdb/reviews")
    parser.add_argument("--data", default="../shared/data/imdb",
                        help="where the model's data is (a local copy of its hub dataset)")
    parser.add_argument("--lengths", nargs="+", type=int, default=[256, 320, 384, 512])
    parser.add_argument("--keep", nargs="+", default=["start", "end"], choices=["start", "end"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="the first N validation reviews")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    model = load_model(args.model, "cpu")
    data = replace(model.config.data, source=args.data, max_length=None)
    valid = classifier_splits(data, model.config.split_seed)["valid"]
    if args.limit:
        valid = valid.select(range(min(args.limit, len(valid))))
    texts, labels = valid["text"], np.asarray(valid["label"])
    ids = model.encode(texts)
    wide = None if model.wide is None else model.wide.logits(texts)

    def scored(cut_ids):
        start = time.perf_counter()
        probs = model.probabilities(cut_ids)
        return model.joined(probs, wide), time.perf_counter() - start

    model.probabilities(ids[:64])  # warm-up
    settings = {"whole": ids} | {f"{keep} {length}": [cut(i, length, keep) for i in ids]
                                 for length in args.lengths for keep in args.keep}
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    accuracy, changed = {}, {}
    whole_probs = None
    for _ in range(args.rounds):
        for name, cut_ids in settings.items():
            probs, spent = scored(cut_ids)
            seconds[name].append(spent)
            if name == "whole":
                whole_probs = probs
            accuracy[name] = float(((probs >= 0.5) == labels).mean())
            changed[name] = int(((probs >= 0.5) != (whole_probs >= 0.5)).sum())
    tokens = {name: sum(map(len, cut_ids)) for name, cut_ids in settings.items()}
    result = {
        "model": args.model, "cpu": cpu_model(), "reviews": len(texts), "rounds": args.rounds,
        "validation_accuracy": accuracy,
        "labels_changed_from_whole": changed,
        "token_share": {name: count / tokens["whole"] for name, count in tokens.items()},
        "seconds": seconds,
        "time_ratio_to_whole": {name: sum(s) / sum(seconds["whole"])
                                for name, s in seconds.items()},
    }
    return emit(result, args.output)


if __name__ == "__main__":
    main()
