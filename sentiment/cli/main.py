"""Train, evaluate and serve LSTM sentiment classifiers; train character language models.

    sentiment train                                   # the IMDB classifier
    sentiment pretrain --output runs/lm               # the word language model
    sentiment train-charlm --text book.txt            # a character language model
    sentiment evaluate --model runs/sentiment         # the evaluation report
    sentiment predict "A wonderful film."             # one JSON line per text
    sentiment generate --model runs/lm --prefix "the" # text from a language model
    sentiment serve                                   # a web page and a JSON API
    sentiment ensemble --models A B --output C        # one model averaging saved ones
    sentiment teacher --members A --output T          # a stacked teacher for distillation
    sentiment wide --model A --output W               # A joined to an n-gram model
    sentiment cascade --fast A --full B --output C    # A where it is sure, B elsewhere
    sentiment route --models A B --max-words 40 --output R  # short texts to A, the rest to B
    sentiment export --format onnx --output D         # ONNX, for installs without torch

sentiment COMMAND --help lists a command's options. A mistake (a missing file, a bad value) ends
with one line on stderr and exit status 1; SENTIMENT_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib.metadata import version

from .build import cascade, ensemble, route, teacher, wide
from .score import evaluate, export, generate, predict
from .serving import serve
from .training import pretrain, train, train_charlm

# What a user's mistake raises (missing file or folder, bad value or column): one line, exit 1.
# ImportError: an optional extra (serve) that is not installed.
# ConnectionError: a download that failed (sentiment.data.sources.FetchError says the offline way).
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
               ValueError, KeyError, ImportError, ConnectionError)


COMMANDS: dict[str, Callable[[list[str] | None], None]] = {
    "train": train, "pretrain": pretrain, "train-charlm": train_charlm, "evaluate": evaluate,
    "predict": predict, "generate": generate, "serve": serve, "ensemble": ensemble,
    "teacher": teacher, "wide": wide, "cascade": cascade, "route": route,
    "export": export,
}
TRAINING = ("train", "pretrain", "train-charlm")  # long CPU work: worth tcmalloc


def run(name: str, argv: list[str] | None = None) -> int:
    """Run command ``name``; a user mistake prints one line on stderr and returns 1."""
    from ..runtime.memory import cap_kernel_cache

    cap_kernel_cache()  # before anything scores or trains
    try:
        COMMANDS[name](argv)
    except USER_ERRORS as error:
        if os.environ.get("SENTIMENT_DEBUG"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"sentiment {name}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"sentiment {name}: interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """``sentiment <command> [options]``; ``argv`` given (a call from Python, a test) never
    re-executes the process."""
    from_shell = argv is None
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="sentiment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"sentiment {version('sentiment-lstm')}")
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="the command's options (sentiment <command> --help)")
    if not argv or argv[0] in ("-h", "--help", "--version"):
        if argv and argv[0] == "--version":
            parser.parse_args(argv[:1])  # prints it and exits 0
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    if args.command in TRAINING and from_shell:
        from .options import use_tcmalloc

        use_tcmalloc()  # re-executes this process under tcmalloc where that pays (see cli)
    return run(args.command, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
