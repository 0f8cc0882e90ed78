"""A confidence cascade's accuracy and the share of texts it sends to its full model, by
threshold, on the validation split (never the test split): the data for choosing a cascade's
threshold (:mod:`sentiment.kinds.cascade`).

    python -m benchmarks.cascade --fast runs/imdb-fast-onnx-int8 --full sentiment/models/imdb-onnx \
        --thresholds 0.9 0.95 0.97 0.98 0.99 0.995 --tolerance 0.001 --write runs/imdb-cascade

Each model scores the validation reviews of the full model's split once (the split its config
names, read from ``--data``); a threshold ``t`` keeps the fast model's probability where it is
at least ``t`` for its label, the full model's elsewhere. ``--tolerance``: the chosen threshold
is the smallest whose accuracy is at least the full model's minus this (fewest texts sent to
the full model); ``--write FOLDER`` saves that cascade there.
"""

from __future__ import annotations

import argparse

from benchmarks import emit
from sentiment.train.thresholds import THRESHOLDS, save_cascade, validation_sweep


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", required=True)
    parser.add_argument("--full", required=True)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS))
    parser.add_argument("--tolerance", type=float, default=0.001)
    parser.add_argument("--write", default=None, help="save the chosen cascade in this folder")
    parser.add_argument("--output", default=None, help="also write the result here (JSON)")
    args = parser.parse_args(argv)  # validation_sweep refuses thresholds outside [0.5, 1]
    result = {"fast": args.fast, "full": args.full,
              **validation_sweep(args.fast, args.full, args.data, args.thresholds,
                                 args.tolerance)}
    if args.write and result["chosen"] is not None:
        result["written"] = str(save_cascade(args.fast, args.full, result["chosen"],
                                             args.write))
    return emit(result, args.output)


if __name__ == "__main__":
    main()
