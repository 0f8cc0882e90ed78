"""Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    python scripts/train_charlm.py --text ../shared/data/text/timemachine.txt --preset d2l \
        --output runs/timemachine

Presets: d2l (d2l's Time Machine settings), tiny (seconds), shakespeare (tiny Shakespeare on a
CPU budget).
"""

from __future__ import annotations

import json

from sentiment.charlm import PRESETS, make_config, train_language_model
from sentiment.cli import parse_config, use_tcmalloc


def main() -> None:
    config = parse_config(__doc__, PRESETS, make_config, required=("text",))
    summary = train_language_model(config)
    best = summary["best"]
    print(json.dumps({
        "output": config.train.output, "epochs_run": summary["epochs_run"],
        "train_seconds": round(summary["train_seconds"], 1),
        "best_epoch": best.get("epoch"),
        "valid_loss_nats": best.get("valid_loss"), "valid_perplexity": best.get("valid_perplexity"),
        "train_perplexity": summary["last"].get("train_perplexity"),
    }, indent=2))


if __name__ == "__main__":
    use_tcmalloc()
    main()
