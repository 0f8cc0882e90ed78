"""Helpers for the thin scripts: dataclass options as flags, logging, and process set-up."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
import warnings
from pathlib import Path

import psutil

from ..config import Config, apply_overrides, field_type, leaf_fields, sections

TCMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
)
# tcmalloc keeps the memory it frees: a full IMDB epoch (bf16) peaked at 11 GB of RSS under
# tcmalloc against 6 GB under glibc, at 1.3x the speed (BENCHMARKS.md). With less RAM than this
# the scripts keep glibc's allocator unless SENTIMENT_TCMALLOC=1 asks for tcmalloc.
TCMALLOC_MIN_RAM_GIB = 20


# The headings of a training command's --help: each config section's options sit under its
# group (a field's metadata "group" moves it: the run's folder and report go under output).
OPTION_GROUPS = {
    "data": "what the model reads, and how it is split, tokenized and batched",
    "model": "the architecture, and where its first weights come from",
    "training": "how it learns: optimizer, schedule, regularisation, when it stops",
    "output": "where the run is written, and what it shows and reports",
}
SECTION_GROUPS = {"data": "data", "model.core": "model", "model.head": "model", "model": "model",
                  "train": "training"}


def tcmalloc_library() -> str | None:
    """The path of the installed tcmalloc library, or None."""
    return next((p for p in TCMALLOC_PATHS if Path(p).exists()), None)


def _parse_optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def shown_default(value, secret: bool = False) -> str:
    """A default as one types it: ``none``, ``on``/``off``, a list's values space-separated;
    a secret only as ``set``."""
    if secret and value:
        return "set"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value)) or "none"
    return str(value)


def add_field_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str,
                     f: dataclasses.Field, default, hint) -> None:
    """A ``--name`` flag for dataclass field ``f`` of type ``hint``: its help (metadata
    ``help``) and default, typed, with its choices shown as ``{a,b}``, ``--x/--no-x`` for
    booleans, several values for lists, ``none`` for optional ones."""
    flag = "--" + name.replace("_", "-")
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    shown = shown_default(default, secret=f.name == "api_key")  # never print a secret
    unset = "; none accepted" if optional and default is not None else ""
    help_text = " ".join(filter(None, [f.metadata.get("help"), f"(default: {shown}{unset})"]))
    choices = f.metadata.get("choices")
    if base is bool:
        parser.add_argument(flag, dest=name, default=default, help=help_text,
                            action=argparse.BooleanOptionalAction)
        return
    nargs = None
    if typing.get_origin(base) is list:
        nargs, base = "+", typing.get_args(base)[0]
    parser.add_argument(flag, dest=name, default=default, nargs=nargs,
                        type=_parse_optional(base) if optional else base, choices=choices,
                        metavar=None if choices else base.__name__.upper(), help=help_text)


def add_dataclass_options(parser: argparse.ArgumentParser, defaults) -> None:
    """A flag for every field of the dataclass instance ``defaults`` (a plain settings class)."""
    hints = typing.get_type_hints(type(defaults))
    for f in dataclasses.fields(defaults):
        add_field_option(parser, f.name, f, getattr(defaults, f.name), hints[f.name])


def add_config_options(parser: argparse.ArgumentParser, config: Config, skip: tuple = ()) -> None:
    """A ``--flag`` for every settable field of ``config`` (its option name, dashes for
    underscores), defaulting to ``config``'s value, under its group's heading
    (:data:`OPTION_GROUPS`)."""
    groups = {name: parser.add_argument_group(name, about) for name, about in OPTION_GROUPS.items()}
    paths = {id(section): path for path, section in sections(config).items()}
    for name, (section, f) in leaf_fields(config, task_only=True).items():
        if name not in skip:
            group = f.metadata.get("group") or SECTION_GROUPS[paths[id(section)]]
            add_field_option(groups[group], name, f, getattr(section, f.name),
                             field_type(section, f))


def config_from_args(args: argparse.Namespace, config: Config) -> Config:
    """``config`` with every option parsed into ``args`` applied."""
    values = {name: getattr(args, name) for name in leaf_fields(config, task_only=True)
              if hasattr(args, name)}
    return apply_overrides(config, values)


def parse_config(description: str, presets: dict, make_config,
                 required: tuple[str, ...] = (), argv: list[str] | None = None,
                 prog: str | None = None) -> Config:
    """The run's :class:`Config` from the command line (``argv``, default ``sys.argv[1:]``):
    ``--preset``, then a flag per config field (``required`` ones must be given),
    ``--verbose``; sets up logging."""
    parser, defaults = preset_parser(description, presets, make_config, argv, prog)
    # the options are listed by group below; the usage line names only what a run needs
    parser.usage = " ".join(["%(prog)s", *(f"--{name.replace('_', '-')} ..." for name in required),
                             f"[--preset {{{','.join(sorted(presets))}}}] [OPTION ...]"])
    add_config_options(parser, defaults)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    for name in required:
        if not getattr(args, name):
            parser.error(f"--{name.replace('_', '-')} is required")
    setup_logging(args.verbose)
    set_threads(args.threads)
    config = config_from_args(args, defaults)
    quiet_progress(config.train.progress)
    return config


def quiet_progress(progress: bool) -> None:
    """``--progress/--no-progress`` for datasets' bars too (the package's own bars follow the
    flag where they are drawn). For entry points: the switch is process-wide, so each command
    sets it both ways (a command run from Python after a quiet one shows its bars again).

    Quiet, it also hushes tqdm's "IProgress not found" warning, which a Jupyter kernel without
    ipywidgets prints when ``tqdm.auto`` is first imported (by datasets and the training loop),
    bars or none: a notebook calls ``quiet_progress(False)`` before importing the rest."""
    if not progress:
        warnings.filterwarnings("ignore", message="IProgress not found")
    import datasets

    if progress and sys.stderr.isatty():  # as tqdm's disable=None: no bars in a log or a pipe
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()


def preset_parser(description: str, presets: dict, make_config,
                  argv: list[str] | None = None, prog: str | None = None) -> tuple:
    """``(parser, defaults)``: a parser whose ``--preset`` picks the defaults of every other
    option (parsed first, so ``--help`` shows the preset's values)."""
    pre = argparse.ArgumentParser(add_help=False, prog=prog)
    pre.add_argument("--preset", choices=sorted(presets), default="default",
                     help="settings to start from (default: %(default)s)")
    preset = pre.parse_known_args(argv)[0].preset
    defaults = make_config(preset)
    parser = argparse.ArgumentParser(description=description, parents=[pre], prog=prog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, defaults


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """--threads: torch's CPU threads for this command (default: ``$SENTIMENT_THREADS``, else
    torch's own choice, one per core)."""
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: $SENTIMENT_THREADS, else one per "
                             "core); on a machine other jobs keep busy, 1 can be many times "
                             "faster")


def set_threads(threads: int | None) -> None:
    """Run torch on ``threads`` CPU threads (``None``: ``$SENTIMENT_THREADS``, else torch's
    default). Without either, a machine whose load already fills its cores is logged once:
    torch's threads then wait on each other (on 2 busy cores ``predict`` ran 20-100x slower with
    2 threads than with 1; docs/inference.md)."""
    threads = threads or int(os.environ.get("SENTIMENT_THREADS") or 0) or None
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be 1 or more, not {threads}")
    cores = os.cpu_count() or 1
    if threads is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if load >= cores + 1:
            logging.getLogger(__name__).warning(
                "this machine is busy (load %.1f on %d cores): torch's %d threads may run many "
                "times slower than one; try --threads 1 (or SENTIMENT_THREADS=1)", load, cores,
                cores)
        return
    import torch

    torch.set_num_threads(threads)


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
    # `python -m sentiment ...` must come back as a module run (relative imports), a script or
    # console command as itself
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    target = (["-m", spec.name.removesuffix(".__main__")] if spec is not None and spec.name
              else [sys.argv[0]])
    os.execve(sys.executable, [sys.executable, *target, *sys.argv[1:]], env)
