"""The training commands: train, pretrain and train-charlm, under torchrun or alone."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable


def _train_command(command: Callable, name: str, module: str, run: str,
                   required: tuple[str, ...] = (), argv: list[str] | None = None) -> None:
    """Parse a training command's flags (its task's own; ``command``'s docstring describes
    them), run ``module.run`` under torchrun or alone, and print the summary
    ``module.summary_line`` makes of it."""
    import importlib

    from .options import parse_config

    task = importlib.import_module(f"sentiment.train.{module}")
    config = parse_config(command.__doc__, task.PRESETS, task.make_config,
                          required=required, argv=argv, prog=f"sentiment {name}")
    with _processes(config) as main:
        summary = getattr(task, run)(config)
    if main:
        print(json.dumps({"output": config.train.output, **task.summary_line(summary)},
                         indent=2))


def train(argv: list[str] | None = None) -> None:
    """Train the sentiment classifier, keep the best model on validation, report on test.

    sentiment train                                   # IMDB from the Hugging Face hub
    sentiment train --data reviews.csv --text-column review --label-column stars
    sentiment train --data imdb/ --vectors glove.6B.50d.txt.gz --output runs/imdb
    sentiment train --encoder runs/lm                 # fine-tune a pretrained core
    """
    _train_command(train, "train", "recipe", "train_sentiment", argv=argv)


def pretrain(argv: list[str] | None = None) -> None:
    """Pretrain the classifier's core as a word-level bidirectional language model on IMDB's
    unlabelled reviews plus the classifier's training reviews (never its validation or test ones).

    sentiment pretrain --output runs/lm
    sentiment train --encoder runs/lm
    sentiment generate --model runs/lm --prefix "this movie was" --num-chars 20
    """
    _train_command(pretrain, "pretrain", "pretrain", "pretrain_language_model", argv=argv)


def train_charlm(argv: list[str] | None = None) -> None:
    """Train a character-level language model (RNN/GRU/LSTM) on one or more UTF-8 text files.

    sentiment train-charlm --text timemachine.txt --preset d2l --output runs/timemachine
    sentiment generate --model runs/timemachine --prefix "time traveller"

    Presets: d2l (the settings of Dive into Deep Learning's Time Machine), tiny (seconds),
    shakespeare (tiny Shakespeare on a CPU budget).
    """
    _train_command(train_charlm, "train-charlm", "charlm", "train_language_model",
                   ("text",), argv)


@contextlib.contextmanager
def _processes(config):
    """Under torchrun: join the process group for the run, quiet the other ranks' logs, and
    leave the group at the end (a no-op in one process). Yields whether this process is the
    one that reports."""
    import logging

    from ..runtime.distributed import cleanup, init_from_env, is_main

    init_from_env(config.train.device)
    main = is_main()
    if not main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        yield main
    finally:
        cleanup()
