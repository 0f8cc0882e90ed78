"""Pretrain the classifier's core as a word-level bidirectional language model on IMDB's
unlabelled reviews plus the classifier's training reviews (never its validation or test ones).

    python scripts/pretrain_lm.py --data ../shared/data/imdb \
        --vectors ../shared/data/glove/glove.6B.50d.txt.gz --output runs/lm
    python scripts/train_sentiment.py --data ../shared/data/imdb --encoder runs/lm
    python scripts/generate.py --model runs/lm --prefix "this movie was" --num-chars 20
"""

from __future__ import annotations

import json

from sentiment.cli import parse_config, use_tcmalloc
from sentiment.pretrain import PRESETS, make_config, pretrain_language_model


def main() -> None:
    config = parse_config(__doc__, PRESETS, make_config)
    summary = pretrain_language_model(config)
    best = summary["best"]
    print(json.dumps({
        "output": config.train.output, "epochs_run": summary["epochs_run"],
        "train_seconds": round(summary["train_seconds"], 1),
        "train_tokens": summary["train_tokens"], "valid_tokens": summary["valid_tokens"],
        "best_epoch": best.get("epoch"), "valid_perplexity": best.get("valid_perplexity"),
        "valid_forward_perplexity": best.get("valid_forward_perplexity"),
        "valid_backward_perplexity": best.get("valid_backward_perplexity"),
    }, indent=2))


if __name__ == "__main__":
    use_tcmalloc()
    main()
