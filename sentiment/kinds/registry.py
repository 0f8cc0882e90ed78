"""One door for every saved model: a folder's ``model.json`` names its kind, and a registry
maps kinds to their loaders by module name, imported only when a folder of that kind is loaded
(as transformers' ``CONFIG_MAPPING`` maps ``model_type``).

    model.json   {"kind": "lstm", "format_version": 1}

Kinds (:data:`KINDS`): ``lstm`` (a PyTorch classifier), ``wide`` (one joined to an n-gram
model), ``ensemble``, ``ngram`` (a linear n-gram model), ``stack`` (a stacked teacher),
``onnx`` (an export), ``cascade`` (a fast and a full model), ``routed`` (short texts to one
model, long ones to another) and ``lm`` (a language model).
Composites load their members through :func:`load_folder`. A folder written before
``model.json`` existed is recognised by its files, once, in :func:`legacy_kind`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
from pathlib import Path

from ..jsonio import read_json
from .decisions import ANSWERS_FILE, Answers
from .folder import (
    CONTENT_FILES,
    FORMAT_VERSION,
    KIND_NAMES,
    MODEL_FILE,
    LoadOptions,
)
from .protocol import require

logger = logging.getLogger(__name__)

# kind -> the module whose ``MODEL`` is the class of what it loads: ``MODEL.load(folder, kind,
# options, load_folder)`` loads it (a composite loads its members with the last), and its
# capabilities are asked before loading
KINDS = {
    "lstm": "sentiment.kinds.lstm",
    "wide": "sentiment.kinds.lstm",
    "ensemble": "sentiment.kinds.lstm",
    "ngram": "sentiment.kinds.ngram",
    "stack": "sentiment.kinds.stack",
    "onnx": "sentiment.kinds.onnx",
    "cascade": "sentiment.kinds.cascade",
    "routed": "sentiment.kinds.routed",
    "lm": "sentiment.kinds.lm",
}
assert tuple(KINDS) == KIND_NAMES
CLASSIFIERS = frozenset(KINDS) - {"lm"}
TORCH_KINDS = frozenset({"lstm", "wide", "ensemble"})  # scored by PyTorch (on its threads)
# a legacy folder's kind, told from the first of these files it holds
# (an n-gram folder may hold the config.json of its split: linear.json is asked first)
LEGACY_FILES = (("cascade.json", "cascade"), ("model.onnx", "onnx"),
                ("ensemble.json", "ensemble"), ("stack.json", "stack"), ("linear.json", "ngram"),
                ("config.json", "lstm"))
QUANTIZE = ("none", "int8")  # load_model(..., quantize=...): int8 = dynamic int8 LSTM weights

# The models shipped inside the package, by name (predict(..., model="imdb-fast")); the first
# is the default (MODEL_CARD.md).
SHIPPED_ROOT = Path(__file__).parents[1] / "models"
SHIPPED_MODEL = SHIPPED_ROOT / "imdb"
SHIPPED_MODELS = {path.name: path for path in sorted(SHIPPED_ROOT.iterdir())
                  if path.is_dir()} if SHIPPED_ROOT.is_dir() else {}


def kind_of(folder: str | Path) -> str:
    """The kind of the model in ``folder``: from ``model.json``, else from its files
    (:func:`legacy_kind`). A folder with neither is a FileNotFoundError."""
    folder = Path(folder)
    if (folder / MODEL_FILE).is_file():
        spec = read_json(folder / MODEL_FILE)
        kind, version = spec.get("kind"), spec.get("format_version")
        if kind not in KINDS:
            raise ValueError(f"{folder / MODEL_FILE} names kind {kind!r}; this version of "
                             f"sentiment knows {list(KINDS)}")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{folder / MODEL_FILE} has format_version {version!r}; this "
                             f"version of sentiment reads up to {FORMAT_VERSION} (upgrade it)")
        return kind
    kind = legacy_kind(folder)
    if kind is None:
        raise FileNotFoundError(f"{folder} is not a saved model: no {MODEL_FILE}, nor the files "
                                "of a model saved before it")
    return kind


def legacy_kind(folder: Path) -> str | None:
    """The kind of a folder saved before ``model.json``, told from its files (None: not a
    model); logged once per folder."""
    kind = next((kind for name, kind in LEGACY_FILES if (folder / name).is_file()), None)
    if kind == "lstm":
        task = read_json(folder / "config.json").get("task")
        kind = "lstm" if task == "sentiment" else "lm"
        if kind == "lstm" and (folder / "wide.json").is_file():
            kind = "wide"
    if kind is not None:
        _say_once(f"{folder} has no {MODEL_FILE} (saved by an older version): loaded as "
                  f"kind {kind!r}, told from its files")
    return kind


@functools.cache
def _say_once(message: str) -> None:
    logger.warning(message)  # once a process: worth knowing, not worth repeating


def is_model_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() or any((folder / name).is_file()
                                                  for name, _ in LEGACY_FILES)


def content_key(folder: Path) -> tuple:
    """Each file that makes the model, with its time and size, its members' outside the folder
    included (a cascade's full model, a teacher's members): a model saved again at the same
    path, or given other answers, is loaded again."""
    names = {*CONTENT_FILES, MODEL_FILE, ANSWERS_FILE, "cascade.json", "routed.json", "wide.json"}
    files = sorted(p for p in folder.rglob("*") if p.name in names)
    key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    for member in _members_outside(folder):
        key += content_key(member)
    for head in (p for p in files if p.name == "wide.json"):  # a shared n-gram model's files
        shared = read_json(head).get("ngram_folder")
        if shared and not (head.parent / shared).resolve().is_relative_to(folder.resolve()):
            key += content_key((head.parent / shared).resolve())
    return key


def member_folders(folder: Path) -> list[Path]:
    """The member folders a composite (a cascade, a routed model, a stacked teacher) names."""
    if (folder / "cascade.json").is_file():
        from .cascade import stage_specs  # either way of writing cascade.json

        return [folder / stage["model"]
                for stage in stage_specs(read_json(folder / "cascade.json"))]
    if (folder / "routed.json").is_file():
        return [folder / route["model"]
                for route in read_json(folder / "routed.json").get("routes", [])]
    if (folder / "stack.json").is_file():
        return [folder / member for member in read_json(folder / "stack.json").get("members", [])]
    return []


def _members_outside(folder: Path) -> list[Path]:
    """The member folders a composite names outside itself."""
    inside = folder.resolve()
    return [path.resolve() for path in member_folders(folder) if path.is_dir()
            and not path.resolve().is_relative_to(inside)]


def scored_by_torch(folder: str | Path) -> bool:
    """Whether PyTorch scores the model in ``folder`` or one of its members (its threads are
    then the process's: ``torch.set_num_threads``)."""
    folder = Path(folder)
    return kind_of(folder) in TORCH_KINDS or any(
        scored_by_torch(member) for member in member_folders(folder) if member.is_dir())


def kind_class(kind: str) -> type:
    """The class a folder of ``kind`` loads as (its capabilities, before anything loads)."""
    return importlib.import_module(KINDS[kind]).MODEL


def load_folder(folder: str | Path, options: LoadOptions = LoadOptions()):
    """The model in ``folder``, by its kind's loader (uncached: composites load members here).
    Options a kind cannot take are refused by its loader, with the reason."""
    folder = Path(folder)
    kind = kind_of(folder)
    if options.quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, not {options.quantize!r}")
    model_class = kind_class(kind)
    if options.quantize != "none":
        require(model_class, "quantize", where=folder)
    model = model_class.load(folder, kind, options, load_folder)
    if kind in CLASSIFIERS:
        model.answers = Answers.of(folder)
    return model


def default_model_path() -> Path:
    """The model scored when none is named and ``$SENTIMENT_MODEL`` is unset: the shipped model,
    or in an install without torch its ONNX export ``imdb-onnx`` (the same model reading each
    text's last 288 tokens; MODEL_CARD.md), which scores without torch."""
    if importlib.util.find_spec("torch") is None and "imdb-onnx" in SHIPPED_MODELS:
        _say_once("torch is not installed: scoring with the shipped model's ONNX export, "
                  "imdb-onnx (MODEL_CARD.md)")
        return SHIPPED_MODELS["imdb-onnx"]
    return SHIPPED_MODEL


def resolve_model_path(model: str | Path | None) -> Path:
    """``model`` (a folder, or the name of a shipped model: ``imdb``, ``imdb-fast``,
    ``imdb-onnx``, ``imdb-cascade``), else ``$SENTIMENT_MODEL``, else the default
    (:func:`default_model_path`)."""
    path = Path(model or os.environ.get("SENTIMENT_MODEL") or default_model_path())
    if not is_model_folder(path) and str(path) in SHIPPED_MODELS:
        path = SHIPPED_MODELS[str(path)]
    if not is_model_folder(path):
        raise FileNotFoundError(
            f"no trained sentiment model at {str(path)!r}. Train one with "
            f"`sentiment train --output {path}` (python scripts/train_sentiment.py in a checkout), "
            "or point to one with predict(..., model=PATH) or the SENTIMENT_MODEL environment "
            "variable."
        )
    return path.resolve()


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, key: tuple, options: LoadOptions):
    return load_folder(path, options)


