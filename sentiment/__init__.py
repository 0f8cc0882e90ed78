"""LSTM sentiment classifiers for movie reviews, and character-level language models.

``from sentiment import predict, load_model``: both are imported on first use, so that
``import sentiment`` (and ``sentiment --version``) costs nothing, and importing the package
changes nothing global (process settings live in the entry points: :mod:`sentiment.cli`)."""

from __future__ import annotations

__all__ = ["load_model", "predict"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "predict":
        from .inference.predict import predict

        return predict
    if name == "load_model":
        from .kinds.registry import load_model

        return load_model
    raise AttributeError(f"module 'sentiment' has no attribute {name!r}")
