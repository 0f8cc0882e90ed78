"""Train the IMDB sentiment classifier, keep the best model on validation, report on test.

    python scripts/train_sentiment.py
    python scripts/train_sentiment.py --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz
"""

from __future__ import annotations

import argparse
import json

from sentiment.cli import add_dataclass_options, dataclass_values, setup_logging, use_tcmalloc
from sentiment.pipeline import PRESETS, SentimentConfig, make_config, train_sentiment
from sentiment.training import TrainConfig


def main() -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(PRESETS), default="default")
    preset = pre.parse_known_args()[0].preset
    defaults = make_config(preset)
    parser = argparse.ArgumentParser(description=__doc__, parents=[pre],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_options(parser, SentimentConfig, defaults)
    add_dataclass_options(parser, TrainConfig, defaults.train)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args()
    setup_logging(args.verbose)
    overrides = {**dataclass_values(args, SentimentConfig), **dataclass_values(args, TrainConfig)}
    overrides.pop("train", None)
    summary = train_sentiment(make_config(preset, **overrides))
    report = summary.get("report", {})
    print(json.dumps({
        "output": overrides["output"],
        "epochs_run": summary["epochs_run"],
        "train_seconds": round(summary["train_seconds"], 1),
        "test_accuracy": report.get("accuracy"),
        "baseline_accuracy": report.get("baseline", {}).get("accuracy"),
    }, indent=2))


if __name__ == "__main__":
    use_tcmalloc()
    main()
