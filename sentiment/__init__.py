"""LSTM sentiment classifiers for movie reviews, and character-level language models."""

from __future__ import annotations

import os

# oneDNN, torch's CPU kernels for the LSTM, keeps a compiled primitive for every input shape it
# meets, up to 1,024 of them. Length-bucketed batches (and a server's requests) bring new shapes
# all the time, so the cache grew through a whole IMDB epoch: the README's command peaked at
# 2.8-3.1 GB uncapped, 2.6 GB at 256 entries (3% slower to train), 2.3 GB at 32 (8% slower;
# BENCHMARKS.md, training memory). A user's own setting wins. Read when oneDNN first runs, so it
# holds when set here, before anything scores or trains.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")

from .inference.predict import load_model, predict  # noqa: E402

__all__ = ["load_model", "predict"]
__version__ = "0.1.0"
