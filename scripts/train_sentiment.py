"""Train the IMDB sentiment classifier, keep the best model on validation, report on test.

    python scripts/train_sentiment.py
    python scripts/train_sentiment.py --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz
    python scripts/train_sentiment.py --data ../shared/data/imdb --encoder runs/lm   # fine-tune
"""

from __future__ import annotations

import json

from sentiment.cli import parse_config, use_tcmalloc
from sentiment.pipeline import PRESETS, make_config, train_sentiment


def main() -> None:
    config = parse_config(__doc__, PRESETS, make_config)
    summary = train_sentiment(config)
    report = summary.get("report", {})
    print(json.dumps({
        "output": config.train.output,
        "epochs_run": summary["epochs_run"],
        "train_seconds": round(summary["train_seconds"], 1),
        "test_accuracy": report.get("accuracy"),
        "test_accuracy_ci95": report.get("accuracy_ci95"),
        "baseline_accuracy": report.get("baseline", {}).get("accuracy"),
        "baselines": {b["short_name"]: b["accuracy"] for b in report.get("baselines", [])},
    }, indent=2))


if __name__ == "__main__":
    use_tcmalloc()
    main()
