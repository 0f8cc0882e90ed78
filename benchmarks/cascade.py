"""A confidence cascade's accuracy and the share of texts each stage scores, by thresholds, on
the validation split (never the test split): the data for choosing a cascade's thresholds
(:mod:`sentiment.kinds.cascade`).

    python -m benchmarks.cascade --fast runs/imdb-fast-onnx-int8 --full sentiment/models/imdb-onnx \
        --thresholds 0.9 0.95 0.97 0.98 0.99 0.995 --tolerance 0.001 --write runs/imdb-cascade
    python -m benchmarks.cascade --stages imdb-ngram sentiment/models/imdb-cascade/fast imdb-onnx \
        --write runs/imdb-cascade3 --output runs/cascade3-valid.json

Each model scores the validation reviews of the last model's split once (the split its config
names, read from ``--data``), timed; thresholds ``t1, t2, ...`` keep a stage's probability where
it is at least its ``t`` for its label and send the rest on. ``--tolerance``: the chosen
thresholds are the cheapest combination (each stage's seconds per review, or ``--costs``, times
the share of texts it scores) whose accuracy is at least the last model's minus this;
``--write FOLDER`` saves that cascade there.
"""

from __future__ import annotations

import argparse

from benchmarks import emit
from sentiment.train.thresholds import THRESHOLDS, save_cascade, validation_sweep


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", default=None, help="the models, cheapest first")
    parser.add_argument("--fast", default=None, help="with --full: --stages FAST FULL")
    parser.add_argument("--full", default=None)
    parser.add_argument("--costs", nargs="+", type=float, default=None)
    parser.add_argument("--data", default="../shared/data/imdb")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(THRESHOLDS))
    parser.add_argument("--tolerance", type=float, default=0.001)
    parser.add_argument("--write", default=None, help="save the chosen cascade in this folder")
    parser.add_argument("--output", default=None, help="also write the result here (JSON)")
    args = parser.parse_args(argv)  # validation_sweep refuses thresholds outside [0.5, 1]
    stages = args.stages or [args.fast, args.full]
    if None in stages:
        parser.error("name the models with --stages, or with --fast and --full")
    result = validation_sweep(stages, args.data, args.thresholds, args.tolerance, args.costs)
    if args.write and result["chosen"] is not None:
        result["written"] = str(save_cascade(stages, result["chosen"], args.write))
    return emit(result, args.output)


if __name__ == "__main__":
    main()
