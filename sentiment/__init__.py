"""LSTM sentiment classifiers for movie reviews, and character-level language models."""

from __future__ import annotations

import os

# oneDNN, torch's CPU kernels for the LSTM, keeps a compiled primitive for every input shape it
# meets, up to 1,024 of them. Length-bucketed batches (and a server's requests) bring a new shape
# almost every step, so the cache only grew: most of the 1.7 -> 3.0 GB an IMDB epoch crept by
# (BENCHMARKS.md, training memory). A few entries serve as well; a user's own setting wins. Read
# when oneDNN first runs, so it holds here, before anything scores or trains.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")

from .predict import load_model, predict  # noqa: E402

__all__ = ["load_model", "predict"]
__version__ = "0.1.0"
