"""What the commands' parsers share: a command's parser and the flags for CSV files."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def command_parser(command: Callable, name: str) -> argparse.ArgumentParser:
    """The parser of ``sentiment NAME``, described by ``command``'s docstring."""
    return argparse.ArgumentParser(prog=f"sentiment {name}", description=command.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_row_rules(parser) -> None:
    """--on-bad-rows and --encoding-errors, for commands that read CSV files of one's own."""
    from ..config import BAD_ROWS, ENCODING_ERRORS

    parser.add_argument("--on-bad-rows", default="error", choices=BAD_ROWS,
                        help="a CSV row of the wrong field count: stop, naming its line, or "
                             "skip it and count it (default: %(default)s)")
    parser.add_argument("--encoding-errors", default="replace", choices=ENCODING_ERRORS,
                        help="invalid UTF-8 bytes in a text: replace them by U+FFFD and count "
                             "them, or stop (default: %(default)s)")
