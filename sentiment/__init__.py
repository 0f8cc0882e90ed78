"""LSTM sentiment classifiers for movie reviews, and character-level language models."""

from __future__ import annotations

from .predict import load_model, predict

__all__ = ["load_model", "predict"]
__version__ = "0.1.0"
