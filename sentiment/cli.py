"""Helpers for the thin scripts: dataclass options as flags, logging, and process set-up."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

import psutil

TCMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
)
# tcmalloc keeps the memory it frees: a full IMDB epoch (bf16) peaked at 11 GB of RSS under
# tcmalloc against 6 GB under glibc, at 1.3x the speed (BENCHMARKS.md). With less RAM than this
# the scripts keep glibc's allocator unless SENTIMENT_TCMALLOC=1 asks for tcmalloc.
TCMALLOC_MIN_RAM_GIB = 20


def tcmalloc_library() -> str | None:
    """The path of the installed tcmalloc library, or None."""
    return next((p for p in TCMALLOC_PATHS if Path(p).exists()), None)


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "") else kind(text)

    parse.__name__ = kind.__name__
    return parse


_TYPES = {"int": int, "float": float, "str": str}


def add_dataclass_options(
    parser: argparse.ArgumentParser, cls, defaults, skip: tuple = (), prefix: str = ""
) -> None:
    """Add a ``--flag`` for every field of dataclass ``cls``, defaulting to ``defaults``' value."""
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(getattr(defaults, f.name)):
            continue
        flag = "--" + (prefix + f.name).replace("_", "-")
        default = getattr(defaults, f.name)
        type_name = str(f.type).replace(" ", "")
        optional = "None" in type_name
        base = type_name.replace("|None", "").replace("None|", "")
        help_text = f"(default: {default})"
        if base == "bool":
            parser.add_argument(flag, dest=prefix + f.name, default=default,
                                action=argparse.BooleanOptionalAction, help=help_text)
            continue
        kind = _TYPES.get(base, str)
        parser.add_argument(flag, dest=prefix + f.name, default=default,
                            type=_parse_optional(kind) if optional else kind,
                            metavar=base.upper(), help=help_text + (" ('none' to unset)"
                                                                    if optional else ""))


def dataclass_values(args: argparse.Namespace, cls, prefix: str = "") -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {name[len(prefix):]: value for name, value in vars(args).items()
            if name.startswith(prefix) and name[len(prefix):] in names}


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "urllib3", "filelock", "fsspec", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def use_tcmalloc() -> None:
    """Re-execute this script under tcmalloc when it is installed and not already preloaded.

    glibc's allocator returns every large tensor's memory to the kernel between batches of
    different lengths and faults it back in; on CPU that cost up to 2/3 of the training time
    (see BENCHMARKS.md). tcmalloc keeps it in the process. It acts on the whole process, so it
    belongs here, in entry points, never at library import. ``SENTIMENT_NO_TCMALLOC=1`` opts out;
    on machines with less than ``TCMALLOC_MIN_RAM_GIB`` of RAM it is opt-in
    (``SENTIMENT_TCMALLOC=1``), because tcmalloc's speed costs memory.
    """
    if os.environ.get("SENTIMENT_NO_TCMALLOC") or "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    library = tcmalloc_library()
    if library is None:
        return
    ram_gib = psutil.virtual_memory().total / 2**30
    if ram_gib < TCMALLOC_MIN_RAM_GIB and not os.environ.get("SENTIMENT_TCMALLOC"):
        print(f"keeping glibc's allocator: {ram_gib:.0f} GiB of RAM is under the "
              f"{TCMALLOC_MIN_RAM_GIB} GiB that tcmalloc's speed-up costs here "
              "(SENTIMENT_TCMALLOC=1 to use it anyway)", file=sys.stderr)
        return
    env = {**os.environ, "LD_PRELOAD": f"{library} {os.environ.get('LD_PRELOAD', '')}".strip()}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)
