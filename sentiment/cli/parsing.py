"""What the commands' parsers share: a command's parser and the flags for CSV files."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def command_parser(command: Callable, name: str) -> argparse.ArgumentParser:
    """The parser of ``sentiment NAME``, described by ``command``'s docstring, with the flags
    every command takes (:func:`add_common_options`)."""
    parser = argparse.ArgumentParser(prog=f"sentiment {name}", description=command.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--progress/--no-progress and --verbose: every command takes them."""
    common = parser.add_argument_group("common options")
    common.add_argument("--progress", default=True, action=argparse.BooleanOptionalAction,
                        help="progress bars, the datasets library's too (default: on)")
    common.add_argument("--verbose", action="store_true", help="debug logging")
    from .options import add_threads_option

    add_threads_option(common)


def add_data_option(parser: argparse.ArgumentParser, whose: str) -> None:
    """--data: where a saved model's data is when not where its config says (a local copy of a
    hub dataset, say)."""
    parser.add_argument("--data", default=None,
                        help=f"where {whose} data is, when not where the config says")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``argv`` parsed, with the common options applied: logging set up, progress bars on or
    off."""
    from .options import quiet_progress, set_threads, setup_logging

    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    quiet_progress(args.progress)
    set_threads(args.threads)
    return args


def add_row_rules(parser) -> None:
    """--on-bad-rows and --encoding-errors, for commands that read CSV files of one's own."""
    from ..config import BAD_ROWS, ENCODING_ERRORS

    parser.add_argument("--on-bad-rows", default="error", choices=BAD_ROWS,
                        help="a CSV row of the wrong field count: stop, naming its line, or "
                             "skip it and count it (default: %(default)s)")
    parser.add_argument("--encoding-errors", default="replace", choices=ENCODING_ERRORS,
                        help="invalid UTF-8 bytes in a text: replace them by U+FFFD and count "
                             "them, or stop (default: %(default)s)")
