"""Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    python scripts/train_charlm.py --text ../shared/data/text/timemachine.txt --preset d2l \
        --output runs/timemachine
"""

from __future__ import annotations

import argparse
import json

from sentiment.charlm import PRESETS, CharLMConfig, make_config, train_language_model
from sentiment.cli import add_dataclass_options, dataclass_values, setup_logging, use_tcmalloc
from sentiment.training import TrainConfig


def main() -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(PRESETS), default="default",
                     help="d2l: d2l's Time Machine settings; tiny: seconds; shakespeare: "
                          "tiny Shakespeare on a CPU budget (default: %(default)s)")
    preset = pre.parse_known_args()[0].preset
    defaults = make_config(preset)
    parser = argparse.ArgumentParser(description=__doc__, parents=[pre],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", nargs="+", required=True, help="UTF-8 text file(s)")
    add_dataclass_options(parser, CharLMConfig, defaults, skip=("text",))
    add_dataclass_options(parser, TrainConfig, defaults.train)
    for action in parser._actions:  # the short names for choices
        if action.dest in ("mode", "rnn", "input", "sampling", "optimizer"):
            action.choices = {"mode": ["raw", "d2l"], "rnn": ["lstm", "gru", "rnn"],
                              "input": ["onehot", "embedding"],
                              "sampling": ["sequential", "random"],
                              "optimizer": ["sgd", "adam"]}[action.dest]
    args = parser.parse_args()
    setup_logging()
    overrides = {**dataclass_values(args, CharLMConfig), **dataclass_values(args, TrainConfig)}
    overrides.pop("train", None)
    summary = train_language_model(make_config(preset, **overrides))
    best = summary["best"]
    print(json.dumps({
        "output": overrides["output"], "epochs_run": summary["epochs_run"],
        "train_seconds": round(summary["train_seconds"], 1),
        "best_epoch": best.get("epoch"),
        "valid_loss_nats": best.get("valid_loss"), "valid_perplexity": best.get("valid_perplexity"),
        "train_perplexity": summary["last"].get("train_perplexity"),
    }, indent=2))


if __name__ == "__main__":
    use_tcmalloc()
    main()