def load_model(model: str | Path | None = None, device=None, quantize: str = "none",
               threads: int | None = None):
    """Load (and cache per path, device, quantization and threads) a saved sentiment model of
    any classifier kind.

    The path is ``model`` (a folder, or a shipped model's name: ``imdb``, ``imdb-fast``,
    ``imdb-onnx``, ``imdb-cascade``), else ``$SENTIMENT_MODEL``, else the model shipped with
    the package (:data:`SHIPPED_MODEL`, described in MODEL_CARD.md; without torch,
    ``imdb-onnx``). An ONNX export is scored with ONNX Runtime, on the CPU, without torch; a
    cascade by its two members. ``quantize="int8"``: the LSTMs with dynamic int8 weights (a
    PyTorch model on the CPU). ``threads``: the ONNX Runtime session's threads for an exported
    folder (default: its own choice); a PyTorch model runs on torch's threads, which are the
    process's (``torch.set_num_threads``).
    """
    path = resolve_model_path(model)
    kind = kind_of(path)
    if kind not in CLASSIFIERS:
        raise ValueError(f"{path} is a {kind!r} model, not a sentiment model (a language model "
                         "generates text: sentiment generate --model PATH)")
    options = LoadOptions("auto" if device is None else str(device), quantize, threads)
    if kind in TORCH_KINDS and importlib.util.find_spec("torch") is not None:
        from ..runtime.precision import resolve_device  # cached per the device it resolves to

        options = LoadOptions(str(resolve_device(options.device)), quantize, threads)
    return _load_cached(str(path), content_key(path), options)
