"""Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    python scripts/train_charlm.py --text ../shared/data/text/timemachine.txt --preset d2l \
        --output runs/timemachine

Presets: d2l (d2l's Time Machine settings), tiny (seconds), shakespeare (tiny Shakespeare on a
CPU budget).
"""

from __future__ import annotations

import json

from sentiment.charlm import PRESETS, make_config, train_language_model
from sentiment.cli import (
    add_config_options,
    config_from_args,
    preset_parser,
    setup_logging,
    use_tcmalloc,
)


def main() -> None:
    parser, defaults = preset_parser(__doc__, PRESETS, make_config)
    add_config_options(parser, defaults)
    args = parser.parse_args()
    if not args.text:
        parser.error("--text is required: one or more UTF-8 text files")
    setup_logging()
    config = config_from_args(args, defaults)
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
