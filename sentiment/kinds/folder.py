"""What a saved model folder is, before any kind is loaded: ``model.json`` (its kind and format
version), the files whose bytes make a model, and the options a folder is loaded with. Every
kind writes its folder through here; only :mod:`sentiment.kinds.registry` loads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..jsonio import write_json

MODEL_FILE = "model.json"
FORMAT_VERSION = 1
KIND_NAMES = ("lstm", "wide", "ensemble", "ngram", "stack", "onnx", "cascade", "routed", "lm")
# the files whose bytes make a model what it is, in this order. Frozen: a stacked teacher's
# member fingerprints hash them, so the order and the set are part of every saved teacher, and
# model.json (which names the kind without changing the model) is not among them.
CONTENT_FILES = ("config.json", "vocab.json", "model.safetensors", "ensemble.json", "model.onnx",
                 "linear.json", "ngrams.json", "linear.safetensors", "stack.json")
DEEP_FILES = CONTENT_FILES[:3]  # a PyTorch classifier's: config.json, vocab.json, weights


@dataclass(frozen=True)
class LoadOptions:
    """How to load a folder: ``device`` for PyTorch kinds ("auto": CUDA where present),
    ``quantize`` ("int8": dynamic int8 LSTM weights), ``threads`` for ONNX Runtime."""

    device: str = "auto"
    quantize: str = "none"
    threads: int | None = None


def write_model_file(folder: str | Path, kind: str, **extra) -> Path:
    """Declare ``folder``'s kind: ``model.json`` with ``kind`` and :data:`FORMAT_VERSION`."""
    if kind not in KIND_NAMES:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(KIND_NAMES)}")
    return write_json(Path(folder) / MODEL_FILE,
                      {"kind": kind, "format_version": FORMAT_VERSION, **extra})


def read_config(directory: str | Path) -> Config:
    """The :class:`Config` of a saved model folder (torch-free: every kind reads it here)."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a saved model: config.json is missing")
    try:
        return Config.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
